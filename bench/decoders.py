"""Today's decoder chain against PyAV (FFmpeg's libraries, streamed) on ordinary and nasty files
(issue 21, point 2): speed, peak memory, how far each gets, and whether it crashes.

Each (decoder, file) runs in its own subprocess, so a segfault is a result (``crashed SIGSEGV``),
not the end of the bench. Decoders:

* ``chain``      ``open_audio`` as the analysis uses it (soundfile → Essentia → audioread)
* ``essentia``   the chain without libsndfile (what a file libsndfile cannot read gets)
* ``audioread``  the chain's last resort alone
* ``pyav``       PyAV: demux + decode + convert to packed float32, block by block

Files are generated (numpy + soundfile + the ffmpeg command) in a temporary folder; the long
ones (``--long-minutes``, default 60) are the issue's case: a one-hour Opus, in Ogg and in WebM.
PyAV is not a dependency: put it on PYTHONPATH (e.g. ``pip install --target /tmp/av av``).

    PYTHONPATH=.:/tmp/av .venv/bin/python bench/decoders.py [--long-minutes 60] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DECODERS = ("chain", "essentia", "audioread", "pyav")
SKIPS = {"chain": (), "essentia": ("soundfile",), "audioread": ("soundfile", "essentia")}


def decode_chain(path: str, skip: tuple[str, ...]) -> dict:
    from playlistgen.core.audio.decode import open_audio
    from playlistgen.core.audio.policy import decoder_policy

    with decoder_policy(skip), open_audio(path, rates=(), keep_native=True) as audio:
        for _chunk in audio:
            pass
        return {"decoded_s": round(audio.duration_s, 2), "decoder": audio.info.decoder}


def decode_pyav(path: str, max_errors: int = 100) -> dict:
    """Packet by packet, skipping packets FFmpeg cannot decode (as the ffmpeg command does)."""
    import av

    decoded = errors = 0
    with av.open(path) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        resamplers: dict = {}   # one per input format: an MP3 may change its sample rate mid-stream
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                errors += 1
                if errors > max_errors:
                    break
                continue
            for frame in frames:
                key = (frame.sample_rate, frame.format.name, frame.layout.name)
                if key not in resamplers:
                    resamplers[key] = av.AudioResampler(format="flt", layout=stream.layout.name, rate=rate)
                for out in resamplers[key].resample(frame):
                    decoded += out.samples
    out = {"decoded_s": round(decoded / rate, 2), "decoder": "pyav"}
    if errors:
        out["decoder"] = f"pyav, {errors} bad packets skipped"
    return out


def run_one(decoder: str, path: str) -> None:
    """In the subprocess: decode, print one JSON line (peak RSS included)."""
    try:
        out = decode_pyav(path) if decoder == "pyav" else decode_chain(path, SKIPS[decoder])
    except Exception as exc:
        out = {"decoded_s": None, "error": f"{type(exc).__name__}: {exc}"[:160]}
    out["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def measure(decoder: str, path: Path, timeout: float) -> dict:
    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--one", decoder, str(path)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"outcome": f"timed out after {timeout:g} s"}
    wall = round(time.perf_counter() - started, 2)
    if proc.returncode < 0:
        return {"outcome": f"crashed {signal.Signals(-proc.returncode).name}", "wall_s": wall}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"outcome": f"exit {proc.returncode}: {proc.stderr.strip()[-120:]}", "wall_s": wall}
    out = json.loads(lines[-1])
    out["outcome"] = out.pop("error", None) or f"ok ({out.get('decoder')})"
    out["wall_s"] = wall
    return out


def make_files(folder: Path, long_minutes: float) -> dict[str, Path]:
    from tests import audio_fixtures as fx

    if fx.ffmpeg() is None:
        sys.exit("bench/decoders.py needs the ffmpeg command (apt-get install ffmpeg)")
    sr = 44100
    song = fx.song(30.0, sr, 2)
    flac = fx.write(folder / "song.flac", song, sr)
    files = {"flac": flac}
    conv = {"mp3": (), "m4a": ("-c:a", "aac"), "opus": ("-c:a", "libopus"), "webm": ("-c:a", "libopus"),
            "wma": ("-c:a", "wmav2")}
    for ext, args in conv.items():
        files[ext] = fx.ffmpeg_convert(flac, folder / f"song.{ext}", *args)
    mp3_48k = fx.ffmpeg_convert(flac, folder / "song48.mp3", "-ar", "48000")
    files["mp3 rate change"] = fx.concatenated(folder / "rate_change.mp3", files["mp3"], mp3_48k)
    files["chained opus x3"] = fx.chained_ogg(folder / "chained.opus", [files["opus"]], repeat=3)
    files["streamed wav"] = fx.streamed_wav(fx.write(folder / "plain.wav", song, sr), folder / "streamed.wav")
    half = lambda p: len(p.read_bytes()) // 2  # noqa: E731
    files["truncated mp3"] = fx.truncated(files["mp3"], folder / "truncated.mp3", half(files["mp3"]))
    files["truncated m4a"] = fx.truncated(files["m4a"], folder / "truncated.m4a", half(files["m4a"]))
    files["truncated opus"] = fx.truncated(files["opus"], folder / "truncated.opus", half(files["opus"]))
    files["corrupt header wav"] = fx.corrupt_header(folder / "plain.wav", folder / "corrupt.wav")
    garbled = bytearray(files["mp3"].read_bytes())
    rng = np.random.default_rng(7)
    for at in rng.integers(4096, len(garbled) - 4096, 40):
        garbled[at:at + 64] = rng.bytes(64)
    (folder / "garbled.mp3").write_bytes(bytes(garbled))
    files["garbled mp3"] = folder / "garbled.mp3"
    files["not audio"] = fx.not_audio(folder / "text.mp3")
    if long_minutes > 0:
        for ext in ("opus", "webm"):
            target = folder / f"long.{ext}"
            subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-stream_loop", "-1", "-i", str(flac),
                            "-t", str(long_minutes * 60), "-c:a", "libopus", "-b:a", "64k", str(target)],
                           check=True)
            files[f"{long_minutes:g} min {ext}"] = target
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--decoders", default=",".join(DECODERS))
    parser.add_argument("--one", nargs=2, metavar=("DECODER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(*args.one)
    decoders = args.decoders.split(",")
    folder = Path(tempfile.mkdtemp(prefix="decoders-bench-"))
    try:
        files = make_files(folder, args.long_minutes)
        print(f"{'file':20} {'decoder':10} {'wall s':>7} {'peak MB':>8} {'decoded s':>9}  outcome")
        for name, path in files.items():
            for decoder in decoders:
                r = measure(decoder, path, args.timeout)
                print(f"{name:20} {decoder:10} {r.get('wall_s', '-')!s:>7} {r.get('peak_mb', '-')!s:>8} "
                      f"{r.get('decoded_s', '-')!s:>9}  {r['outcome']}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

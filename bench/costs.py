"""Analysis cost per preset beside Essentia's MusicExtractor and a plain librosa script, on the
same files in the same run, and peak RSS versus file length.

Every analyzer runs in its own fresh child process with one thread (OMP/TF/BLAS = 1), first on
a short warm-up file (not counted: imports, model loading, librosa's JIT), then over the files
``rounds`` times. A round gives CPU-seconds per audio minute (total CPU / total audio) and the
realtime factor (audio / wall); the figures are medians over rounds, and the ratio to
MusicExtractor is taken round by round.

    .venv/bin/python bench/costs.py [--corpus DIR] [--files 4] [--rounds 3] [--lengths 3,10,30,60]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis import run_child  # noqa: E402
from common import REPO, cache_dir, durations, find_corpus, pick_files, stats  # noqa: E402

LIBROSA_CHILD = r"""
import json, re, sys, time
sys.path.insert(0, sys.argv[1])
import librosa_features
librosa_features.warnings.simplefilter("ignore")
t0 = time.process_time()
out = {"files": []}
for path in json.loads(sys.argv[2]):
    c0, w0 = time.process_time(), time.perf_counter()
    r = librosa_features.features(path)
    out["files"].append({"path": path, "cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0,
                         "audio_s": r["duration_s"]})
out["setup_cpu_s"] = 0.0
# this process's own peak (ru_maxrss also carries the parent's peak, recorded at exec)
out["peak_rss_mb"] = int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024
print(json.dumps(out))
"""

# "preset:runtime" runs the preset with that ML runtime (analysis.ml_runtime); a bare preset uses auto
KINDS = ("musicextractor", "librosa", "fast", "balanced", "balanced:onnx", "balanced:essentia", "accurate",
         "balanced-msd:onnx", "balanced-msdmtt:onnx")
LABELS = {"musicextractor": "Essentia MusicExtractor", "librosa": "plain librosa script",
          "fast": "playlistgen fast", "balanced": "playlistgen balanced",
          "balanced:onnx": "playlistgen balanced (onnx)", "balanced:essentia": "playlistgen balanced (essentia-tf)",
          "accurate": "playlistgen accurate",
          "balanced-msd:onnx": "balanced's patching, MSD only (onnx)",
          "balanced-msdmtt:onnx": "balanced's patching, MSD + MTT (onnx)"}


def run_kind(kind: str, models_dir: Path, files: list[str]) -> dict:
    if kind != "librosa":
        return run_child(kind, models_dir, files)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", LIBROSA_CHILD, str(Path(__file__).parent), json.dumps(files)],
                          capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"librosa child failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def analysis_cost(files: list[str], warmup: str, models_dir: Path, kinds: tuple[str, ...], rounds: int,
                  log=print) -> dict:  # type: ignore[no-untyped-def]
    audio_min = sum(durations(files).values()) / 60
    log(f"analysis cost: {len(files)} files, {audio_min:.1f} audio-min, {rounds} rounds, kinds {', '.join(kinds)}")
    per_round: dict[str, list[dict]] = {}
    peak: dict[str, float] = {}
    for kind in kinds:
        run = run_kind(kind, models_dir, [warmup] + files * rounds)
        done = run["files"][1:]
        per_round[kind] = []
        for r in range(rounds):
            chunk = done[r * len(files):(r + 1) * len(files)]
            cpu, wall = sum(f["cpu_s"] for f in chunk), sum(f["wall_s"] for f in chunk)
            audio = sum(f["audio_s"] for f in chunk)
            per_round[kind].append({"cpu_per_min": cpu / (audio / 60), "rtf": audio / wall})
        peak[kind] = run["peak_rss_mb"]
        med = stats([x["cpu_per_min"] for x in per_round[kind]])["median"]
        log(f"  {kind:15s} {med:6.3f} CPU-s per audio minute, peak RSS {peak[kind]:.0f} MB")
    out = {"files": [Path(f).name for f in files], "audio_min": audio_min, "rounds": rounds, "kinds": {}}
    base = per_round.get("musicextractor")
    for kind in kinds:
        rows = per_round[kind]
        entry = {"label": LABELS[kind], "cpu_per_min": stats([x["cpu_per_min"] for x in rows]),
                 "rtf": stats([x["rtf"] for x in rows]), "peak_rss_mb": peak[kind]}
        if base:
            entry["vs_musicextractor"] = stats([x["cpu_per_min"] / b["cpu_per_min"] for x, b in zip(rows, base,
                                                                                                    strict=True)])
        out["kinds"][kind] = entry
    return out


def long_file(minutes: int, source: str) -> str:
    """A long Ogg file made by repeating a real track, kept in the cache folder."""
    import numpy as np
    import soundfile as sf

    folder = cache_dir() / "long"
    folder.mkdir(exist_ok=True)
    path = folder / f"long-{minutes}min-{Path(source).stem}.ogg"
    if path.exists():
        return str(path)
    tmp = path.with_suffix(".part")
    audio, sr = sf.read(source, dtype="float32", always_2d=True)
    total = minutes * 60 * sr
    with sf.SoundFile(str(tmp), "w", sr, audio.shape[1], format="OGG", subtype="VORBIS") as out:
        written = 0
        while written < total:  # small blocks: libsndfile's Vorbis encoder crashes on huge writes
            start = written % len(audio)
            block = audio[start: start + min(65536, total - written, len(audio) - start)]
            out.write(np.ascontiguousarray(block))
            written += len(block)
    tmp.rename(path)
    return str(path)


def rss_by_length(source: str, lengths: list[int], presets: tuple[str, ...], models_dir: Path,
                  runs: int = 1, log=print) -> dict:  # type: ignore[no-untyped-def]
    """Peak RSS of a fresh analyzer process analysing one file of each length."""
    made = {m: long_file(m, source) for m in lengths}
    out: dict = {"lengths_min": lengths, "runs": runs, "presets": {}}
    for preset in presets:
        row = {}
        for m, path in made.items():
            row[str(m)] = stats([run_child(preset, models_dir, [path])["peak_rss_mb"] for _ in range(runs)])
        out["presets"][preset] = row
        log(f"  peak RSS {preset:9s} " + "  ".join(f"{m} min {row[str(m)]['median']:.0f} MB" for m in lengths))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default="musicextractor,librosa,fast,balanced:onnx,balanced:essentia,accurate",
                        help=f"comma-separated, from {', '.join(KINDS)}")
    parser.add_argument("--lengths", default="3,10,30,60")
    args = parser.parse_args()
    corpus = find_corpus(args.corpus)
    files = pick_files(corpus, args.files + 1)
    warmup = min(files, key=lambda f: durations([f])[f])
    files.remove(warmup)
    result = analysis_cost(files, warmup, Path(args.models_dir), tuple(args.kinds.split(",")), args.rounds)
    print(json.dumps(result["kinds"], indent=1))
    if args.lengths:
        rss_by_length(files[0], [int(x) for x in args.lengths.split(",")], ("fast", "balanced"),
                      Path(args.models_dir))


if __name__ == "__main__":
    main()

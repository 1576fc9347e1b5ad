"""Generated test audio: click tracks, chords in known keys, noise, silence and nasty files.

Everything is synthesised with numpy and written with soundfile (wav, flac, ogg/vorbis, opus,
mp3 via libsndfile 1.2). m4a/AAC and video containers need the `ffmpeg` command; tests that need
it skip with a reason when it is missing (`apt-get install ffmpeg`).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR_TRIADS = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))      # I IV V I
MINOR_TRIADS = ((0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7))      # i iv V i (harmonic minor)


def _stack(mono: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return mono.astype(np.float32)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def click_track(bpm: float, seconds: float = 20.0, sr: int = 44100, channels: int = 1,
                amplitude: float = 0.5) -> np.ndarray:
    """A metronome: a short decaying 1.5 kHz + noise burst on every beat (accent on beat 1)."""
    n = int(seconds * sr)
    out = np.zeros(n, dtype=np.float64)
    rng = np.random.default_rng(1)
    click_len = int(0.03 * sr)
    t = np.arange(click_len) / sr
    env = np.exp(-t * 150.0)
    click = (np.sin(2 * np.pi * 1500.0 * t) + 0.3 * rng.standard_normal(click_len)) * env
    period = 60.0 / bpm
    k = 0
    while True:
        start = int(round(k * period * sr))
        if start >= n:
            break
        stop = min(n, start + click_len)
        gain = 1.0 if k % 4 == 0 else 0.6
        out[start:stop] += gain * click[: stop - start]
        k += 1
    out *= amplitude / max(1e-9, np.max(np.abs(out)))
    return _stack(out, channels)


def _tone(freq: float, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    sig = np.zeros(n)
    for h in range(1, 6):   # a few harmonics so chroma looks like real instruments
        if freq * h < sr / 2:
            sig += np.sin(2 * np.pi * freq * h * t) / h
    return sig


def chord_progression(tonic: int, mode: str = "major", seconds: float = 16.0, sr: int = 44100,
                      channels: int = 1, amplitude: float = 0.4,
                      chord_s: float = 1.0) -> np.ndarray:
    """I–IV–V–I (or i–iv–V–i) repeated, with a bass note; tonic is a pitch class (0 = C)."""
    triads = MAJOR_TRIADS if mode == "major" else MINOR_TRIADS
    n_chord = int(chord_s * sr)
    env = np.minimum(1.0, np.arange(n_chord) / (0.01 * sr)) * np.exp(-np.arange(n_chord) / sr * 1.5)
    pieces = []
    total = int(seconds * sr)
    k = 0
    while sum(len(p) for p in pieces) < total:
        triad = triads[k % len(triads)]
        root_midi = 60 + tonic
        chord = np.zeros(n_chord)
        for step in triad:
            chord += _tone(440.0 * 2 ** ((root_midi + step - 69) / 12), n_chord, sr)
        chord += 0.8 * _tone(440.0 * 2 ** ((root_midi + triad[0] - 12 - 69) / 12), n_chord, sr)
        pieces.append(chord * env)
        k += 1
    out = np.concatenate(pieces)[:total]
    out *= amplitude / max(1e-9, np.max(np.abs(out)))
    return _stack(out, channels)


def song(seconds: float = 24.0, sr: int = 44100, channels: int = 2, bpm: float = 120.0,
         tonic: int = 9, mode: str = "minor") -> np.ndarray:
    """Chords (one per bar of four beats) plus a click beat: tempo, key and timbre at once."""
    music = chord_progression(tonic, mode, seconds, sr, 1, 0.35, chord_s=4 * 60.0 / bpm)
    beat = click_track(bpm, seconds, sr, 1, 0.3)
    mix = music + beat
    mix *= 0.7 / max(1e-9, float(np.max(np.abs(mix))))
    return _stack(mix, channels)


def noise(seconds: float = 10.0, sr: int = 44100, channels: int = 1, amplitude: float = 0.1,
          seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _stack(rng.standard_normal(int(seconds * sr)) * amplitude, channels)


def silence(seconds: float = 10.0, sr: int = 44100, channels: int = 1) -> np.ndarray:
    return _stack(np.zeros(int(seconds * sr)), channels)


def gain_db(audio: np.ndarray, db: float) -> np.ndarray:
    return (audio * 10 ** (db / 20.0)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int, subtype: str | None = None,
          format: str | None = None) -> Path:
    """Write with soundfile; the format follows the extension (.mp3 → MPEG layer III)."""
    path = Path(path)
    ext = path.suffix.lower()
    if format is None:
        format = {".mp3": "MP3", ".ogg": "OGG", ".opus": "OGG", ".flac": "FLAC",
                  ".wav": "WAV", ".aiff": "AIFF"}.get(ext)
    if subtype is None:
        subtype = {".mp3": "MPEG_LAYER_III", ".ogg": "VORBIS", ".opus": "OPUS"}.get(ext)
    sf.write(str(path), audio, sr, subtype=subtype, format=format)
    return path


def ffmpeg() -> str | None:
    return shutil.which("ffmpeg")


def ffmpeg_convert(src: Path, dst: Path, *args: str) -> Path:
    """Convert with the ffmpeg command (caller checks ffmpeg() first)."""
    subprocess.run([ffmpeg() or "ffmpeg", "-v", "error", "-y", "-i", str(src), *args, str(dst)],
                   check=True)
    return dst


def zero_byte(path: Path) -> Path:
    Path(path).write_bytes(b"")
    return Path(path)


def truncated(src: Path, dst: Path, keep: int = 600) -> Path:
    """The first `keep` bytes of a real file: a header that promises more than is there."""
    Path(dst).write_bytes(Path(src).read_bytes()[:keep])
    return Path(dst)


def corrupt_header(src: Path, dst: Path) -> Path:
    data = bytearray(Path(src).read_bytes())
    data[:64] = bytes(range(64))   # destroy the magic and the format chunk
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def not_audio(path: Path) -> Path:
    Path(path).write_text("this is a text file wearing an audio extension\n" * 50)
    return Path(path)


def tracker_module(path: Path, seconds_of_rows: int = 4) -> Path:
    """A minimal ProTracker .mod: one sine sample playing a note every 4 rows."""
    sample = (np.sin(2 * np.pi * np.arange(2000) / 32) * 100).astype(np.int8).tobytes()
    header = b"playlistgen test".ljust(20, b"\0")
    samples = b""
    for i in range(31):
        if i == 0:
            samples += b"sine".ljust(22, b"\0") + struct.pack(">HBBHH", len(sample) // 2, 0, 64, 0, len(sample) // 2)
        else:
            samples += b"\0" * 22 + struct.pack(">HBBHH", 0, 0, 0, 0, 1)
    n_patterns = max(1, seconds_of_rows // 6)
    order = bytes([n_patterns, 127]) + bytes(range(n_patterns)).ljust(128, b"\0")
    patterns = b""
    period = 428   # C-2
    for _ in range(n_patterns):
        for row in range(64):
            note = struct.pack(">BBBB", (period >> 8) & 0x0F, period & 0xFF, 0x10, 0x00) \
                if row % 4 == 0 else b"\0\0\0\0"
            patterns += note + b"\0" * 12
    Path(path).write_bytes(header + samples + order + b"M.K." + patterns + sample)
    return Path(path)


def write_long(path: Path, minutes: float, sr: int = 44100, channels: int = 2,
               piece_s: float = 24.0) -> Path:
    """A long file written piece by piece (memory stays small): the same song, repeated."""
    piece = song(piece_s, sr, channels)
    total = int(minutes * 60 * sr)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=channels,
                      format="FLAC" if str(path).endswith(".flac") else None) as out:
        written = 0
        while written < total:
            block = piece[: total - written]
            out.write(block)
            written += len(block)
    return Path(path)


# ---- valid files a first decoder gets wrong (issue 10, defect 4) ------------------------------
def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[(crc >> 24) ^ byte]
    return crc


def _with_serial(ogg: bytes, serial: int) -> bytes:
    """The same Ogg stream under another serial number (page CRCs recomputed), so copies of one
    link chain like separately encoded files."""
    out, pos = bytearray(), 0
    while pos + 27 <= len(ogg):
        n_segments = ogg[pos + 26]
        end = pos + 27 + n_segments + sum(ogg[pos + 27:pos + 27 + n_segments])
        page = bytearray(ogg[pos:end])
        page[14:18] = struct.pack("<I", serial)
        page[22:26] = b"\0\0\0\0"
        page[22:26] = struct.pack("<I", _ogg_crc(bytes(page)))
        out += page
        pos = end
    return bytes(out)


def chained_ogg(dst: Path, links: list[Path], repeat: int = 1) -> Path:
    """A chained Ogg file: the links one after another (``repeat`` times), each with its own
    serial number — what `cat a.opus b.opus` or a radio capture with a rate change produces."""
    parts = [Path(p).read_bytes() for p in links] * repeat
    Path(dst).write_bytes(b"".join(_with_serial(part, 0x5EED0000 + i) for i, part in enumerate(parts)))
    return Path(dst)


def streamed_wav(src: Path, dst: Path) -> Path:
    """A WAV as written to a pipe: RIFF and data sizes 0xFFFFFFFF (never filled in)."""
    data = bytearray(Path(src).read_bytes())
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    i = data.find(b"data", 12)
    data[i + 4:i + 8] = struct.pack("<I", 0xFFFFFFFF)
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def concatenated(dst: Path, *parts: Path) -> Path:
    """Files glued byte for byte (an MP3 whose sample rate changes mid-stream)."""
    Path(dst).write_bytes(b"".join(Path(p).read_bytes() for p in parts))
    return Path(dst)

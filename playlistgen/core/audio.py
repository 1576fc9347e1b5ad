"""Streaming decode: each file is read once, in chunks, and resampled once per rate it needs.

`open_audio(path, rates=(22050, 16000))` returns a `DecodedAudio`; iterating it yields `Chunk`s
of about `chunk_s` seconds holding a mono float32 signal per requested rate (and, when asked,
the untouched native-rate multichannel block for loudness metering). Resampling uses one
`soxr.ResampleStream` per rate, so peak memory depends on the chunk length, not the file length.

Decoders, in order:

1. soundfile (libsndfile 1.2): wav/aiff/flac/ogg-vorbis/opus/mp3, streamed block by block.
2. Essentia's AudioLoader (bundled FFmpeg) for what libsndfile cannot read (m4a/AAC, wma,
   video containers, some Opus). It decodes the WHOLE file into memory (stereo float32, about
   21 MB per audio minute at 44.1 kHz); chunks are then sliced from that array. Files longer
   than 20 minutes (by their tags' stream info) are instead read as mono 5-minute segments
   through EasyLoader, which decodes from the start for each segment (slower, bounded memory).
   Only used when Essentia is importable.
3. audioread (GStreamer/ffmpeg command/MAD when installed) as a last resort; it streams.

Every failure becomes `AnalysisError(reason, path=...)` with a one-line reason. Nothing heavy is
imported at module import time (Essentia is imported only on fallback).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AnalysisError

log = logging.getLogger(__name__)

CHUNK_SECONDS = 20.0
# Files libsndfile cannot read and longer than this are decoded by Essentia in segments
# (a whole hour would need about 1.3 GB as stereo float32).
LONG_FILE_S = 20 * 60.0
LONG_SEGMENT_S = 300.0
TRACKER_EXTENSIONS = {".mod", ".xm", ".it", ".s3m", ".mtm", ".669", ".umx"}
# A decode that stops this much short of what the header promised is a truncated file.
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_RATIO = 0.02


@dataclass(frozen=True)
class SourceInfo:
    """What the container says about the file (duration_s may be None when it does not say)."""

    path: str
    sample_rate: int
    channels: int
    duration_s: float | None
    codec: str
    decoder: str          # "soundfile" | "essentia" | "audioread"
    mixed_from: int = 0   # >0: the decoder mixed this many channels to the mono it hands out


@dataclass
class Chunk:
    """~chunk_s seconds of audio: mono per requested rate (+ native multichannel on request)."""

    start_s: float
    mono: dict[int, np.ndarray] = field(default_factory=dict)
    native: np.ndarray | None = None     # (frames, channels) float32 at the source rate


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] or type(exc).__name__


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise AnalysisError("file not found", path=path)
    if os.path.isdir(path):
        raise AnalysisError("is a directory, not an audio file", path=path)
    if os.path.getsize(path) == 0:
        raise AnalysisError("empty file (0 bytes)", path=path)


class _Source:
    """A decoder: yields (frames, channels) float32 blocks at the native rate."""

    info: SourceInfo

    def blocks(self, frames: int) -> Iterator[np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


def _declared_wav_frames(extra_info: str) -> int | None:
    """Frames a RIFF/WAV header promises when the data chunk is cut short (libsndfile notes
    'data : 705600 (should be 19956)' and quietly reads what is there)."""
    short = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", extra_info, re.MULTILINE)
    align = re.search(r"Block Align\s*:\s*(\d+)", extra_info)
    if not short or not align or int(align.group(1)) <= 0:
        return None
    promised, present = int(short.group(1)), int(short.group(2))
    return promised // int(align.group(1)) if promised > present else None


class _SoundfileSource(_Source):
    def __init__(self, path: str) -> None:
        import soundfile as sf

        self._file = sf.SoundFile(path)
        f = self._file
        duration = f.frames / f.samplerate if f.frames > 0 and f.samplerate > 0 else None
        declared = _declared_wav_frames(f.extra_info)
        if declared and f.samplerate > 0:
            duration = declared / f.samplerate   # libsndfile trims frames to what is there
        self.info = SourceInfo(path, int(f.samplerate), int(f.channels), duration,
                               f"{f.format}/{f.subtype}".lower(), "soundfile")

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        while True:
            block = self._file.read(frames, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield block

    def close(self) -> None:
        self._file.close()


class _EssentiaSource(_Source):
    """Whole-file decode through Essentia's bundled FFmpeg (see module docstring)."""

    def __init__(self, path: str) -> None:
        import essentia

        essentia.log.infoActive = False  # before essentia.standard: its import logs at info level
        essentia.log.warningActive = False
        import essentia.standard as es
        audio, sr, channels, _md5, _bitrate, codec = es.AudioLoader(filename=path)()
        if channels == 1:
            audio = audio[:, :1]    # AudioLoader always returns two (duplicated) channels
        self._audio = np.ascontiguousarray(audio, dtype=np.float32)
        n = len(self._audio)
        self.info = SourceInfo(path, int(sr), int(channels), n / sr if sr else None,
                               str(codec), "essentia")

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        for start in range(0, len(self._audio), frames):
            yield self._audio[start:start + frames]

    def close(self) -> None:
        self._audio = np.zeros((0, 1), dtype=np.float32)


class _EssentiaSegmentSource(_Source):
    """Long files libsndfile cannot read: Essentia's EasyLoader, one segment at a time.

    Memory stays at one segment (mono), at the price of decoding from the start for every
    segment (FFmpeg seeks are not exposed): about +0.5 x the decode time per 10 segments.
    The loader mixes to mono; loudness then counts that mix once per original channel, which
    is exact for centred (correlated) content and up to 3 dB low for fully uncorrelated stereo.
    """

    def __init__(self, path: str, sample_rate: int, duration: float, channels: int = 2,
                 segment_s: float | None = None) -> None:
        import essentia

        essentia.log.infoActive = False  # before essentia.standard: its import logs at info level
        essentia.log.warningActive = False
        import essentia.standard as es
        self._es, self._path, self._segment_s = es, path, segment_s or LONG_SEGMENT_S
        self._duration = duration
        self.info = SourceInfo(path, int(sample_rate), 1, duration, "ffmpeg (segmented)",
                               "essentia", mixed_from=max(1, channels))

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        start = 0.0
        full = int(self._segment_s * self.info.sample_rate)
        # Run until a short segment says the end has come (the tagged length is only a hint),
        # with a hard stop far past it.
        while start < 2 * self._duration + 600.0:
            # replayGain=-6 is EasyLoader's unity gain (measured: 0 would boost by 6 dB)
            segment = self._es.EasyLoader(filename=self._path, sampleRate=self.info.sample_rate,
                                          startTime=start, endTime=start + self._segment_s,
                                          replayGain=-6.0, downmix="mix")()
            if not len(segment):
                return
            for i in range(0, len(segment), frames):
                yield np.ascontiguousarray(segment[i:i + frames], dtype=np.float32)[:, None]
            if len(segment) < full - self.info.sample_rate // 10:
                return
            start += self._segment_s


class _AudioreadSource(_Source):
    def __init__(self, path: str) -> None:
        import audioread

        self._file = audioread.audio_open(path)
        f = self._file
        self.info = SourceInfo(path, int(f.samplerate), int(f.channels),
                               float(f.duration) if f.duration else None, "unknown", "audioread")

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        channels = self.info.channels
        pending: list[np.ndarray] = []
        have = 0
        for buf in self._file:
            pcm = np.frombuffer(buf, dtype="<i2").astype(np.float32) / 32768.0
            pending.append(pcm.reshape(-1, channels))
            have += len(pending[-1])
            if have >= frames:
                yield np.concatenate(pending)
                pending, have = [], 0
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        self._file.close()


def _essentia_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("essentia") is not None


def _long_file(path: str) -> tuple[int, float, int] | None:
    """(sample rate, duration, channels) from the tags' stream info when the file is too long
    to decode whole into memory."""
    try:
        import mutagen

        info = getattr(mutagen.File(path), "info", None)
    except Exception:
        return None
    length, rate = getattr(info, "length", 0) or 0, getattr(info, "sample_rate", 0) or 0
    channels = getattr(info, "channels", 2) or 2
    if length > LONG_FILE_S and rate > 0:
        return int(rate), float(length), int(channels)
    return None


def _open_source(path: str) -> _Source:
    _check_file(path)
    errors: list[str] = []
    try:
        return _SoundfileSource(path)
    except Exception as exc:  # libsndfile raises several types for unreadable input
        errors.append(f"libsndfile: {_one_line(exc)}")
    if _essentia_available():
        try:
            long = _long_file(path)
            if long:
                return _EssentiaSegmentSource(path, *long)
            return _EssentiaSource(path)
        except Exception as exc:
            text = _one_line(exc).replace("Error while configuring AudioLoader: ", "")
            errors.append(f"ffmpeg: {text.replace('AudioLoader: ', '')}")
    try:
        import audioread

        if audioread.available_backends():
            return _AudioreadSource(path)
    except Exception as exc:
        errors.append(f"audioread: {_one_line(exc)}")
    ext = Path(path).suffix.lower()
    if ext in TRACKER_EXTENSIONS:
        raise AnalysisError(f"tracker module ({ext}) not supported: no decoder here renders "
                            "modules (render it to flac/ogg first)", path=path)
    raise AnalysisError("not a readable audio file (" + "; ".join(errors) + ")", path=path)


class _MonoResampler:
    """Streaming mono resampler from the source rate to one target rate."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.out_rate = out_rate
        self._stream = None
        if in_rate != out_rate:
            import soxr

            self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def push(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


class DecodedAudio:
    """Iterate to get Chunks; after iteration `frames_decoded` and `duration_s` are known.

    Use as a context manager (closes the file) or call close().
    """

    def __init__(self, path: str | os.PathLike, rates: Sequence[int] = (22050,), *,
                 keep_native: bool = False, chunk_s: float = CHUNK_SECONDS) -> None:
        self.path = os.fspath(path)
        self.rates = tuple(dict.fromkeys(int(r) for r in rates))
        self.keep_native = keep_native
        self._source = _open_source(self.path)
        self.info = self._source.info
        if self.info.sample_rate <= 0 or self.info.channels <= 0:
            self.close()
            raise AnalysisError("invalid stream header (sample rate or channel count is 0)",
                                path=self.path)
        self.chunk_frames = max(1, int(round(chunk_s * self.info.sample_rate)))
        self.frames_decoded = 0

    @property
    def duration_s(self) -> float:
        return self.frames_decoded / self.info.sample_rate

    def __enter__(self) -> DecodedAudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()

    def __iter__(self) -> Iterator[Chunk]:
        sr = self.info.sample_rate
        resamplers = [_MonoResampler(sr, rate) for rate in self.rates]
        blocks = self._source.blocks(self.chunk_frames)
        while True:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except Exception as exc:
                raise AnalysisError(f"decode error after {self.duration_s:.1f} s: {_one_line(exc)}",
                                    path=self.path) from exc
            start_s = self.frames_decoded / sr
            self.frames_decoded += len(block)
            mono = self._downmix(block)
            # Decoders may hand out NaN/inf for corrupt frames; never let them reach the maths.
            if not np.isfinite(mono).all():
                block = np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)
                mono = self._downmix(block)
            chunk = Chunk(start_s, {r.out_rate: r.push(mono) for r in resamplers},
                          block if self.keep_native else None)
            yield chunk
        # Flush the resamplers' tails as a last (short) chunk.
        empty = np.zeros(0, dtype=np.float32)
        tail = {r.out_rate: r.push(empty, last=True) for r in resamplers}
        if any(len(v) for v in tail.values()):
            yield Chunk(self.duration_s, tail,
                        np.zeros((0, self.info.channels), np.float32) if self.keep_native else None)
        self._check_complete()

    @staticmethod
    def _downmix(block: np.ndarray) -> np.ndarray:
        channels = block.shape[1]
        if channels == 1:
            return np.ascontiguousarray(block[:, 0], dtype=np.float32)
        # a matrix product is several times faster than mean(axis=1) on interleaved data
        return block @ np.full(channels, 1.0 / channels, dtype=np.float32)

    def _check_complete(self) -> None:
        if self.frames_decoded == 0:
            raise AnalysisError("no audio frames could be decoded", path=self.path)
        expected = self.info.duration_s
        got = self.duration_s
        if expected and expected - got > max(TRUNCATION_TOLERANCE_S,
                                             TRUNCATION_TOLERANCE_RATIO * expected):
            raise AnalysisError(f"truncated file: decoded {got:.1f} s of the {expected:.1f} s "
                                "its header announces", path=self.path)


def open_audio(path: str | os.PathLike, rates: Sequence[int] = (22050,), *,
               keep_native: bool = False, chunk_s: float = CHUNK_SECONDS) -> DecodedAudio:
    """Open a file for one streaming pass; raises AnalysisError when it cannot be decoded."""
    return DecodedAudio(path, rates, keep_native=keep_native, chunk_s=chunk_s)

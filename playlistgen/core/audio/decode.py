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

Valid files that a first decoder gets wrong (see docs/architecture.md, "decoding"):
chained Ogg (concatenated Opus/Vorbis, a sample-rate change between links) is split into its
links (`core/audio/chain.py`); a streamed WAV (RIFF/data size 0xFFFFFFFF) or an absurd length
counts as "length unknown" and the decoded length is trusted; and when the first decoder stops
early (a decode error mid-stream, fewer frames than the header promises, or an MP3 left with a
large unread part, e.g. after a sample-rate change) the other decoder takes over from the frame
where the first one stopped, so analysers see one continuous stream. A file is failed as
truncated only when no decoder gets further.

Every failure becomes `AnalysisError(reason, path=...)` with a one-line reason. Nothing heavy is
imported at module import time (Essentia is imported only on fallback).

A decoder can also crash its process: `policy.decoder_policy` (set by the analysis worker) skips
named decoders and is told which one is running, so a crash can be blamed on it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...errors import AnalysisError, exception_text
from ..optional import essentia_available
from .chain import ChainedOgg, match_channels, mp3_rest, ogg_links
from .policy import entering as _entering
from .policy import skipped as _skipped
from .source import Chunk, SourceInfo

log = logging.getLogger(__name__)

CHUNK_SECONDS = 20.0
REASON_CHARS = 160               # a decoder's error, as it appears in a failure reason
# Files libsndfile cannot read and longer than this are decoded by Essentia in segments
# (a whole hour would need about 1.3 GB as stereo float32).
LONG_FILE_S = 20 * 60.0
LONG_SEGMENT_S = 300.0
TRACKER_EXTENSIONS = {".mod", ".xm", ".it", ".s3m", ".mtm", ".669", ".umx"}
# A decode that stops this much short of what the header promised is a truncated file.
TRUNCATION_TOLERANCE_S = 1.0
TRUNCATION_TOLERANCE_RATIO = 0.02
# An MP3 stream libsndfile leaves this much of unread (beyond tags) ended early, e.g. at a
# sample-rate change: the other decoder continues it.
UNREAD_TOLERANCE_BYTES = 32 * 1024
UNREAD_TOLERANCE_RATIO = 0.02
# Header lengths past this are not lengths (2**63-1 frames for chained Ogg, 0xFFFFFFFF sizes).
NONSENSE_DURATION_S = 7 * 24 * 3600.0
STREAMED_WAV_SIZE = 0xFFFFFF00   # data sizes from here to 0xFFFFFFFF mark a streamed WAV


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

    def stopped_early(self) -> str | None:
        """After blocks() ended: why the decoder probably did not reach the end, or None."""
        return None

    def rest(self, frames: int) -> Iterator[np.ndarray] | None:
        """After stopped_early(): the rest of the file from this decoder, if it can."""
        return None

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
    if promised >= STREAMED_WAV_SIZE:
        return None  # a streamed WAV: the size was never filled in, the data runs to the end
    return promised // int(align.group(1)) if promised > present else None


class _SoundfileSource(_Source):
    def __init__(self, path: str) -> None:
        import soundfile as sf

        # our own descriptor: its offset tells how far libsndfile read (see stopped_early)
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self._file = sf.SoundFile(self._fd, closefd=False)
        except BaseException:
            os.close(self._fd)
            raise
        f = self._file
        duration = f.frames / f.samplerate if f.frames > 0 and f.samplerate > 0 else None
        declared = _declared_wav_frames(f.extra_info)
        if declared and f.samplerate > 0:
            duration = declared / f.samplerate   # libsndfile trims frames to what is there
        if duration is not None and duration > NONSENSE_DURATION_S:
            duration = None   # not a length: trust what is decoded
        self.info = SourceInfo(path, int(f.samplerate), int(f.channels), duration,
                               f"{f.format}/{f.subtype}".lower(), "soundfile")

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        while True:
            block = self._file.read(frames, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield block

    def rest(self, frames: int) -> Iterator[np.ndarray] | None:
        """After stopped_early(): the remaining MPEG stream, converted to this one's format."""
        return mp3_rest(self.info.path, os.lseek(self._fd, 0, os.SEEK_CUR), self.info.sample_rate,
                        self.info.channels, frames)

    def stopped_early(self) -> str | None:
        if self._file.format not in ("MP3", "MPEG"):   # other formats: the header length check suffices
            return None
        size = os.fstat(self._fd).st_size
        unread = size - os.lseek(self._fd, 0, os.SEEK_CUR)
        if unread > max(UNREAD_TOLERANCE_BYTES, UNREAD_TOLERANCE_RATIO * size):
            return f"stream ended with {unread} of {size} bytes unread"
        return None

    def close(self) -> None:
        if self._fd < 0:
            return
        self._file.close()
        os.close(self._fd)
        self._fd = -1


def _quiet_essentia():  # type: ignore[no-untyped-def]
    """essentia.standard without log noise. essentia-tensorflow links TensorFlow's C library:
    loading it probes CUDA and warns on every machine without a GPU, unless its log level (read
    from the environment when it first logs) says otherwise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import essentia

    essentia.log.infoActive = False  # before essentia.standard: its import logs at info level
    essentia.log.warningActive = False
    import essentia.standard as es
    return es


class _EssentiaSource(_Source):
    """Whole-file decode through Essentia's bundled FFmpeg (see module docstring)."""

    def __init__(self, path: str) -> None:
        es = _quiet_essentia()
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
        es = _quiet_essentia()
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
    if not _skipped("soundfile", errors):
        _entering("soundfile")
        try:
            links = ogg_links(path)
            if links:
                return ChainedOgg(path, links)  # a _Source: blocks, info, stopped_early, rest, close
        except Exception as exc:
            errors.append(f"chained ogg: {exception_text(exc, REASON_CHARS)}")
        try:
            return _SoundfileSource(path)
        except Exception as exc:  # libsndfile raises several types for unreadable input
            errors.append(f"libsndfile: {exception_text(exc, REASON_CHARS)}")
    source = _open_other(path, errors)
    if source is not None:
        return source
    ext = Path(path).suffix.lower()
    if ext in TRACKER_EXTENSIONS:
        raise AnalysisError(f"tracker module ({ext}) not supported: no decoder here renders "
                            "modules (render it to flac/ogg first)", path=path)
    raise AnalysisError("not a readable audio file (" + "; ".join(errors) + ")", path=path)


def _open_other(path: str, errors: list[str], exclude: str = "soundfile") -> _Source | None:
    """The decoders after libsndfile, in order, skipping the one named ``exclude`` and those the
    decoder policy skips."""
    if exclude != "essentia" and essentia_available() and not _skipped("essentia", errors):
        _entering("essentia")
        try:
            long = _long_file(path)
            if long:
                return _EssentiaSegmentSource(path, *long)
            return _EssentiaSource(path)
        except Exception as exc:
            text = exception_text(exc, REASON_CHARS).replace("Error while configuring AudioLoader: ", "")
            errors.append(f"ffmpeg: {text.replace('AudioLoader: ', '')}")
    if exclude != "audioread" and not _skipped("audioread", errors):
        _entering("audioread")
        try:
            import audioread

            if audioread.available_backends():
                return _AudioreadSource(path)
        except Exception as exc:
            errors.append(f"audioread: {exception_text(exc, REASON_CHARS)}")
    return None


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
        try:
            self._source = _open_source(self.path)
        finally:
            _entering(None)
        self.info = self._source.info
        self._active = self.info.decoder   # the decoder the next block comes from
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
        blocks = self._blocks()
        while True:
            _entering(self._active)
            try:
                block = next(blocks)
            except StopIteration:
                break
            except Exception as exc:
                raise AnalysisError(f"decode error after {self.duration_s:.1f} s: {exception_text(exc, REASON_CHARS)}",
                                    path=self.path) from exc
            finally:
                _entering(None)
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

    def _blocks(self) -> Iterator[np.ndarray]:
        """The source's blocks; if it stops early, the rest from the other decoder (from the
        frame where the first one stopped, so the consumer sees one stream)."""
        error: Exception | None = None
        try:
            yield from self._source.blocks(self.chunk_frames)
            why = self._source.stopped_early() or self._shortfall()
        except Exception as exc:
            error = exc
            why = f"decode error after {self.duration_s:.1f} s: {exception_text(exc, REASON_CHARS)}"
        if why is None:
            return
        rest = self._source.rest(self.chunk_frames) if error is None else None
        if rest is not None:  # libsndfile itself continues (an MP3 whose sample rate changed)
            log.info("%s: %s; decoding the rest as a new stream", self.path, why)
            yield from rest
            self.info = replace(self.info, duration_s=None)  # the header only knew the first part
            return
        errors: list[str] = []
        other = _open_other(self.path, errors, exclude=self.info.decoder)
        if other is not None and (other.info.sample_rate != self.info.sample_rate):
            errors.append(f"{other.info.decoder} decodes at {other.info.sample_rate} Hz, "
                          f"not {self.info.sample_rate} Hz")
            other.close()
            other = None
        extra = 0
        if other is not None:
            log.info("%s: %s (%s); continuing with %s", self.path, why, self.info.decoder, other.info.decoder)
            self._active = other.info.decoder
            skip = self.frames_decoded
            try:
                for block in other.blocks(self.chunk_frames):
                    if skip >= len(block):
                        skip -= len(block)
                        continue
                    block, skip = block[skip:], 0
                    extra += len(block)
                    yield match_channels(block, self.info.channels)
            finally:
                other.close()
            if extra:
                self.info = replace(self.info, decoder=f"{self.info.decoder}+{other.info.decoder}",
                                    duration_s=None if self.info.duration_s is None
                                    else max(self.info.duration_s, other.info.duration_s or 0))
        if error is not None and not extra:
            raise error  # no decoder got further: the first one's error stands

    def _shortfall(self) -> str | None:
        expected = self.info.duration_s
        if expected and expected - self.duration_s > max(TRUNCATION_TOLERANCE_S,
                                                         TRUNCATION_TOLERANCE_RATIO * expected):
            return f"decoded {self.duration_s:.1f} s of {expected:.1f} s"
        return None

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
        if self._shortfall():
            raise AnalysisError(f"truncated file: decoded {self.duration_s:.1f} s of the "
                                f"{self.info.duration_s:.1f} s its header announces", path=self.path)


def open_audio(path: str | os.PathLike, rates: Sequence[int] = (22050,), *,
               keep_native: bool = False, chunk_s: float = CHUNK_SECONDS) -> DecodedAudio:
    """Open a file for one streaming pass; raises AnalysisError when it cannot be decoded."""
    return DecodedAudio(path, rates, keep_native=keep_native, chunk_s=chunk_s)

"""Chained Ogg: several logical streams one after another in one file.

Concatenated Opus or Vorbis files (`cat a.opus b.opus > c.opus`, an hour-long recording made of
parts) and radio captures whose sample rate changes (44.1 -> 48 kHz) are valid Ogg. libsndfile
decodes only the first link (and may report a nonsense length); Essentia's FFmpeg cannot decode
Opus at all and plays a later Vorbis link at the first link's rate. So the file is split at its
link boundaries (a BOS page that follows non-BOS pages; the BOS pages of multiplexed streams at
the start belong to one link), every link is decoded by libsndfile through a window on the file,
and later links are resampled and channel-converted to the first link's format. The decoded
length is trusted (the container has no total length to compare with).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np

from .source import SourceInfo

log = logging.getLogger(__name__)

OGG_MAGIC = b"OggS"
_PAGE_HEADER = 27
_BOS = 0x02


def ogg_links(path: str) -> list[tuple[int, int]]:
    """Byte ranges ``(start, end)`` of the links of a chained Ogg file; [] when the file is not
    Ogg or has one link. Reads only page headers (about one per second of audio)."""
    starts: list[int] = []
    with open(path, "rb", buffering=1 << 16) as fh:
        size = os.fstat(fh.fileno()).st_size
        if fh.read(4) != OGG_MAGIC:
            return []
        pos, previous_bos = 0, False
        while pos + _PAGE_HEADER <= size:
            fh.seek(pos)
            header = fh.read(_PAGE_HEADER)
            if header[:4] != OGG_MAGIC:
                break  # junk after the last page: the links found so far stand
            segments = fh.read(header[26])
            bos = bool(header[5] & _BOS)
            if bos and not previous_bos:
                starts.append(pos)
            previous_bos = bos
            pos += _PAGE_HEADER + len(segments) + sum(segments)
    if len(starts) < 2:
        return []
    return list(zip(starts, [*starts[1:], size], strict=True))


class FileWindow:
    """A read-only file object showing bytes ``start:end`` of a file (for soundfile's virtual IO)."""

    def __init__(self, path: str, start: int, end: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._start, self._size, self._pos = start, end - start, 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = min(max(base + offset, 0), self._size)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        n = self._size - self._pos if n < 0 else min(n, self._size - self._pos)
        if n <= 0:
            return b""
        self._fh.seek(self._start + self._pos)
        data = self._fh.read(n)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._fh.close()


def match_channels(block: np.ndarray, channels: int) -> np.ndarray:
    """(frames, c) -> (frames, channels): a mono mix repeated, or mono duplicated."""
    if block.shape[1] == channels:
        return block
    mono = block.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(np.repeat(mono[:, None], channels, axis=1))


def converted_blocks(file, rate: int, channels: int, frames: int) -> Iterator[np.ndarray]:  # type: ignore[no-untyped-def]
    """Blocks of an open SoundFile at ``rate`` Hz with ``channels`` channels."""
    resampler = None
    if file.samplerate != rate:
        import soxr

        resampler = soxr.ResampleStream(file.samplerate, rate, channels, dtype="float32", quality="HQ")
    while True:
        block = file.read(frames, dtype="float32", always_2d=True)
        last = not len(block)
        block = match_channels(block, channels) if len(block) else np.zeros((0, channels), np.float32)
        if resampler is not None:
            block = resampler.resample_chunk(block, last=last)
        if len(block):
            yield block
        if last:
            return


def mp3_rest(path: str, offset: int, rate: int, channels: int, frames: int) -> Iterator[np.ndarray] | None:
    """An MPEG stream libsndfile stopped in the middle of (at a sample-rate change it stops right
    at the new part): the rest from ``offset``, converted; None if no stream starts there."""
    import soundfile as sf

    window = FileWindow(path, offset, os.path.getsize(path))
    try:
        file = sf.SoundFile(window)
    except Exception:
        window.close()
        return None

    def blocks() -> Iterator[np.ndarray]:
        try:
            yield from converted_blocks(file, rate, channels, frames)
        finally:
            file.close()
            window.close()

    return blocks()


class ChainedOgg:
    """Decodes the links one after another at the first link's rate and channel count."""

    def __init__(self, path: str, links: list[tuple[int, int]]) -> None:
        import soundfile as sf

        self._sf, self._path, self._links = sf, path, links
        self._window: FileWindow | None = None
        self._file = self._open(0)
        self.sample_rate, self.channels = int(self._file.samplerate), int(self._file.channels)

        codec = f"ogg/{self._file.subtype} (chained: {len(links)} links)".lower()
        self.info = SourceInfo(path, self.sample_rate, self.channels, None, codec, "soundfile")

    def stopped_early(self) -> str | None:
        return None   # every link is read to its end; the decoded length is the length

    def rest(self, frames: int) -> None:
        return None

    def _open(self, index: int):  # type: ignore[no-untyped-def]
        self._window = FileWindow(self._path, *self._links[index])
        try:
            return self._sf.SoundFile(self._window)
        except Exception as exc:
            self._window.close()
            raise RuntimeError(f"link {index + 1} of {len(self._links)}: {exc}") from exc

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        for index in range(len(self._links)):
            if index:
                self._file = self._open(index)
            yield from converted_blocks(self._file, self.sample_rate, self.channels, frames)
            self.close()

    def close(self) -> None:
        try:
            self._file.close()
        except Exception:  # already closed
            pass
        if self._window is not None:
            self._window.close()

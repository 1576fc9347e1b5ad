"""The audio fingerprint: a hash of a file's audio stream that ignores its metadata.

The cheap byte fingerprint (`library.fingerprint`: size + first/last 64 KiB) covers the tags of
most formats, so editing tags in Picard or beets changes it. This one hashes only the bytes of
the *coded audio* — the packets as they sit in the container — and skips every place a tagger
writes to, so a retagged file keeps its fingerprint and its analysis:

* MP3/AAC (ADTS)/unknown: the bytes between a leading ID3v2 tag and the trailing ID3v1,
  APEv2 and Lyrics3 tags.
* FLAC: the frames after the metadata blocks (Vorbis comments, pictures, padding).
* Ogg (Vorbis, Opus, FLAC, Speex): the page payloads after the header packets. Page headers are
  left out: a tagger that grows the comment header renumbers every page and rewrites its CRC.
* MP4/M4A: the payload of the ``mdat`` atoms (``moov`` with its ``ilst`` tags and the chunk
  offsets that move with it are left out).
* WAV/AIFF: the ``data`` / ``SSND`` chunk.

No decoding happens: it costs one sequential read of the file and a BLAKE2b over it (about a
millisecond per MB; ``bench/retag.py`` prints the figure), it does not depend on the decoder's
version (so an export matches on another machine), and a change of a single audio byte changes
it. Computed by the analysis worker with each result (the file is in the page cache then), and
by the library thread only for a file whose byte fingerprint changed while it was analysed.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct

log = logging.getLogger(__name__)

VERSION = "a1"          # bump when the regions hashed change (stored values then stop matching)
_OGG_NO_GRANULE = (0, 0xFFFFFFFFFFFFFFFF)


def audio_fingerprint(path: str | os.PathLike[str]) -> str:
    """``a1:<32 hex digits>`` for the file's audio stream. Raises OSError when unreadable."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return f"{VERSION}:empty"
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            view = memoryview(data)
            try:
                digest = hashlib.blake2b(digest_size=16)
                kind = _hash_regions(view, digest)
                digest.update(kind.encode())
                return f"{VERSION}:{digest.hexdigest()}"
            finally:
                view.release()


def audio_fingerprint_or_none(path: str | os.PathLike[str]) -> str | None:
    """The fingerprint, or None when the file cannot be read (it is an optional extra)."""
    try:
        return audio_fingerprint(path)
    except (OSError, ValueError) as exc:
        log.warning("no audio fingerprint for %s: %s", path, exc)
        return None


def _hash_regions(data: memoryview, digest: hashlib._Hash) -> str:  # type: ignore[name-defined]
    start = _id3v2_end(data, 0)
    head = bytes(data[start:start + 12])
    if head[:4] == b"fLaC":
        return _flac(data, start, digest)
    if head[:4] == b"OggS":
        return _ogg(data, start, digest)
    if head[4:8] == b"ftyp":
        return _chunks(data, start, digest, big_endian=True, header=8, wanted=b"mdat", kind="mp4")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _chunks(data, start + 12, digest, big_endian=False, header=8, wanted=b"data", kind="wav")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _chunks(data, start + 12, digest, big_endian=True, header=8, wanted=b"SSND", kind="aiff")
    digest.update(data[start:_trailing_tags_start(data, start)])
    return "stream"


def _id3v2_end(data: memoryview, pos: int) -> int:
    """Skip any ID3v2 tags at ``pos`` (some files carry several)."""
    while len(data) - pos >= 10 and bytes(data[pos:pos + 3]) == b"ID3":
        flags = data[pos + 5]
        size = _syncsafe(bytes(data[pos + 6:pos + 10]))
        pos += 10 + size + (10 if flags & 0x10 else 0)
    return min(pos, len(data))


def _syncsafe(raw: bytes) -> int:
    return (raw[0] & 0x7F) << 21 | (raw[1] & 0x7F) << 14 | (raw[2] & 0x7F) << 7 | (raw[3] & 0x7F)


def _trailing_tags_start(data: memoryview, start: int) -> int:
    """Where ID3v1, APEv2 and Lyrics3v2 tags at the end of the file begin."""
    end = len(data)
    while end - start > 0:
        if end - start >= 128 and bytes(data[end - 128:end - 125]) == b"TAG":
            end -= 128
        elif end - start >= 32 and bytes(data[end - 32:end - 24]) == b"APETAGEX":
            tag_size, _items, flags = struct.unpack("<III", bytes(data[end - 20:end - 8]))
            end -= tag_size + (32 if flags & 0x80000000 else 0)   # size excludes the header
        elif end - start >= 15 and bytes(data[end - 9:end]) == b"LYRICS200":
            end -= int(bytes(data[end - 15:end - 9]) or b"0") + 15
        else:
            break
    return max(end, start)


def _flac(data: memoryview, pos: int, digest: hashlib._Hash) -> str:  # type: ignore[name-defined]
    pos += 4
    while pos + 4 <= len(data):
        header = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 4], "big")
        pos += 4 + length
        if header & 0x80:   # last metadata block
            break
    digest.update(data[min(pos, len(data)):_trailing_tags_start(data, pos)])
    return "flac"


def _ogg(data: memoryview, pos: int, digest: hashlib._Hash) -> str:  # type: ignore[name-defined]
    in_audio: set[int] = set()   # logical streams past their header packets
    n = len(data)
    while pos + 27 <= n and bytes(data[pos:pos + 4]) == b"OggS":
        granule, serial = struct.unpack("<qI", bytes(data[pos + 6:pos + 18]))
        segments = data[pos + 26]
        table = bytes(data[pos + 27:pos + 27 + segments])
        body = pos + 27 + segments
        end = body + sum(table)
        if serial in in_audio or granule & 0xFFFFFFFFFFFFFFFF not in _OGG_NO_GRANULE:
            in_audio.add(serial)
            digest.update(data[body:min(end, n)])
        pos = end
    if pos < n:    # trailing garbage or a damaged page: hash the rest as it is
        digest.update(data[pos:])
    return "ogg"


def _chunks(data: memoryview, pos: int, digest: hashlib._Hash, *, big_endian: bool,  # type: ignore[name-defined]
            header: int, wanted: bytes, kind: str) -> str:
    """Walk RIFF/IFF chunks or MP4 atoms and hash the payload of the ``wanted`` ones."""
    n = len(data)
    found = False
    while pos + header <= n:
        if kind == "mp4":
            size = int.from_bytes(data[pos:pos + 4], "big")
            name = bytes(data[pos + 4:pos + 8])
            head = 8
            if size == 1 and pos + 16 <= n:
                size, head = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
            elif size == 0:
                size = n - pos
            if size < head:
                break
            payload, advance = (pos + head, pos + size), size
        else:
            name = bytes(data[pos:pos + 4])
            size = int.from_bytes(data[pos + 4:pos + 8], "big" if big_endian else "little")
            payload, advance = (pos + 8, pos + 8 + size), 8 + size + (size & 1)
        if name == wanted:
            digest.update(data[payload[0]:min(payload[1], n)])
            found = True
        pos += advance
    if not found:   # not the layout we expected: fall back to the whole file minus tags
        digest.update(data[:_trailing_tags_start(data, 0)])
        return kind + "-raw"
    return kind

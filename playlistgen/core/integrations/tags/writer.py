"""Write the analysis into the files' own tags (opt-in), the way beets and Picard name them.

=========== ======================= ============================ ==================================
field       ID3 (mp3, wav, aiff)    Vorbis comments (flac/ogg)   MP4 (m4a)
=========== ======================= ============================ ==================================
bpm         TBPM                    BPM                          tmpo
key         TKEY                    INITIALKEY                   ----:com.apple.iTunes:initialkey
replaygain  TXXX:REPLAYGAIN_TRACK_* REPLAYGAIN_TRACK_GAIN/_PEAK  ----:com.apple.iTunes:replaygain_*
            (Opus also R128_TRACK_GAIN, RFC 7845: Q7.8 dB relative to −23 LUFS)
mood        TMOO + TXXX:PLAYLISTGEN_TAGS   MOOD, PLAYLISTGEN_TAGS  ----:…:MOOD, ----:…:PLAYLISTGEN_TAGS
genre       TCON                    GENRE                        ©gen   (only with --fields genre)
=========== ======================= ============================ ==================================

Key: standard notation ("Am", "F#", as TKEY defines it) or Camelot ("8A"). ReplayGain track gain
is −18 LUFS minus the EBU R128 integrated loudness; the peak is the sample peak of the decoded
audio. Mood: the MusiCNN mood labels at or above the threshold; PLAYLISTGEN_TAGS every label
at or above it; genre the most probable genre label — a user's GENRE is never touched unless
``genre`` is among the fields.

Safety (:func:`write_tags`): the file's identity (device, inode, size, mtime, ctime) is noted
before anything is read; the original is decoded (peak, and a hash of its samples); the new tags
go into a locked copy in the same folder (hidden name, so the library ignores it; see
``copies``); the copy must re-read with exactly the new values and decode to the same samples
(the project's decoder; container bytes such as Ogg page numbers may change, the audio may not);
then, if the file still has the identity noted at first, the copy atomically replaces it with
the original's permission bits and owner. A file another program replaced, edited in place or
removed meanwhile is skipped with the reason: the user's newer file always wins (what is left
is the moment between that last look and the rename, which no rename-based writer can close).
A symbolic link is never replaced by a file: its target is written when it lies inside a
library folder, otherwise the link is skipped. **mtime policy:** the file gets a new mtime — its
tags did change, and media servers rescan by mtime; playlistgen itself sees the change as a
retag (core.retag) and keeps the analysis. A read-only file or folder is reported and skipped.
Any failure, Ctrl+C or SIGTERM (callers turn it into ``copies.Terminated``) removes the copy: the
original is either untouched or completely replaced; a copy a kill -9 leaves is removed later.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...library import tag_copies as copies

log = logging.getLogger(__name__)

FIELDS = ("bpm", "key", "replaygain", "mood", "genre")
DEFAULT_FIELDS = ("bpm", "key", "replaygain", "mood")
REPLAYGAIN_REFERENCE_LUFS = -18.0
MOODS = {"happy", "sad", "chill", "chillout", "Mellow", "party", "sexy", "beautiful", "catchy", "easy listening"}
GENRES = {"rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
          "classic rock", "soul", "indie rock", "electronica", "folk", "punk", "blues", "hard rock", "ambient",
          "experimental", "Hip-Hop", "country", "funk", "electro", "heavy metal", "Progressive rock", "rnb",
          "indie pop", "House", "techno", "classical"}
_ITUNES = "----:com.apple.iTunes:"


class TagWriteError(Exception):
    """One file could not be written; the message is one line."""


@dataclass
class Outcome:
    path: str
    status: str                    # "written" | "unchanged" | "would-change" | "skipped" | "failed"
    changes: dict[str, tuple[str | None, str]] = field(default_factory=dict)  # name → (old, new)
    reason: str | None = None


# --------------------------------------------------------------------------- values to write

def key_text(key: str | None, scale: str | None, camelot: str | None, notation: str = "standard") -> str | None:
    if not key:
        return None
    if notation == "camelot":
        return camelot
    return key + ("m" if scale == "minor" else "")


def planned_values(record: Mapping[str, Any], fields: Iterable[str], *, key_notation: str = "standard",
                   threshold: float = 0.1) -> dict[str, str]:
    """Logical values (bpm, key, replaygain_track_gain, mood, playlistgen_tags, genre) to write."""
    fields = set(fields)
    out: dict[str, str] = {}
    if "bpm" in fields and record.get("bpm"):
        out["bpm"] = str(int(round(float(record["bpm"]))))
    if "key" in fields:
        text = key_text(record.get("key"), record.get("scale"), record.get("camelot"), key_notation)
        if text:
            out["key"] = text
    if "replaygain" in fields and record.get("loudness_lufs") is not None:
        out["replaygain_track_gain"] = f"{REPLAYGAIN_REFERENCE_LUFS - float(record['loudness_lufs']):+.2f} dB"
    labels: dict[str, float] = {}
    for source in (record.get("tags") or {}).values():
        for label, p in source.items():
            labels[label] = max(p, labels.get(label, 0.0))
    ranked = [label for label, p in sorted(labels.items(), key=lambda kv: -kv[1]) if p >= threshold]
    if "mood" in fields and ranked:
        moods = [label.lower() for label in ranked if label in MOODS]
        if moods:
            out["mood"] = "; ".join(moods)
        out["playlistgen_tags"] = "; ".join(ranked)
    if "genre" in fields:
        genres = [label for label in ranked if label in GENRES]
        if genres:
            out["genre"] = genres[0].title() if genres[0].islower() else genres[0]
    return out


# --------------------------------------------------------------------------- formats

def _kind(audio: Any) -> str:
    name = type(audio).__name__
    if name in ("MP4", "EasyMP4"):
        return "mp4"
    if name in ("MP3", "WAVE", "AIFF") or type(getattr(audio, "tags", None)).__name__ == "ID3":
        return "id3"
    return "vorbis"


_VORBIS = {"bpm": "BPM", "key": "INITIALKEY", "replaygain_track_gain": "REPLAYGAIN_TRACK_GAIN",
           "replaygain_track_peak": "REPLAYGAIN_TRACK_PEAK", "mood": "MOOD", "playlistgen_tags": "PLAYLISTGEN_TAGS",
           "genre": "GENRE", "r128_track_gain": "R128_TRACK_GAIN"}
_ID3 = {"bpm": "TBPM", "key": "TKEY", "mood": "TMOO", "genre": "TCON",
        "replaygain_track_gain": "TXXX:REPLAYGAIN_TRACK_GAIN", "replaygain_track_peak": "TXXX:REPLAYGAIN_TRACK_PEAK",
        "playlistgen_tags": "TXXX:PLAYLISTGEN_TAGS"}
_MP4 = {"bpm": "tmpo", "key": _ITUNES + "initialkey", "genre": "\xa9gen", "mood": _ITUNES + "MOOD",
        "replaygain_track_gain": _ITUNES + "replaygain_track_gain",
        "replaygain_track_peak": _ITUNES + "replaygain_track_peak", "playlistgen_tags": _ITUNES + "PLAYLISTGEN_TAGS"}


def tag_names(kind: str) -> dict[str, str]:
    return {"id3": _ID3, "mp4": _MP4, "vorbis": _VORBIS}[kind]


def read_values(audio: Any, names: Iterable[str]) -> dict[str, str | None]:
    """Current values of the logical ``names`` in a mutagen file object."""
    kind = _kind(audio)
    table = tag_names(kind)
    tags = audio.tags
    out: dict[str, str | None] = {}
    for name in names:
        key = table.get(name)
        value = None
        if tags is not None and key is not None:
            if kind == "id3":
                frame = tags.get(key)
                value = str(frame.text[0]) if frame is not None and frame.text else None
            elif kind == "mp4":
                raw = tags.get(key)
                if raw:
                    item = raw[0]
                    value = item.decode("utf-8") if isinstance(item, bytes) else str(item)
            else:
                raw = tags.get(key)
                value = raw[0] if raw else None
        out[name] = value
    return out


def _set_values(audio: Any, values: Mapping[str, str]) -> None:
    from mutagen import id3
    from mutagen.mp4 import MP4FreeForm

    kind = _kind(audio)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    table = tag_names(kind)
    for name, value in values.items():
        key = table.get(name)
        if key is None:
            continue
        if kind == "id3":
            if key.startswith("TXXX:"):
                tags.setall(key, [id3.TXXX(encoding=3, desc=key[5:], text=[value])])
            else:
                tags.setall(key, [getattr(id3, key)(encoding=3, text=[value])])
        elif kind == "mp4":
            tags[key] = [int(value)] if key == "tmpo" else \
                [value] if key == "\xa9gen" else [MP4FreeForm(value.encode("utf-8"))]
        else:
            tags[key] = [value]


# --------------------------------------------------------------------------- the safe write

def _decode(path: str) -> tuple[str, float]:
    """(hash of the decoded samples at the native rate, sample peak) — the project's decoder."""
    from ...audio.decode import open_audio

    digest = hashlib.blake2b(digest_size=16)
    peak = 0.0
    with open_audio(path, rates=(), keep_native=True) as audio:
        for chunk in audio:
            block = np.ascontiguousarray(chunk.native, dtype=np.float32)
            digest.update(block.tobytes())
            if block.size:
                peak = max(peak, float(np.abs(block).max()))
    return digest.hexdigest(), peak


def _writable(path: str) -> str | None:
    """Why ``path`` must not be written, or None. No write bit at all counts as read-only even
    for root: someone marked it so on purpose."""
    folder = os.path.dirname(path) or "."
    if not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222:
        return "read-only file"
    if not os.access(folder, os.W_OK | os.X_OK) or not os.stat(folder).st_mode & 0o222:
        return "read-only folder (the safe write needs a temporary file next to it)"
    return None


class FileChangedError(TagWriteError):
    """The file changed after it was read (another program wrote it): it is left as it is now."""


Identity = tuple[int, int, int, int, int]


def _identity_of(st: os.stat_result) -> Identity:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def identity(path: str) -> Identity:
    """(device, inode, size, mtime_ns, ctime_ns): any write, replacement or in-place edit changes
    it — ctime even when the editor puts the mtime back (Picard's "preserve timestamps")."""
    return _identity_of(os.stat(path))


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def link_target(path: str, library_roots: Iterable[str]) -> tuple[str | None, str | None]:
    """(the file to write, None) for ``path``, or (None, why not). A symbolic link is never replaced
    by a file: its target is written in its place only when it lies inside a library folder."""
    if not os.path.islink(path):
        return path, None
    target = os.path.realpath(path)
    if not _under(target, [os.path.realpath(r) for r in library_roots]):
        return None, f"a symbolic link to {target}, outside the library folders: left alone (write the target itself)"
    if not os.path.isfile(target):
        return None, f"a symbolic link to {target}, which is not a file"
    return target, None


def write_tags(path: str, record: Mapping[str, Any], fields: Iterable[str] = DEFAULT_FIELDS, *,
               key_notation: str = "standard", threshold: float = 0.1, dry_run: bool = False,
               library_roots: Iterable[str] = ()) -> Outcome:
    """Write ``record``'s analysis into ``path`` safely (see the module docstring).

    A symbolic link stays a link: its target is written when it lies inside one of
    ``library_roots``, otherwise the link is skipped with the reason. When the record carries
    the ``audio_fingerprint`` of the analysed file, a file whose audio is not that one any more
    (replaced since the scan) is skipped: the analysis describes another recording."""
    import mutagen

    from ...audio.fingerprint import audio_fingerprint_or_none

    path = str(path)
    fields = tuple(fields)
    target, refused = link_target(path, library_roots)
    if target is None:
        return Outcome(path, "skipped", reason=refused)
    try:
        before = identity(target)   # everything below describes this very state of the file
        audio = mutagen.File(target)
    except Exception as exc:
        return Outcome(path, "failed", reason=f"unreadable tags: {exc}"[:200])
    if audio is None:
        return Outcome(path, "skipped", reason="not a format mutagen can tag")
    analysed = record.get("audio_fingerprint")
    if analysed and audio_fingerprint_or_none(target) not in (None, analysed):
        return Outcome(path, "skipped", reason="its audio changed since it was analysed: run `playlistgen scan`, "
                                               "then write again")
    values = planned_values(record, fields, key_notation=key_notation, threshold=threshold)
    kind = _kind(audio)
    peak: float | None = None
    sample_hash: str | None = None
    needs_decode = not dry_run or "replaygain" in fields
    if needs_decode and "replaygain_track_gain" in values:
        try:
            sample_hash, peak = _decode(target)
        except Exception as exc:
            return Outcome(path, "failed", reason=f"cannot decode: {exc}"[:200])
        values["replaygain_track_peak"] = f"{peak:.6f}"
        if kind == "vorbis" and type(audio).__name__ == "OggOpus":
            gain_q78 = round((-23.0 - float(record["loudness_lufs"])) * 256)
            values["r128_track_gain"] = str(max(-32768, min(32767, gain_q78)))
    current = read_values(audio, values)
    changes = {k: (current.get(k), v) for k, v in values.items() if current.get(k) != v}
    if not changes:
        return Outcome(path, "unchanged")
    if dry_run:
        return Outcome(path, "would-change", changes)
    refused = _writable(target)
    if refused:
        return Outcome(path, "skipped", changes, reason=refused)
    try:
        _replace_safely(target, {k: v for k, (_old, v) in changes.items()}, sample_hash, before)
    except FileChangedError as exc:
        return Outcome(path, "skipped", changes, reason=str(exc))
    except TagWriteError as exc:
        return Outcome(path, "failed", changes, reason=str(exc))
    return Outcome(path, "written", changes)


CHANGED = ("changed while its tags were being written: the other program's version was kept "
           "(run `playlistgen scan`, then write again)")


def _unchanged_since(path: str, before: Identity, st: os.stat_result | None = None) -> None:
    """FileChangedError unless ``path`` (or the open file's ``st``) is still the file read at first:
    a file another program replaced, edited or removed meanwhile always wins."""
    try:
        st = st or os.stat(path)
    except FileNotFoundError:
        raise FileChangedError(CHANGED.replace("changed", "removed", 1)) from None
    if _identity_of(st) != before:
        raise FileChangedError(CHANGED)


def _replace_safely(path: str, values: Mapping[str, str], sample_hash: str | None, before: Identity) -> None:
    """Tag a locked copy, verify it, and swap it in — unless the file changed since ``before``."""
    import mutagen

    fd, tmp = -1, None
    try:
        fd, tmp = copies.create_locked(path)
        with open(path, "rb") as src:
            st = os.fstat(src.fileno())
            _unchanged_since(path, before, st)
            with os.fdopen(fd, "wb", closefd=False) as out:
                while block := src.read(1 << 20):
                    out.write(block)
        audio = mutagen.File(tmp)
        _set_values(audio, values)
        audio.save()
        reread = read_values(mutagen.File(tmp), values)
        wrong = sorted(k for k, v in values.items() if reread.get(k) != v)
        if wrong:
            raise TagWriteError(f"verification failed: {', '.join(wrong)} did not read back")
        if sample_hash is None:
            sample_hash = _decode(path)[0]
        if _decode(tmp)[0] != sample_hash:
            raise TagWriteError("verification failed: the audio would change; file left as it was")
        os.chmod(tmp, st.st_mode & 0o7777)
        if hasattr(os, "chown"):
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except PermissionError:
                if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                    raise TagWriteError("cannot keep the file's owner (run as its owner or root)") from None
        os.fsync(fd)
        _unchanged_since(path, before)   # the last look before the swap
        os.replace(tmp, path)
        tmp = None
    except TagWriteError:
        raise
    except OSError as exc:
        raise TagWriteError(f"{exc.strerror or exc}") from None
    except Exception as exc:
        raise TagWriteError(f"{type(exc).__name__}: {exc}"[:200]) from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        if fd >= 0:
            os.close(fd)   # drops the copy's lock

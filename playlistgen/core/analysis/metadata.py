"""Tag metadata (artist, album, title, genre, year, track number, duration) via mutagen.

Reading tags never fails an analysis: unreadable or missing tags fall back to names taken from
the path — "Artist - Title.ext", "01 - Title.ext" / "01. Title.ext", and the folders
"Artist/Album/track.ext".
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from ..storage.records import METADATA, OPTIONAL_METADATA

log = logging.getLogger(__name__)

_TRACK_PREFIX = re.compile(r"^\s*(?:(?:cd|disc)\s*\d+\s*[-_. ]\s*)?(\d{1,3})\s*(?:[-_.)]\s*|\s+)(.+)$",
                           re.IGNORECASE)
_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")
# Folder names that say nothing about artist or album.
_GENERIC_DIRS = {"", ".", "music", "library", "audio", "mp3", "flac", "downloads", "tmp", "media",
                 "unknown", "various", "various artists", "misc", "songs", "tracks"}


def _first(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
        if value is None:
            return None
    text = str(value).replace("\x00", " ").strip()
    return text or None


def _parse_int(text: str | None) -> int | None:
    if not text:
        return None
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def _parse_year(text: str | None) -> int | None:
    if not text:
        return None
    match = _YEAR.search(text)
    return int(match.group(1)) if match else None


def read_tags(path: str) -> tuple[dict[str, Any], float | None]:
    """Tags through mutagen's easy interface, plus the container's duration (or None)."""
    tags: dict[str, Any] = {}
    duration = None
    try:
        import mutagen

        audio = mutagen.File(path, easy=True)
    except Exception as exc:   # mutagen raises many types on odd files; tags are optional
        log.debug("no tags for %s: %s", path, exc)
        return tags, None
    if audio is None:
        return tags, None
    info = getattr(audio, "info", None)
    length = getattr(info, "length", None)
    if isinstance(length, (int, float)) and length > 0:
        duration = float(length)
    raw = audio.tags or {}
    try:
        get = raw.get
        tags["artist"] = _first(get("artist")) or _first(get("albumartist"))
        tags["album"] = _first(get("album"))
        tags["title"] = _first(get("title"))
        tags["genre"] = _first(get("genre"))
        tags["year"] = _parse_year(_first(get("date")) or _first(get("year"))
                                   or _first(get("originaldate")))
        tags["track_number"] = _parse_int(_first(get("tracknumber")))
        tags["musicbrainz_trackid"] = _first(get("musicbrainz_trackid"))  # recording id: media-server link
    except Exception as exc:
        log.debug("unreadable tags in %s: %s", path, exc)
    return {k: v for k, v in tags.items() if v is not None}, duration


def names_from_path(path: str) -> dict[str, Any]:
    """Best-effort artist/album/title/track number from the file and folder names."""
    p = Path(path)
    stem = p.stem.replace("_", " ").strip()
    out: dict[str, Any] = {}
    match = _TRACK_PREFIX.match(stem)
    if match:
        out["track_number"] = int(match.group(1))
        stem = match.group(2).strip()
    if " - " in stem:
        artist, _, title = stem.partition(" - ")
        # "01 - Artist - Title" and "Artist - Title" both end up here
        out["artist"], out["title"] = artist.strip(), title.strip()
    else:
        out["title"] = stem or p.name
    parents = [part for part in p.parent.parts[-2:]]
    album_dir = parents[-1] if parents else ""
    artist_dir = parents[-2] if len(parents) > 1 else ""
    if album_dir.lower() not in _GENERIC_DIRS and album_dir != os.sep:
        year = _parse_year(album_dir)
        if year:
            out["year"] = year
        out["album"] = album_dir
        if "artist" not in out and artist_dir.lower() not in _GENERIC_DIRS and artist_dir != os.sep:
            out["artist"] = artist_dir
    return out


def read_metadata(path: str) -> tuple[dict[str, Any], float | None]:
    """The metadata fields (records.METADATA, None where unknown; the optional ones when tagged)
    and the container's duration."""
    tags, duration = read_tags(path)
    fallback = names_from_path(path)
    meta: dict[str, Any] = {}
    for field in METADATA:
        meta[field] = tags.get(field, fallback.get(field))
    if not tags.get("title"):
        # Without a tagged title, keep the path's artist/title pair together.
        meta["title"] = fallback.get("title")
        meta["artist"] = tags.get("artist") or fallback.get("artist")
    for field in OPTIONAL_METADATA:   # only when tagged: absent, not None, otherwise
        if tags.get(field):
            meta[field] = tags[field]
    return meta, duration

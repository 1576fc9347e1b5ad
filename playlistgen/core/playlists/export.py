"""Playlist formats (JSON, M3U8, XSPF), safe file names and atomic writes.

M3U8 is what Navidrome, Jellyfin and MPD read from a folder: UTF-8, ``#EXTM3U`` then, per
track, ``#EXTINF:<seconds>,<Artist> - <Title>`` and the path. Paths are written relative to the
playlist's folder when the two share a folder below the filesystem root (so library and playlist
folder can be mounted elsewhere together), otherwise absolute. mpv's parser reads them (tested).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import unicodedata
from pathlib import Path
from xml.etree import ElementTree as ET

log = logging.getLogger(__name__)

XSPF_NS = "http://xspf.org/ns/0/"
MEDIA_TYPES = {"json": "application/json", "m3u8": "audio/x-mpegurl; charset=utf-8",
               "xspf": "application/xspf+xml; charset=utf-8"}
FORMATS = tuple(MEDIA_TYPES)
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_filename(name: str, max_bytes: int = 180) -> str:
    """A file name that is safe on Linux, macOS and Windows shares, keeping unicode letters:
    NFC, no path separators or control/reserved characters, no leading dot, bounded length."""
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE.sub("_", name)
    name = " ".join(name.split()).strip(" .")
    if name.split(".")[0].casefold() in _RESERVED:
        name = "_" + name
    encoded = name.encode("utf-8")[:max_bytes]
    name = encoded.decode("utf-8", errors="ignore").rstrip(" .")
    return name or "playlist"


def _display(track: dict) -> str:
    artist = track.get("artist") or ""
    title = track.get("title") or Path(track.get("path") or "").stem
    text = f"{artist} - {title}" if artist else title
    return " ".join(text.split())  # no line breaks inside a directive


def _location(path: str, relative_to: str | Path | None) -> str:
    if relative_to is None:
        return path
    base = os.path.abspath(relative_to)
    try:
        if os.path.commonpath([os.path.abspath(path), base]) == os.path.abspath(os.sep):
            return path  # only the filesystem root in common (/music vs /home/x/playlists): absolute
        return os.path.relpath(path, base)
    except ValueError:  # another drive (Windows): keep it absolute
        return path


def to_m3u8(tracks: list[dict], relative_to: str | Path | None = None, title: str | None = None) -> str:
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{' '.join(title.split())}")
    for track in tracks:
        duration = track.get("duration_s")
        seconds = int(round(duration)) if isinstance(duration, (int, float)) else -1
        lines.append(f"#EXTINF:{seconds},{_display(track)}")
        lines.append(_location(track["path"], relative_to))
    return "\n".join(lines) + "\n"


def to_xspf(tracks: list[dict], title: str = "playlistgen", annotation: str | None = None) -> str:
    """XSPF 1: <playlist version="1" xmlns="http://xspf.org/ns/0/"> with a file:// location per track."""
    ET.register_namespace("", XSPF_NS)
    root = ET.Element(f"{{{XSPF_NS}}}playlist", {"version": "1"})
    ET.SubElement(root, f"{{{XSPF_NS}}}title").text = title
    ET.SubElement(root, f"{{{XSPF_NS}}}creator").text = "playlistgen"
    if annotation:
        ET.SubElement(root, f"{{{XSPF_NS}}}annotation").text = annotation
    ET.SubElement(root, f"{{{XSPF_NS}}}date").text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    track_list = ET.SubElement(root, f"{{{XSPF_NS}}}trackList")
    for track in tracks:
        node = ET.SubElement(track_list, f"{{{XSPF_NS}}}track")
        ET.SubElement(node, f"{{{XSPF_NS}}}location").text = Path(os.path.abspath(track["path"])).as_uri()
        ET.SubElement(node, f"{{{XSPF_NS}}}identifier").text = f"playlistgen:track:{track['id']}"
        for tag, key in (("title", "title"), ("creator", "artist"), ("album", "album")):
            if track.get(key):
                ET.SubElement(node, f"{{{XSPF_NS}}}{tag}").text = _xml_text(str(track[key]))
        if isinstance(track.get("track_number"), int) and track["track_number"] > 0:
            ET.SubElement(node, f"{{{XSPF_NS}}}trackNum").text = str(track["track_number"])
        if isinstance(track.get("duration_s"), (int, float)):
            ET.SubElement(node, f"{{{XSPF_NS}}}duration").text = str(int(round(track["duration_s"] * 1000)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _xml_text(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters from broken tags)."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20 and ch not in "\ufffe\uffff")


def to_json(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False)


def render(fmt: str, body: dict, relative_to: str | Path | None = None) -> str:
    """``body`` is a playlist response {"playlist": {...}, "tracks": [...]}."""
    tracks, name = body["tracks"], body["playlist"].get("name") or "playlistgen"
    if fmt == "m3u8":
        return to_m3u8(tracks, relative_to, title=name)
    if fmt == "xspf":
        return to_xspf(tracks, title=name, annotation=f"strategy: {body['playlist'].get('strategy')}")
    return to_json(body)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, fsync, then rename over it: a media
    server scanning the folder never sees half a playlist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

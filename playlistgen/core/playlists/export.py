"""Playlist formats (JSON, M3U8, XSPF), safe file names and atomic writes.

M3U8 is what Navidrome, Jellyfin and MPD read from a folder: UTF-8, ``#EXTM3U`` then, per
track, ``#EXTINF:<seconds>,<Artist> - <Title>`` and the path. mpv's parser reads them (tested).

Paths (``PathOptions``, from ``playlists.path_map`` and ``playlists.relative_paths``): a player
in another container sees the library under another root, so absolute paths go through
``path_map`` (the longest matching library prefix, whole path components, replaced by the
player's prefix: ``{/srv/music: /music}``). Relative paths need no mapping (playlist and music
move together); ``relative_paths: auto`` writes them when the playlist's folder is inside a
library folder (Navidrome resolves playlists found while scanning relative to themselves),
``always`` writes them always, ``never`` never. XSPF carries ``file://`` URIs of the mapped paths,
and per track the MixRamp fade hints when the analysis has them (``analysis/mixramp.py``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from ..library.paths import map_prefix

log = logging.getLogger(__name__)

XSPF_NS = "http://xspf.org/ns/0/"
MEDIA_TYPES = {"json": "application/json", "m3u8": "audio/x-mpegurl; charset=utf-8",
               "xspf": "application/xspf+xml; charset=utf-8"}
FORMATS = tuple(MEDIA_TYPES)
def _display(track: dict) -> str:
    artist = track.get("artist") or ""
    title = track.get("title") or Path(track.get("path") or "").stem
    text = f"{artist} - {title}" if artist else title
    return " ".join(text.split())  # no line breaks inside a directive


def map_path(path: str, path_map: Mapping[str, str] | None) -> str:
    """``path`` through ``path_map`` (:func:`~playlistgen.core.library.paths.map_prefix`: the
    longest matching prefix, whole path components), or unchanged when no prefix matches:
    {"/srv/music": "/music"} turns /srv/music/a/b.flac into /music/a/b.flac and leaves
    /srv/musicals/x.flac alone."""
    mapped = map_prefix(path, path_map or {})
    return path if mapped is None else mapped


@dataclass(frozen=True)
class PathOptions:
    """How exported playlists name files (``playlists.path_map``, ``playlists.relative_paths``) and
    what saved playlist files are called (``playlists.file_extension``: MPD lists only ``*.m3u`` in
    its playlist_directory, Navidrome and Jellyfin read both; the content is UTF-8 either way)."""

    path_map: Mapping[str, str] = field(default_factory=dict)
    relative: str = "auto"                 # auto | always | never
    library_roots: tuple[str, ...] = ()
    file_extension: str = "m3u8"           # m3u8 | m3u

    @classmethod
    def from_settings(cls, settings: Any) -> PathOptions:
        p = settings.playlists
        return cls(dict(p.path_map), p.relative_paths, tuple(str(r) for r in settings.library.paths),
                   p.file_extension)

    def base_for(self, folder: str | Path | None) -> Path | None:
        """The folder to write paths relative to for a playlist file in ``folder`` (None: absolute)."""
        if folder is None or self.relative == "never":
            return None
        folder = Path(os.path.abspath(folder))
        if self.relative == "always":
            return folder
        for root in self.library_roots:
            root_abs = Path(os.path.abspath(root))
            if folder == root_abs or root_abs in folder.parents:
                return folder
        return None

    def location(self, path: str, relative_to: str | Path | None) -> str:
        """One entry: relative to ``relative_to`` if given, else the absolute path through path_map."""
        if relative_to is not None:
            try:
                return os.path.relpath(path, os.path.abspath(relative_to))
            except ValueError:  # another drive (Windows)
                pass
        return map_path(os.path.abspath(path), self.path_map)


def to_m3u8(tracks: list[dict], relative_to: str | Path | None = None, title: str | None = None,
            paths: PathOptions | None = None) -> str:
    """``relative_to``: write paths relative to this folder (see ``PathOptions.base_for``);
    otherwise absolute, through ``paths.path_map``."""
    paths = paths or PathOptions()
    lines = ["#EXTM3U"]
    if title:
        lines.append(f"#PLAYLIST:{' '.join(title.split())}")
    for track in tracks:
        duration = track.get("duration_s")
        seconds = int(round(duration)) if isinstance(duration, (int, float)) else -1
        lines.append(f"#EXTINF:{seconds},{_display(track)}")
        lines.append(paths.location(track["path"], relative_to))
    return "\n".join(lines) + "\n"


MIXRAMP_REL = "https://mpd.readthedocs.io/en/latest/user.html#mixramp"


def to_xspf(tracks: list[dict], title: str = "playlistgen", annotation: str | None = None,
            paths: PathOptions | None = None) -> str:
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
        location = (paths or PathOptions()).location(track["path"], None)
        ET.SubElement(node, f"{{{XSPF_NS}}}location").text = Path(location).as_uri()
        ET.SubElement(node, f"{{{XSPF_NS}}}identifier").text = f"playlistgen:track:{track['id']}"
        for tag, key in (("title", "title"), ("creator", "artist"), ("album", "album")):
            if track.get(key):
                ET.SubElement(node, f"{{{XSPF_NS}}}{tag}").text = _xml_text(str(track[key]))
        if isinstance(track.get("track_number"), int) and track["track_number"] > 0:
            ET.SubElement(node, f"{{{XSPF_NS}}}trackNum").text = str(track["track_number"])
        if isinstance(track.get("duration_s"), (int, float)):
            ET.SubElement(node, f"{{{XSPF_NS}}}duration").text = str(int(round(track["duration_s"] * 1000)))
        ramp = track.get("mixramp") or {}
        for end in ("start", "end"):  # MPD's MIXRAMP_START / MIXRAMP_END values ("dB seconds;...")
            if ramp.get(end):
                ET.SubElement(node, f"{{{XSPF_NS}}}meta", {"rel": f"{MIXRAMP_REL}-{end}"}).text = ramp[end]
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _xml_text(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters from broken tags)."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20 and ch not in "\ufffe\uffff")


def to_json(body: dict) -> str:
    return json.dumps(body, ensure_ascii=False)


def render(fmt: str, body: dict, relative_to: str | Path | None = None, paths: PathOptions | None = None) -> str:
    """``body`` is a playlist response {"playlist": {...}, "tracks": [...]}."""
    tracks, name = body["tracks"], body["playlist"].get("name") or "playlistgen"
    if fmt == "m3u8":
        return to_m3u8(tracks, relative_to, title=name, paths=paths)
    if fmt == "xspf":
        return to_xspf(tracks, title=name, annotation=f"strategy: {body['playlist'].get('strategy')}", paths=paths)
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

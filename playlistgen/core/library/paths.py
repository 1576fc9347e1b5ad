"""Which paths are audio files to analyse: the candidate and ignore rules shared by the library
reconcile and the watcher (so `scan` never imports watchdog); the one longest-prefix path map
(``mediaserver.path_map``, ``playlists.path_map``, ``analysis.dask_path_map``); and the one safe
file name (uploads, saved playlists, downloads)."""

from __future__ import annotations

import fnmatch
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence

TEMP_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", "~")


def norm_exts(extensions: Sequence[str]) -> tuple[str, ...]:
    return tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)


def hidden_or_temp(path: str, root: str | None) -> bool:
    rel = os.path.relpath(path, root) if root else path
    parts = [p for p in rel.split(os.sep) if p not in ("", ".", "..")]
    name = parts[-1] if parts else ""
    return any(p.startswith(".") for p in parts) or name.lower().endswith(TEMP_SUFFIXES)


def ignored(path: str, ignore: Sequence[str], *, folder: bool = False) -> bool:
    names = (path, path + os.sep) if folder else (path,)
    return any(fnmatch.fnmatch(n, g) for g in ignore for n in names)


def is_candidate(path: str, extensions: Sequence[str], ignore: Sequence[str], *, root: str | None = None) -> bool:
    """True if ``path`` is an audio file to analyse: allowed extension (case-insensitive), no
    hidden component (relative to ``root`` when given), no temporary name, no ``ignore`` glob
    (fnmatch against the full path)."""
    return (path.lower().endswith(norm_exts(extensions)) and not hidden_or_temp(path, root)
            and not ignored(path, ignore))


def map_prefix(path: str, mapping: Mapping[str, str]) -> str | None:
    """``path`` with its longest matching ``mapping`` prefix replaced, or None when none matches.

    Whole path components only: {"/srv/music": "/music"} maps /srv/music/a.flac to /music/a.flac
    and leaves /srv/musicals alone. An empty prefix (or "/") matches every path, relative ones
    too; an empty target leaves the rest relative (a player's music folder)."""
    best: tuple[str, str] | None = None
    for src, dst in mapping.items():
        prefix = src.rstrip("/")
        if prefix == "" or path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, dst)
    if best is None:
        return None
    prefix, dst = best
    rest = path[len(prefix):].lstrip("/")
    if not rest:
        return dst.rstrip("/") or dst
    return f"{dst.rstrip('/')}/{rest}" if dst else rest


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

"""Which paths are audio files to analyse: the candidate and ignore rules shared by the library
reconcile and the watcher (so `scan` never imports watchdog); and the one longest-prefix path map
(``mediaserver.path_map``, ``playlists.path_map``, ``analysis.dask_path_map``)."""

from __future__ import annotations

import fnmatch
import os
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

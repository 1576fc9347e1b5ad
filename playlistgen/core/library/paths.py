"""Which paths are audio files to analyse: the candidate and ignore rules shared by the library
reconcile and the watcher (so `scan` never imports watchdog)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence

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

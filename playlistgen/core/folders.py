"""Can this process write into a folder it needs (the playlists' output folder, the database's
folder)? A Docker bind mount of a root-owned host folder is the usual case where it cannot: the
image runs as uid 10001. One check and one message with the fix, for start-up, doctor and a save."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import PlaylistgenError


class FolderNotWritableError(PlaylistgenError):
    """A folder playlistgen must write to is not writable: a set-up problem, not a bug."""

    code = "folder_not_writable"
    status = 503


def _existing(folder: Path) -> Path:
    """``folder`` or, when it does not exist yet, the nearest ancestor that does (where it will be made)."""
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def unwritable(folder: str | Path) -> str | None:
    """Why this process cannot create files in ``folder`` (made on first use when missing), or None."""
    folder = Path(folder)
    existing = _existing(folder)
    if not existing.is_dir():
        return f"'{existing}' is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        owner = existing.stat().st_uid
        return (f"'{existing}' is not writable by uid {os.geteuid()} (owner uid {owner}, mode "
                f"{existing.stat().st_mode & 0o777:o})")
    return None


def ownership_fix(folder: str | Path) -> str:
    """The fix, with this process's own ids (10001 in the Docker image)."""
    return (f"make it writable for uid {os.geteuid()}: chown -R {os.geteuid()}:{os.getegid()} {folder} "
            f"(a Docker bind mount: on the host), or run playlistgen as the folder's owner (docker run --user)")


def check_writable(folder: str | Path, key: str) -> None:
    """Raise FolderNotWritableError naming the config ``key``, the folder and the fix."""
    problem = unwritable(folder)
    if problem is not None:
        raise FolderNotWritableError(f"{key} {problem}", hint=ownership_fix(folder), path=str(folder))

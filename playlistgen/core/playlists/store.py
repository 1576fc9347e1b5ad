"""Saved playlists: rows in playlists/playlist_items plus a UTF-8 M3U file in ``playlists.output_dir``
that Navidrome, Jellyfin or MPD pick up, named ``<name>.m3u8`` or, with ``playlists.file_extension:
m3u``, ``<name>.m3u`` (the only files MPD lists in its playlist_directory)."""

from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Any

import apsw

from ...errors import NotFoundError, PlaylistgenError
from ..folders import FolderNotWritableError, check_writable, ownership_fix
from ..library.paths import safe_filename
from ..storage.db import Database
from .export import PathOptions, atomic_write, to_m3u8
from .tracks import track_objects

log = logging.getLogger(__name__)


def _file_for(output_dir: Path, name: str, playlist_id: int, extension: str) -> Path:
    base = safe_filename(name)
    path = output_dir / f"{base}.{extension}"
    # never overwrite another saved playlist's file: a repeated name gets the playlist id
    return path if not path.exists() else output_dir / f"{base} ({playlist_id}).{extension}"


def _write_error(exc: OSError, file_path: str, output_dir: Path) -> PlaylistgenError:
    """A refused write names the folder and the fix (a root-owned bind mount is the usual cause)."""
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return FolderNotWritableError(f"playlists.output_dir '{output_dir}' is not writable: cannot write "
                                      f"'{file_path}' ({exc.strerror})", hint=ownership_fix(output_dir),
                                      path=str(output_dir))
    return PlaylistgenError(f"cannot write playlist file '{file_path}': {exc.strerror}",
                            hint="check that playlists.output_dir exists and is writable", path=file_path)


def save_playlist(db: Database, output_dir: str | Path, body: dict, *, paths: PathOptions | None = None) -> dict:
    """Store the playlist of a response body and write its M3U file; returns the updated playlist meta."""
    output_dir = Path(output_dir).resolve()
    paths = paths or PathOptions()
    check_writable(output_dir, "playlists.output_dir")   # before storing a row whose file cannot be written
    meta, tracks = body["playlist"], body["tracks"]
    name = meta.get("name") or meta["strategy"]
    ids = [t["id"] for t in tracks]

    def insert(conn: apsw.Connection) -> tuple[int, str]:
        playlist_id = conn.execute("INSERT INTO playlists(name, strategy, params) VALUES (?, ?, ?) RETURNING id",
                                   (name, meta["strategy"], json.dumps(meta.get("params") or {}))).fetchall()[0][0]
        conn.executemany("INSERT INTO playlist_items(playlist_id, position, track_id) VALUES (?, ?, ?)",
                         [(playlist_id, i, track_id) for i, track_id in enumerate(ids)])
        path = _file_for(output_dir, name, playlist_id, paths.file_extension)
        conn.execute("UPDATE playlists SET params = json_set(params, '$.file', ?) WHERE id = ?",
                     (str(path), playlist_id))
        return playlist_id, str(path)

    playlist_id, file_path = db.write(insert)
    try:
        _write_file(file_path, tracks, output_dir, name, paths)
    except OSError as exc:
        db.write(lambda c: c.execute("DELETE FROM playlists WHERE id = ?", (playlist_id,)))
        raise _write_error(exc, file_path, output_dir) from None
    log.info("saved playlist %d '%s' (%d tracks) to %s", playlist_id, name, len(ids), file_path)
    return {**meta, "id": playlist_id, "name": name, "file": file_path}


def _write_file(file_path: str, tracks: list[dict], output_dir: Path, name: str, paths: PathOptions | None) -> None:
    """The M3U file, paths as ``playlists.relative_paths`` / ``path_map`` say (PathOptions)."""
    paths = paths or PathOptions()
    atomic_write(Path(file_path), to_m3u8(tracks, relative_to=paths.base_for(output_dir), title=name, paths=paths))


def replace_playlist(db: Database, output_dir: str | Path, playlist_id: int, body: dict, *,
                     paths: PathOptions | None = None) -> dict:
    """Give saved playlist ``playlist_id`` the tracks and params of a new response body in place —
    same id, same file — as a refreshed scheduled mix needs; returns the updated playlist meta.
    A file with another extension than ``playlists.file_extension`` (the setting changed) is
    replaced by one with the configured extension."""
    output_dir = Path(output_dir).resolve()
    paths = paths or PathOptions()
    meta, tracks = body["playlist"], body["tracks"]
    name = meta.get("name") or meta["strategy"]
    ids = [t["id"] for t in tracks]
    stale: list[str] = []

    def update(conn: apsw.Connection) -> str:
        rows = conn.execute("SELECT json_extract(params, '$.file') FROM playlists WHERE id = ?",
                            (playlist_id,)).fetchall()
        if not rows:
            raise NotFoundError(f"no saved playlist with id {playlist_id}")
        file_path = rows[0][0]
        if not file_path or Path(file_path).suffix != f".{paths.file_extension}":
            stale[:] = [file_path] if file_path else []
            file_path = str(_file_for(output_dir, name, playlist_id, paths.file_extension))
        conn.execute("UPDATE playlists SET name = ?, strategy = ?, params = ? WHERE id = ?",
                     (name, meta["strategy"], json.dumps({**(meta.get("params") or {}), "file": file_path}),
                      playlist_id))
        conn.execute("DELETE FROM playlist_items WHERE playlist_id = ?", (playlist_id,))
        conn.executemany("INSERT INTO playlist_items(playlist_id, position, track_id) VALUES (?, ?, ?)",
                         [(playlist_id, i, track_id) for i, track_id in enumerate(ids)])
        return file_path

    file_path = db.write(update)
    try:
        _write_file(file_path, tracks, output_dir, name, paths)
    except OSError as exc:
        raise _write_error(exc, file_path, output_dir) from None
    for old_file in stale:   # written under the previous playlists.file_extension
        Path(old_file).unlink(missing_ok=True)
    log.info("refreshed playlist %d '%s' (%d tracks) in %s", playlist_id, name, len(ids), file_path)
    return {**meta, "id": playlist_id, "name": name, "file": file_path}


def list_playlists(db: Database, limit: int, offset: int) -> dict:
    total = db.query("SELECT count(*) FROM playlists")[0][0]
    rows = db.query("SELECT p.id, p.name, p.strategy, p.created_at, json_extract(p.params, '$.file'), "
                    "(SELECT count(*) FROM playlist_items i WHERE i.playlist_id = p.id) "
                    "FROM playlists p ORDER BY p.id DESC LIMIT ? OFFSET ?", (limit, offset))
    return {"total": total, "limit": limit, "offset": offset,
            "playlists": [{"id": r[0], "name": r[1], "strategy": r[2], "created_at": r[3], "file": r[4],
                           "track_count": r[5]} for r in rows]}


def get_playlist_name(db: Database, playlist_id: int) -> str:
    rows = db.query("SELECT name FROM playlists WHERE id = ?", (playlist_id,))
    if not rows:
        raise NotFoundError(f"no saved playlist with id {playlist_id}", hint="list them with GET /api/v1/playlists")
    return rows[0][0]


def delete_playlist(db: Database, playlist_id: int) -> dict:
    """Delete a saved playlist and its M3U8 file (only if the file is still in the output folder)."""
    def run(conn: apsw.Connection) -> str | None:
        rows = conn.execute("DELETE FROM playlists WHERE id = ? RETURNING json_extract(params, '$.file')",
                            (playlist_id,)).fetchall()
        if not rows:
            raise NotFoundError(f"no saved playlist with id {playlist_id}")
        return rows[0][0]

    file_path = db.write(run)
    if file_path:
        try:
            Path(file_path).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("playlist %d deleted, but its file %s stays: %s", playlist_id, file_path, exc.strerror)
    log.info("deleted saved playlist %d", playlist_id)
    return {"deleted": playlist_id, "file": file_path}


def get_playlist(db: Database, playlist_id: int) -> dict:
    """{"playlist": {...}, "tracks": [...]}; tracks whose files went missing are left out."""
    rows = db.query("SELECT id, name, strategy, params, created_at FROM playlists WHERE id = ?", (playlist_id,))
    if not rows:
        raise NotFoundError(f"no saved playlist with id {playlist_id}", hint="list them with GET /api/v1/playlists")
    pid, name, strategy, params, created_at = rows[0]
    ids = [r[0] for r in db.query("SELECT track_id FROM playlist_items WHERE playlist_id = ? ORDER BY position",
                                  (pid,))]
    tracks = track_objects(db, ids)
    params_obj: dict[str, Any] = json.loads(params)
    meta = {"id": pid, "name": name, "strategy": strategy, "params": params_obj, "created_at": created_at,
            "file": params_obj.get("file"), "size": len(tracks),
            "duration_s": round(sum(t["duration_s"] or 0 for t in tracks), 1)}
    if len(tracks) < len(ids):
        meta["notes"] = [f"{len(ids) - len(tracks)} track(s) left out: their files are missing"]
    pushed = db.query("SELECT server_playlist_id, pushed_at, songs_pushed, songs_left_out FROM mediaserver_playlists "
                      "WHERE playlist_id = ?", (pid,))
    if pushed:
        server_id, pushed_at, songs, left_out = pushed[0]
        meta["mediaserver"] = {"server_playlist_id": server_id, "pushed_at": pushed_at, "songs_pushed": songs,
                               "songs_left_out": left_out}
        if left_out:
            meta.setdefault("notes", []).append(f"{left_out} track(s) left out of the media-server playlist: "
                                                "the server has no song linked to them")
    return {"playlist": meta, "tracks": tracks}

"""Saved playlists: rows in playlists/playlist_items plus an .m3u8 file in ``playlists.output_dir``
that Navidrome, Jellyfin or MPD pick up."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import apsw

from ...errors import NotFoundError, PlaylistgenError
from ..db import Database
from .export import atomic_write, safe_filename, to_m3u8
from .tracks import track_objects

log = logging.getLogger(__name__)


def _file_for(output_dir: Path, name: str, playlist_id: int) -> Path:
    base = safe_filename(name)
    path = output_dir / f"{base}.m3u8"
    # never overwrite another saved playlist's file: a repeated name gets the playlist id
    return path if not path.exists() else output_dir / f"{base} ({playlist_id}).m3u8"


def save_playlist(db: Database, output_dir: str | Path, body: dict) -> dict:
    """Store the playlist of a response body and write its M3U8; returns the updated playlist meta."""
    output_dir = Path(output_dir).resolve()
    meta, tracks = body["playlist"], body["tracks"]
    name = meta.get("name") or meta["strategy"]
    ids = [t["id"] for t in tracks]

    def insert(conn: apsw.Connection) -> tuple[int, str]:
        playlist_id = conn.execute("INSERT INTO playlists(name, strategy, params) VALUES (?, ?, ?) RETURNING id",
                                   (name, meta["strategy"], json.dumps(meta.get("params") or {}))).fetchall()[0][0]
        conn.executemany("INSERT INTO playlist_items(playlist_id, position, track_id) VALUES (?, ?, ?)",
                         [(playlist_id, i, track_id) for i, track_id in enumerate(ids)])
        path = _file_for(output_dir, name, playlist_id)
        conn.execute("UPDATE playlists SET params = json_set(params, '$.file', ?) WHERE id = ?",
                     (str(path), playlist_id))
        return playlist_id, str(path)

    playlist_id, file_path = db.write(insert)
    try:
        atomic_write(Path(file_path), to_m3u8(tracks, relative_to=output_dir, title=name))
    except OSError as exc:
        db.write(lambda c: c.execute("DELETE FROM playlists WHERE id = ?", (playlist_id,)))
        raise PlaylistgenError(f"cannot write playlist file '{file_path}': {exc.strerror}",
                               hint="check that playlists.output_dir exists and is writable", path=file_path) from None
    log.info("saved playlist %d '%s' (%d tracks) to %s", playlist_id, name, len(ids), file_path)
    return {**meta, "id": playlist_id, "name": name, "file": file_path}


def list_playlists(db: Database, limit: int, offset: int) -> dict:
    total = db.query("SELECT count(*) FROM playlists")[0][0]
    rows = db.query("SELECT p.id, p.name, p.strategy, p.created_at, json_extract(p.params, '$.file'), "
                    "(SELECT count(*) FROM playlist_items i WHERE i.playlist_id = p.id) "
                    "FROM playlists p ORDER BY p.id DESC LIMIT ? OFFSET ?", (limit, offset))
    return {"total": total, "limit": limit, "offset": offset,
            "playlists": [{"id": r[0], "name": r[1], "strategy": r[2], "created_at": r[3], "file": r[4],
                           "track_count": r[5]} for r in rows]}


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
    return {"playlist": meta, "tracks": tracks}

"""Saved playlists as native playlists on the media server.

* A saved playlist is created on the server once (``createPlaylist``); pushing it again replaces
  its songs in place under the same server id — never a second copy. ``adopt_name=True`` (used
  for scheduled mixes saved afresh under a stable name) takes over the server playlist an earlier
  playlist of the same name was pushed to.
* Playlists made to be pushed (saved ones, scheduled mixes) are chosen among the tracks the server
  has (``server_track_mask``, hooked into the playlist service by ``service.hook_playlists``), so
  they arrive at the size asked for; tracks without a server song (a playlist saved before the
  first link, a song gone since) are left out and counted (``songs_left_out``, and a note).
* Deleting a saved playlist deletes its server playlist only if playlistgen created it; server
  playlists playlistgen did not create are never touched. A delete the server could not take is
  remembered and retried after the next link.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ....errors import MediaServerError, NotFoundError
from ...storage.db import Database
from ...storage.files import live

if TYPE_CHECKING:
    from ...playlists.catalog import Catalog
    from .protocol import MediaServerClient

log = logging.getLogger(__name__)

PENDING_DELETES = "pending_deletes"


def server_track_mask(db: Database, cat: Catalog) -> np.ndarray:
    """Catalog rows the media server has a song for (bool per row): what a playlist pushed there
    is chosen from, so it arrives whole."""
    ids = np.asarray([r[0] for r in db.query("SELECT DISTINCT track_id FROM mediaserver_songs "
                                             "WHERE track_id IS NOT NULL")], dtype=np.int64)
    mask = np.zeros(cat.size, dtype=bool)
    rows = cat.rows_of(ids)
    mask[rows[rows >= 0]] = True
    return mask


def server_song_ids(db: Database, track_ids: list[int]) -> list[str | None]:
    """The server song of each track (None where the server has none); a track the server holds
    twice (copies) gets the song matched the most exactly."""
    if not track_ids:
        return []
    rank = "CASE method WHEN 'path' THEN 0 WHEN 'suffix' THEN 1 WHEN 'mbid' THEN 2 ELSE 3 END"
    found: dict[int, str] = {}
    unique = sorted(set(track_ids))
    for i in range(0, len(unique), 500):
        chunk = unique[i:i + 500]
        rows = db.query(f"SELECT track_id, server_id FROM mediaserver_songs WHERE track_id IN "
                        f"({','.join('?' * len(chunk))}) ORDER BY {rank} DESC, server_id DESC", chunk)
        found.update({t: s for t, s in rows})  # the best-ranked row comes last and wins
    return [found.get(t) for t in track_ids]


class PlaylistPusher:
    def __init__(self, db: Database, client: MediaServerClient) -> None:
        self.db = db
        self.client = client

    def push(self, playlist_id: int, *, adopt_name: bool = False) -> dict:
        """Create or update the server copy of saved playlist ``playlist_id``; returns
        {server_playlist_id, songs_pushed, songs_left_out, created}."""
        rows = self.db.query("SELECT name FROM playlists WHERE id = ?", (playlist_id,))
        if not rows:
            raise NotFoundError(f"no saved playlist with id {playlist_id}",
                                hint="list them with GET /api/v1/playlists")
        name = rows[0][0]
        track_ids = [r[0] for r in self.db.query(
            "SELECT i.track_id FROM playlist_items i WHERE i.playlist_id = ? AND EXISTS (SELECT 1 FROM files f "
            f"WHERE f.track_id = i.track_id AND {live('f')}) ORDER BY i.position", (playlist_id,))]
        ids = server_song_ids(self.db, track_ids)
        song_ids = list(dict.fromkeys(s for s in ids if s is not None))
        left_out = sum(1 for s in ids if s is None)
        known = self.db.query("SELECT server_playlist_id, created_by_us FROM mediaserver_playlists "
                              "WHERE playlist_id = ?", (playlist_id,))
        adopted_from = None
        if not known and adopt_name:
            known = self.db.query("SELECT server_playlist_id, created_by_us, playlist_id FROM mediaserver_playlists "
                                  "WHERE name = ? AND created_by_us = 1 ORDER BY pushed_at DESC LIMIT 1", (name,))
            adopted_from = known[0][2] if known else None
        if known and not known[0][1]:
            raise MediaServerError(f"saved playlist {playlist_id} is linked to a server playlist playlistgen did "
                                   "not create", "playlistgen never changes those")
        server_id = self.client.create_or_update_playlist(name, song_ids, known[0][0] if known else None)
        created = not known or server_id != known[0][0]

        def record(conn: Any) -> None:
            if adopted_from is not None:
                conn.execute("DELETE FROM mediaserver_playlists WHERE playlist_id = ?", (adopted_from,))
            conn.execute(
                "INSERT INTO mediaserver_playlists(playlist_id, server_playlist_id, name, created_by_us, pushed_at, "
                "songs_pushed, songs_left_out) VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT(playlist_id) DO UPDATE SET "
                "server_playlist_id = excluded.server_playlist_id, name = excluded.name, "
                "pushed_at = excluded.pushed_at, songs_pushed = excluded.songs_pushed, "
                "songs_left_out = excluded.songs_left_out",
                (playlist_id, server_id, name, time.time(), len(song_ids), left_out))

        self.db.write(record)
        log.info("pushed playlist %d '%s' to the media server as %s (%d songs, %d left out)", playlist_id, name,
                 server_id, len(song_ids), left_out)
        return {"server_playlist_id": server_id, "songs_pushed": len(song_ids), "songs_left_out": left_out,
                "created": created}

    def unpushed(self) -> list[int]:
        """Saved playlists with no server copy yet."""
        return [r[0] for r in self.db.query(
            "SELECT p.id FROM playlists p WHERE NOT EXISTS (SELECT 1 FROM mediaserver_playlists m "
            "WHERE m.playlist_id = p.id) ORDER BY p.id")]

    def before_delete(self, playlist_id: int) -> None:
        """Called before saved playlist ``playlist_id`` is deleted: delete the server copy if we
        created it (remembered and retried when the server is unreachable)."""
        rows = self.db.query("SELECT server_playlist_id, created_by_us FROM mediaserver_playlists "
                             "WHERE playlist_id = ?", (playlist_id,))
        if not rows or not rows[0][1]:
            return
        self._delete_server_playlist(rows[0][0])

    def _delete_server_playlist(self, server_id: str) -> None:
        try:
            self.client.delete_playlist(server_id)
            log.info("deleted server playlist %s", server_id)
        except MediaServerError as exc:
            if exc.subsonic_code == 70:  # already gone
                return
            log.warning("could not delete server playlist %s (%s): retried after the next link",
                        server_id, exc.message)
            self._remember_delete(server_id)

    def _pending(self) -> list[str]:
        rows = self.db.query("SELECT value FROM mediaserver_state WHERE key = ?", (PENDING_DELETES,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else []

    def _remember_delete(self, server_id: str) -> None:
        pending = sorted({*self._pending(), server_id})
        self.db.write(lambda c: c.execute("INSERT OR REPLACE INTO mediaserver_state(key, value) VALUES (?, ?)",
                                          (PENDING_DELETES, json.dumps(pending))))

    def retry_deletes(self) -> None:
        pending = self._pending()
        if not pending:
            return
        self.db.write(lambda c: c.execute("DELETE FROM mediaserver_state WHERE key = ?", (PENDING_DELETES,)))
        for server_id in pending:
            self._delete_server_playlist(server_id)

    def push_all(self, playlist_ids: list[int] | None = None) -> dict:
        """Push the given saved playlists (default: every one); failures are counted, not raised,
        unless the server itself is unreachable."""
        ids = playlist_ids if playlist_ids is not None else [r[0] for r in self.db.query(
            "SELECT id FROM playlists ORDER BY id")]
        out = {"pushed": 0, "failed": 0, "songs_left_out": 0, "errors": []}
        for pid in ids:
            try:
                result = self.push(pid)
            except MediaServerError as exc:
                if exc.subsonic_code is None or exc.subsonic_code == 40:
                    raise
                out["failed"] += 1
                out["errors"].append(f"playlist {pid}: {exc.message}")
                continue
            out["pushed"] += 1
            out["songs_left_out"] += result["songs_left_out"]
        return out

"""Sonic similarity with the media server's song ids: what the ``/rest`` proxy (getSimilarSongs,
getSonicSimilarTracks, findSonicPath) and the AudioMuse-compatible routes answer.

Server ids map to playlistgen tracks through ``mediaserver_songs`` (filled by the link). The
playlists come from the playlist service (``PlaylistService.pick``: strategy ``radio`` for similar
songs, ``path`` for paths) over the current catalog, restricted to tracks the server has, so
every answer can be played there. Similarity is ``1 − d / d_max`` with ``d_max`` the distance
from the query song to the most different track in the library: 1.0 is the query song itself,
0.0 the most different song, the same scale for both metrics (cosine and euclidean) and every
library size.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....config import Settings
from ...playlists.catalog import Catalog
from ...playlists.diversity import Diversity
from ...playlists.index import distances, query_of
from ...playlists.service import PlaylistRequest, PlaylistService
from ...storage.db import Database
from .push import server_track_mask

log = logging.getLogger(__name__)

LINKED_TTL_S = 15.0   # how long the set of tracks the server has is reused between requests
MAX_ARTIST_SEEDS = 10  # an artist/album id seeds a radio with at most this many of its songs


@dataclass
class Match:
    track_id: int
    server_id: str
    entry: dict          # the server's Child for the song
    similarity: float    # 0..1 (1 = the query song)
    distance: float      # d / d_max, 0..1 (AudioMuse's "distance")
    step: float = 0.0    # on a path: distance from the previous song, same scale


def child_from_row(server_id: str, child: str | None, title: str | None, artist: str | None,
                   album: str | None, duration_s: float | None, path: str | None) -> dict:
    """The stored Child of a server song; a minimal one from the stored columns when absent."""
    if child:
        try:
            entry = json.loads(child)
            if isinstance(entry, dict):
                return entry
        except ValueError:
            pass
    entry: dict[str, Any] = {"id": server_id, "isDir": False, "type": "music", "title": title or "",
                             "artist": artist or "", "album": album or ""}
    if duration_s is not None:
        entry["duration"] = int(round(duration_s))
    if path:
        entry["path"] = path
    return entry


class SonicSearch:
    """Built once by the app (`playlistgen/app.py`); thread-safe."""

    def __init__(self, db: Database, playlists: PlaylistService, settings: Settings, *,
                 linked_ttl_s: float = LINKED_TTL_S):
        self.db = db
        self.playlists = playlists
        self.settings = settings
        self.linked_ttl_s = linked_ttl_s
        self._lock = threading.Lock()
        self._linked: tuple[int, float, np.ndarray] | None = None  # (id(catalog), when, mask)

    # --- ids ---------------------------------------------------------------------------------
    def track_of(self, server_id: str) -> int | None:
        rows = self.db.query("SELECT track_id FROM mediaserver_songs WHERE server_id = ?", (str(server_id),))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def is_song(self, server_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM mediaserver_songs WHERE server_id = ?", (str(server_id),)))

    def song_by_name(self, title: str, artist: str) -> str | None:
        """The server id of an analysed song with this title and artist (case-insensitive)."""
        rows = self.db.query("SELECT server_id FROM mediaserver_songs WHERE track_id IS NOT NULL AND "
                             "title = ? COLLATE NOCASE AND artist = ? COLLATE NOCASE "
                             "ORDER BY play_count DESC, server_id LIMIT 1", (title.strip(), artist.strip()))
        return str(rows[0][0]) if rows else None

    def tracks_of_container(self, some_id: str, limit: int = MAX_ARTIST_SEEDS) -> list[int]:
        """Tracks of the songs whose artist, album or folder has this id (most played first)."""
        rows = self.db.query(
            "SELECT track_id FROM mediaserver_songs WHERE track_id IS NOT NULL AND child IS NOT NULL AND "
            "(json_extract(child, '$.artistId') = ?1 OR json_extract(child, '$.albumId') = ?1 "
            " OR json_extract(child, '$.parent') = ?1) "
            "GROUP BY track_id ORDER BY max(play_count) DESC, min(server_id) LIMIT ?2", (str(some_id), limit))
        return [int(r[0]) for r in rows]

    def linked_mask(self, cat: Catalog) -> np.ndarray:
        """Catalog rows the server has a song for."""
        with self._lock:
            cached = self._linked
            if cached and cached[0] == id(cat) and time.monotonic() - cached[1] < self.linked_ttl_s:
                return cached[2]
        mask = server_track_mask(self.db, cat)
        with self._lock:
            self._linked = (id(cat), time.monotonic(), mask)
        return mask

    def entries(self, track_ids: list[int], prefer: dict[int, str] | None = None) -> dict[int, tuple[str, dict]]:
        """track id → (server id, Child) for the given tracks; ``prefer`` picks the server song of a
        track that has several (e.g. the id the client asked about)."""
        if not track_ids:
            return {}
        rows = self.db.query(
            "SELECT track_id, server_id, child, title, artist, album, duration_s, path FROM mediaserver_songs "
            "WHERE track_id IN (SELECT value FROM json_each(?)) ORDER BY play_count DESC, server_id",
            (json.dumps(sorted({int(t) for t in track_ids})),))
        out: dict[int, tuple[str, dict]] = {}
        prefer = prefer or {}
        for track_id, server_id, child, title, artist, album, duration_s, path in rows:
            if track_id in out and prefer.get(track_id) != server_id:
                continue
            out[track_id] = (server_id, child_from_row(server_id, child, title, artist, album, duration_s, path))
        return out

    # --- answers -----------------------------------------------------------------------------
    @staticmethod
    def _scale(cat: Catalog, row: int) -> tuple[np.ndarray, float]:
        """d / d_max from ``row`` to every catalog row (0 = itself, 1 = the most different), and d_max."""
        d = distances(cat, *query_of(cat, [row]))[0].astype(np.float64)
        finite = np.isfinite(d)
        d_max = float(d[finite].max()) if finite.any() else 0.0
        if d_max <= 0:
            return np.where(finite, 0.0, 1.0), 1.0
        return np.where(finite, np.clip(d / d_max, 0.0, 1.0), 1.0), d_max

    def _matches(self, cat: Catalog, rows: list[int], scale: np.ndarray, prefer: dict[int, str]) -> list[Match]:
        ids = [int(cat.track_ids[r]) for r in rows]
        found = self.entries(ids, prefer)
        out = []
        for row, track_id in zip(rows, ids, strict=True):
            if track_id not in found:
                continue  # unlinked since the mask was taken
            server_id, entry = found[track_id]
            dist = float(scale[row])
            out.append(Match(track_id, server_id, entry, round(1.0 - dist, 4), round(dist, 4)))
        return out

    def similar(self, track_ids: list[int], count: int, *, diversity: Diversity | None = None,
                prefer: dict[int, str] | None = None, order: str | None = "as_is",
                listener: str | None = None) -> list[Match]:
        """The ``count`` songs the server has that sound most like the seeds (the seeds and other
        versions of them left out), similarity measured from the first seed; most similar first
        (``order`` as_is), or as a radio plays them (None: the radio strategy's own order), without
        what ``listener`` (None: the linked user) skipped recently (core/feedback)."""
        rules = diversity if diversity is not None else Diversity(0, 0, 0, True)
        picked = self.playlists.pick(PlaylistRequest.of(
            "radio", self.settings, seeds=track_ids, size=count + len(track_ids), diversity=rules,
            params={"include_seeds": True, "blend": "interleave"}, order=order,
            include_excluded=True, restrict=self.linked_mask, listener=listener))   # playlists.exclude not here
        cat, seeds = picked.catalog, set(picked.seeds)
        rows = [int(r) for r in picked.rows if int(r) not in seeds][:count]
        return self._matches(cat, rows, self._scale(cat, picked.seeds[0])[0], prefer or {})

    def path(self, start: int, end: int, count: int, *, prefer: dict[int, str] | None = None) -> list[Match]:
        """A smooth path of ``count`` songs (both ends included) from ``start`` to ``end``,
        similarity measured from the start song."""
        picked = self.playlists.pick(PlaylistRequest.of(
            "path", self.settings, seeds=[start, end], size=max(count, 2), order="as_is",
            include_excluded=True, restrict=self.linked_mask))
        cat, rows = picked.catalog, [int(r) for r in picked.rows]
        scale, d_max = self._scale(cat, picked.seeds[0])
        steps = distances(cat, *query_of(cat, rows[:-1]), rows=np.asarray(rows[1:]))  # (m-1, m-1)
        matches = self._matches(cat, rows, scale, prefer or {})
        by_track = {int(cat.track_ids[r]): i for i, r in enumerate(rows)}
        for m in matches:
            i = by_track[m.track_id]
            m.step = round(min(float(steps[i - 1, i - 1]) / d_max, 1.0), 4) if i else 0.0
        return matches

    def playlist_rules(self) -> Diversity:
        """The configured diversity rules (playlists.*): for radio-like answers."""
        return Diversity.configured(self.settings.playlists)

    # --- listening history -------------------------------------------------------------------
    def record_plays(self, server_ids: list[str], times_ms: list[int | None]) -> int:
        """A scrobble (submission): one more play and the last-played time of each song; returns
        how many songs we know."""
        now = time.time()
        plays = [(str(sid), (t / 1000.0) if t else now) for sid, t in
                 zip(server_ids, [*times_ms, *([None] * (len(server_ids) - len(times_ms)))], strict=True)]

        def write(conn: Any) -> int:
            changed = 0
            for sid, when in plays:
                conn.execute("UPDATE mediaserver_songs SET play_count = play_count + 1, "
                             "last_played = max(coalesce(last_played, 0), ?) WHERE server_id = ?", (when, sid))
                changed += conn.changes()
            return changed

        changed = self.db.write(write)
        log.debug("scrobble: %d of %d song(s) known", changed, len(plays))
        return changed

"""Similar artists with the media server's artist ids: what ``GET /api/v1/artists/<name-or-id>/similar``,
the ``/rest`` proxy's ``getArtistInfo``/``getArtistInfo2`` and artist ``getSimilarSongs``, and the
AudioMuse-compatible ``/api/similar_artists`` answer.

The sound of an artist and the ranking are ``core.playlists.artists``'. This module maps between
its artists (normalised names over playlistgen's tracks) and the server's: every linked song's
``Child`` (``mediaserver_songs.child``) names its ``artistId``; a playlistgen artist's server id
is the one most of its linked songs carry, and a server artist id stands for the playlistgen
artist most of its songs' tracks belong to. The map is rebuilt when the catalog or the link
changes (checked at most every ``LINKED_TTL_S``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ....config import Settings
from ....errors import BadRequestError
from ...playlists.artists.profiles import ArtistProfiles, profiles_of
from ...playlists.artists.similar import ArtistSimilarity, SimilarArtist, UnknownArtistError, resolve
from ...playlists.catalog import Catalog
from ...playlists.index import distances
from ...playlists.service import PlaylistRequest, PlaylistService
from ...storage.db import Database
from .sonic import LINKED_TTL_S, Match, SonicSearch

log = logging.getLogger(__name__)

REPRESENTATIVE_SONGS = 3   # songs per artist in the AudioMuse answer's component_matches


@dataclass
class ServerArtistMap:
    """playlistgen artist (profile code) ↔ server artist id, for one catalog and link state."""

    server_id: list[str | None]            # per profile code
    server_name: list[str | None]
    album_count: list[int]
    on_server: np.ndarray                  # bool per profile code
    by_server_id: dict[str, int] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)   # every artist id of a linked song, analysed or not


@dataclass(frozen=True)
class ServerSimilar:
    artist: SimilarArtist
    server_id: str
    server_name: str
    album_count: int


def build_map(rows: list[tuple], cat: Catalog, profiles: ArtistProfiles) -> ServerArtistMap:
    """``rows``: (track_id, artistId, artist, albumId) of the server's songs."""
    n = profiles.size
    ids: list[Counter] = [Counter() for _ in range(n)]
    names: dict[str, Counter] = {}
    albums: dict[str, set] = {}
    votes: dict[str, Counter] = {}
    known: set[str] = set()
    track_ids = np.array([r[0] if r[0] is not None else -1 for r in rows], dtype=np.int64)
    codes = np.full(len(rows), -1, dtype=np.int64)
    if len(rows) and cat.size:
        found = cat.rows_of(track_ids)
        codes = np.where(found >= 0, profiles.of_row[np.maximum(found, 0)], -1)
    for (_track, artist_id, artist, album_id), code in zip(rows, codes.tolist(), strict=True):
        if not artist_id:
            continue
        artist_id = str(artist_id)
        known.add(artist_id)
        names.setdefault(artist_id, Counter())[artist or ""] += 1
        if album_id:
            albums.setdefault(artist_id, set()).add(str(album_id))
        if code >= 0:
            ids[code][artist_id] += 1
            votes.setdefault(artist_id, Counter())[code] += 1
    server_id = [c.most_common(1)[0][0] if c else None for c in ids]
    return ServerArtistMap(
        server_id=server_id,
        server_name=[names[s].most_common(1)[0][0] or profiles.names[i] if s else None
                     for i, s in enumerate(server_id)],
        album_count=[len(albums.get(s, ())) if s else 0 for s in server_id],
        on_server=np.array([s is not None for s in server_id], dtype=bool),
        by_server_id={s: c.most_common(1)[0][0] for s, c in votes.items()}, known_ids=known)


class ServerArtists:
    """Built once by the app next to ``SonicSearch``; thread-safe."""

    def __init__(self, db: Database, playlists: PlaylistService, sonic: SonicSearch, settings: Settings, *,
                 ttl_s: float = LINKED_TTL_S) -> None:
        self.db = db
        self.playlists = playlists
        self.sonic = sonic
        self.settings = settings
        self.similarity = ArtistSimilarity(playlists.catalog)
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._map: tuple[int, tuple, float, ServerArtistMap] | None = None   # (id(profiles), link state, when, map)

    # --- the map -----------------------------------------------------------------------------
    def _link_state(self) -> tuple:
        return tuple(self.db.query("SELECT count(*), max(seen_at), count(track_id) FROM mediaserver_songs")[0])

    def server_map(self, cat: Catalog, profiles: ArtistProfiles) -> ServerArtistMap:
        now = time.monotonic()
        with self._lock:
            cached = self._map
        if cached and cached[0] == id(profiles) and now - cached[2] < self.ttl_s:
            return cached[3]
        state = self._link_state()
        if cached and cached[0] == id(profiles) and cached[1] == state:
            with self._lock:
                self._map = (cached[0], state, now, cached[3])
            return cached[3]
        rows = self.db.query("SELECT track_id, json_extract(child, '$.artistId'), json_extract(child, '$.artist'), "
                             "json_extract(child, '$.albumId') FROM mediaserver_songs WHERE child IS NOT NULL "
                             "AND json_valid(child)")
        built = build_map(rows, cat, profiles)
        with self._lock:
            self._map = (id(profiles), state, now, built)
        return built

    # --- answers -----------------------------------------------------------------------------
    def resolve(self, text: str) -> tuple[Catalog, ArtistProfiles, int]:
        """An artist by name (any case/"feat."/"The" variant), else by the media server's artist id."""
        cat, profiles = self.similarity.current()
        code = profiles.code(text)
        if code is None:
            code = self.server_map(cat, profiles).by_server_id.get(str(text).strip())
        if code is None:
            raise UnknownArtistError(text, profiles.names)
        return cat, profiles, code

    def similar(self, text: str, count: int, *, server_only: bool = False) -> dict:
        """``GET /api/v1/artists/<name-or-id>/similar``."""
        cat, profiles, code = self.resolve(text)
        smap = self.server_map(cat, profiles)
        if server_only and not smap.on_server.any():
            raise BadRequestError("server_only: no analysed song of the media server is linked yet",
                                  hint="set mediaserver.url and wait for the link (GET /api/v1/mediaserver/status)")
        found = self.similarity.similar(cat, profiles, code, count, smap.on_server if server_only else None)
        tracks = int(profiles.tracks[code])
        notes = ["score = similarity × (0.75 + 0.25 × confidence); confidence = tracks / (tracks + 2): an artist "
                 "with few analysed tracks ranks lower unless it sounds clearly closer"]
        if tracks < 3:
            notes.append(f"{profiles.names[code]} has only {tracks} analysed track(s): its sound, and so this "
                         "answer, rests on them")

        def server(c: int) -> dict:
            return {"server_id": smap.server_id[c]} if smap.server_id[c] else {}

        return {"artist": {"name": profiles.names[code], "tracks": tracks,
                           "tracks_in_profile": int(profiles.used[code]),
                           "confidence": round(float(profiles.confidence[code]), 4), **server(code)},
                "similar": [{**s.to_dict(), **server(s.code)} for s in found], "server_only": server_only,
                "metric": cat.metric, "notes": notes}

    def for_server(self, server_artist_id: str, count: int) -> tuple[int | None, list[ServerSimilar]] | None:
        """Similar artists the server has, with its ids, for a server artist id; None when no
        linked song has that artist id; (None, []) when none of its songs is analysed yet."""
        cat, profiles = self.similarity.current()
        smap = self.server_map(cat, profiles)
        if server_artist_id not in smap.known_ids:
            return None
        code = smap.by_server_id.get(server_artist_id)
        if code is None:
            return None, []
        return code, self._on_server(cat, profiles, smap, code, count, skip=server_artist_id)

    def for_server_code(self, code: int, count: int) -> tuple[int, list[ServerSimilar]]:
        """Like ``for_server`` for an artist found by name."""
        cat, profiles = self.similarity.current()
        return code, self._on_server(cat, profiles, self.server_map(cat, profiles), code, count)

    def _on_server(self, cat: Catalog, profiles: ArtistProfiles, smap: ServerArtistMap, code: int, count: int,
                   skip: str | None = None) -> list[ServerSimilar]:
        found = self.similarity.similar(cat, profiles, code, count + 1, smap.on_server)
        out = [ServerSimilar(s, smap.server_id[s.code] or "", smap.server_name[s.code] or s.name,
                             smap.album_count[s.code])
               for s in found if smap.server_id[s.code] and smap.server_id[s.code] != skip]
        return out[:count]

    def representative(self, code: int, towards: int, limit: int = REPRESENTATIVE_SONGS) -> list[dict]:
        """``code``'s server songs that sound most like artist ``towards``: [{item_id, title}]."""
        cat, profiles = self.similarity.current()
        rows = profiles.rows(code)
        rows = rows[self.sonic.linked_mask(cat)[rows]]
        if rows.size == 0:
            return []
        d = distances(cat, profiles.X[towards][None, :], profiles.present[towards][None, :], rows=rows)[0]
        best = rows[np.argsort(d, kind="stable")[: limit * 2]]   # spares for tracks unlinked since
        ids = [int(cat.track_ids[r]) for r in best]
        found = self.sonic.entries(ids)
        songs = [{"item_id": found[t][0], "title": str(found[t][1].get("title") or "")} for t in ids if t in found]
        return songs[:limit]

    def radio(self, server_artist_id: str, count: int, listener: str | None = None) -> list[Match] | None:
        """An artist radio (strategy artist_radio) of the server's songs, following ``listener``'s
        skips (core/feedback); None for an id that is no analysed artist of the server."""
        profiles_cat, profiles = self.similarity.current()
        code = self.server_map(profiles_cat, profiles).by_server_id.get(server_artist_id)
        if code is None:
            return None
        picked = self.playlists.pick(PlaylistRequest.of(
            "artist_radio", self.settings, params={"artist": profiles.names[code]}, size=count,
            include_excluded=True, restrict=self.sonic.linked_mask, listener=listener))
        name, cat = profiles.names[code], picked.catalog
        if cat is not profiles_cat:   # rebuilt meanwhile: the same artist in the new snapshot
            profiles = profiles_of(cat)
            code = resolve(profiles, name)
        rows = [int(r) for r in picked.rows]
        d = distances(cat, profiles.X[code][None, :], profiles.present[code][None, :])[0].astype(np.float64)
        finite = np.isfinite(d)
        d_max = float(d[finite].max()) if finite.any() and d[finite].max() > 0 else 1.0
        found = self.sonic.entries([int(cat.track_ids[r]) for r in rows])
        out = []
        for row in rows:
            track = int(cat.track_ids[row])
            if track in found:
                dist = min(float(d[row]) / d_max, 1.0) if finite[row] else 1.0
                out.append(Match(track, found[track][0], found[track][1], round(1 - dist, 4), round(dist, 4)))
        return out


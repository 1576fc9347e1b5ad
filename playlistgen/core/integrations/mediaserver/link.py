"""Linking: which playlistgen track each song of the media server is.

Every server song is matched, in this order, by
1. ``path``   — the server's path through ``mediaserver.path_map`` (or, for a relative path, under
   each library folder) is a file of ours;
2. ``suffix`` — the longest run of trailing path components shared with one of our files (at least
   folder + file name; the file name alone only when the durations agree within 2 s);
3. ``mbid``   — the MusicBrainz recording id (OpenSubsonic ``musicBrainzId``) equals a track's
   ``musicbrainz_trackid`` tag;
4. ``tags``   — normalised artist + title, duration within 2 s.
A song that matches nothing is stored with the reason. A song whose path (1) or path suffix (2)
names a library file that is not analysed yet — queued, being analysed, or on disk and not
reconciled yet — is "not analysed yet", and the run reports those files
(``LinkReport.waiting``) so the serving link can link each song as soon as its file's analysis
lands (``service.MediaServerService.on_outcome``), without reading the whole server again. The
whole server is read, matched and stored in one run; songs the server no longer has are dropped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...library.paths import is_candidate, map_prefix
from ...playlists.diversity import normalise_artist, normalise_title
from ...storage.db import Database
from ...storage.files import live_files
from ...storage.records import LIVE

if TYPE_CHECKING:
    from .protocol import MediaServerClient

log = logging.getLogger(__name__)

METHODS = ("path", "suffix", "mbid", "tags")
NOT_ANALYSED = "not analysed yet"   # its library file has no playable track yet; linked once it has
WAITING_STATUSES = ("pending", "analysing")
DURATION_TOLERANCE_S = 2.0
WRITE_CHUNK = 2000  # rows per writer job: analysis results are not held up behind one huge job


def tag_key(artist: str | None, title: str | None) -> str | None:
    title_key = normalise_title(title)
    if not title_key:
        return None
    return normalise_artist(artist) + "\x00" + title_key


def failed_reason(error: str | None) -> str:
    """Why a song whose library file failed analysis is not linked."""
    return f"its library file could not be analysed ({error or 'see GET /api/v1/tracks/failed'})"


def _iso_to_unix(value: Any) -> float | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _close(a: float | None, b: float | None) -> bool:
    return a is None or b is None or abs(a - b) <= DURATION_TOLERANCE_S


@dataclass
class LibraryIndex:
    """Our side: live files and their tracks, indexed every way the matcher looks them up."""

    roots: list[str]
    by_path: dict[str, int] = field(default_factory=dict)
    by_name: dict[str, list[tuple[list[str], int]]] = field(default_factory=dict)
    by_mbid: dict[str, int] = field(default_factory=dict)
    by_tags: dict[str, list[tuple[float | None, int]]] = field(default_factory=dict)
    duration: dict[int, float | None] = field(default_factory=dict)
    # files without a playable track: path -> why (NOT_ANALYSED, or why their analysis failed)
    waiting: dict[str, str] = field(default_factory=dict)
    waiting_by_name: dict[str, list[list[str]]] = field(default_factory=dict)
    # library.extensions / library.ignore: a file on disk under a root that the library will take
    # is waiting too (the reconcile has not reached it yet); empty extensions = no disk check
    extensions: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @classmethod
    def load(cls, db: Database, roots: Iterable[str], *, extensions: Iterable[str] = (),
             ignore: Iterable[str] = ()) -> LibraryIndex:
        index = cls([os.path.abspath(r) for r in roots], extensions=tuple(extensions), ignore=tuple(ignore))
        files = live_files(db)
        tracks = db.query(f"SELECT t.id, t.artist, t.title, t.duration_s, t.musicbrainz_trackid FROM tracks t "
                          f"WHERE {LIVE}")
        index.add(files, tracks)
        index.add_waiting(db.query("SELECT path, status, error FROM files WHERE status IN (?, ?, 'failed')",
                                   WAITING_STATUSES))
        return index

    def add(self, files: Iterable[tuple[str, int]], tracks: Iterable[tuple]) -> None:
        for path, track_id in files:
            self.by_path[path] = track_id
            parts = path.split(os.sep)
            self.by_name.setdefault(parts[-1], []).append((parts, track_id))
        for track_id, artist, title, duration, mbid in tracks:
            self.duration[track_id] = duration
            if mbid:
                self.by_mbid.setdefault(mbid.strip().lower(), track_id)
            key = tag_key(artist, title)
            if key:
                self.by_tags.setdefault(key, []).append((duration, track_id))

    def add_waiting(self, files: Iterable[tuple[str, str, str | None]]) -> None:
        """(path, status, error) of files that have no playable track (yet)."""
        for path, status, error in files:
            if path in self.by_path:
                continue
            if status in WAITING_STATUSES:
                self.waiting[path] = NOT_ANALYSED
            else:
                self.waiting[path] = failed_reason(error)
            parts = path.split(os.sep)
            self.waiting_by_name.setdefault(parts[-1], []).append(parts)

    def on_disk(self, path: str) -> bool:
        """An audio file under a library folder that the library will take, not reconciled yet."""
        if not self.extensions:
            return False
        root = next((r for r in self.roots if path.startswith(r.rstrip(os.sep) + os.sep)), None)
        return (root is not None and is_candidate(path, self.extensions, self.ignore, root=root)
                and os.path.isfile(path))


class Matcher:
    def __init__(self, index: LibraryIndex, path_map: dict[str, str]) -> None:
        self.index = index
        self.path_map = path_map
        # library path -> [(server song id, method)] of songs waiting for that file's analysis
        self.waiting: dict[str, list[tuple[str, str]]] = {}

    def match(self, song: dict) -> tuple[int | None, str | None, str | None]:
        """(track id, method, None) or (None, None, reason). A song whose file is not analysed yet
        is noted in :attr:`waiting`."""
        reasons = []
        duration = song.get("duration")
        duration = float(duration) if isinstance(duration, (int, float)) else None
        path = song.get("path")
        if isinstance(path, str) and path:
            found = self._by_path(path)
            if found is not None:
                return found, "path", None
            # the song is a file of ours that is not analysed yet: wait for it rather than match another
            file = self._waiting_path(path)
            if file is not None and self.index.waiting.get(file, NOT_ANALYSED) == NOT_ANALYSED:
                return self._wait(file, song, "path")
            found, why, by_suffix = self._by_suffix(path, duration)
            if found is not None:
                return found, "suffix", None
            if by_suffix is not None and why == NOT_ANALYSED:
                return self._wait(by_suffix, song, "suffix")
            reasons.append(self.index.waiting[file] if file is not None else why)   # its analysis failed
        else:
            reasons.append("the server reports no path")
        mbid = song.get("musicBrainzId")
        if isinstance(mbid, str) and mbid.strip():
            found = self.index.by_mbid.get(mbid.strip().lower())
            if found is not None:
                return found, "mbid", None
            reasons.append("no track with its MusicBrainz id")
        key = tag_key(song.get("artist"), song.get("title"))
        if key is None:
            reasons.append("no title to compare")
        else:
            candidates = self.index.by_tags.get(key) or []
            near = sorted((abs((d or 0) - (duration or 0)) if d is not None and duration is not None else 0.0, t)
                          for d, t in candidates if _close(d, duration))
            if near:
                return near[0][1], "tags", None
            reasons.append("a track with the same artist and title differs in duration by more than 2 s"
                           if candidates else "no track with the same artist and title")
        return None, None, "; ".join(reasons)

    def _wait(self, file: str, song: dict, method: str) -> tuple[None, None, str]:
        self.waiting.setdefault(file, []).append((str(song.get("id")), method))
        return None, None, NOT_ANALYSED

    def _local_paths(self, path: str) -> list[str]:
        """Where the server's ``path`` is in our library: through ``path_map``, or as it is when
        absolute, or under each library folder when relative."""
        if self.path_map:
            mapped = map_prefix(path, self.path_map)
            if mapped is not None:
                if os.path.isabs(mapped):
                    return [os.path.normpath(mapped)]
                path = mapped
        if os.path.isabs(path):
            return [os.path.normpath(path)]
        return [os.path.normpath(os.path.join(root, path)) for root in self.index.roots]

    def _by_path(self, path: str) -> int | None:
        by_path = self.index.by_path
        return next((by_path[p] for p in self._local_paths(path) if p in by_path), None)

    def _waiting_path(self, path: str) -> str | None:
        """The library file at the song's path that has no track yet (known, or on disk)."""
        local = self._local_paths(path)
        return next((p for p in local if p in self.index.waiting), None) or \
            next((p for p in local if self.index.on_disk(p)), None)

    def _by_suffix(self, path: str, duration: float | None) -> tuple[int | None, str, str | None]:
        """(track id, "", None), or (None, why not, the waiting file it is when that one is the
        only best match)."""
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        candidates = [*self.index.by_name.get(parts[-1], ()),
                      *((theirs, None) for theirs in self.index.waiting_by_name.get(parts[-1], ()))] if parts else []
        if not candidates:
            return None, "no library file with that path or file name", None
        best, best_ids = 0, set()
        for theirs, track_id in candidates:
            n = 0
            for a, b in zip(reversed(parts), reversed(theirs), strict=False):
                if a != b:
                    break
                n += 1
            key = track_id if track_id is not None else os.sep.join(theirs)   # a waiting file: its path
            if n > best:
                best, best_ids = n, {key}
            elif n == best:
                best_ids.add(key)
        if len(best_ids) > 1:
            return None, f"{len(best_ids)} library files share its last {best} path component(s)", None
        found = next(iter(best_ids))
        if isinstance(found, str):   # a file without a track: at least folder + file name to be sure
            if best >= 2:
                return None, self.index.waiting[found], found
            return None, "only the file name matches, a library file not analysed yet", None
        if best >= 2 or _close(self.index.duration.get(found), duration):
            return found, "", None
        return None, "only the file name matches and the durations differ", None


@dataclass
class LinkReport:
    songs: int = 0
    by_method: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    unmatched: int = 0
    removed: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    # library path -> [(server song id, method)]: unmatched songs whose file is not analysed yet
    waiting: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"songs": self.songs, "linked": sum(self.by_method.values()), "by_method": dict(self.by_method),
                "unmatched": self.unmatched, "not_analysed_yet": sum(len(s) for s in self.waiting.values()),
                "removed": self.removed, "seconds": round(self.seconds, 3), "cpu_s": round(self.cpu_s, 3)}


_UPSERT = (
    "INSERT INTO mediaserver_songs(server_id, track_id, method, unmatched_reason, path, artist, album, title, "
    "duration_s, play_count, last_played, starred, seen_at, child) VALUES (:server_id, :track_id, :method, "
    ":reason, :path, :artist, :album, :title, :duration_s, coalesce(:play_count, 0), :last_played, :starred, "
    ":seen_at, :child) ON CONFLICT(server_id) DO UPDATE SET track_id = excluded.track_id, "
    "method = excluded.method, unmatched_reason = excluded.unmatched_reason, path = excluded.path, "
    "artist = excluded.artist, album = excluded.album, title = excluded.title, duration_s = excluded.duration_s, "
    # a server that does not report play counts (e.g. supysonic) keeps the history scrobbles built
    "play_count = coalesce(:play_count, play_count), last_played = coalesce(:last_played, last_played), "
    "starred = excluded.starred, seen_at = excluded.seen_at, child = excluded.child")


def song_row(song: dict, track_id: int | None, method: str | None, reason: str | None, seen_at: float) -> dict:
    duration = song.get("duration")
    play_count = song.get("playCount")
    return {"server_id": str(song["id"]), "track_id": track_id, "method": method, "reason": reason,
            "path": song.get("path"), "artist": song.get("artist"), "album": song.get("album"),
            "title": song.get("title"), "duration_s": float(duration) if isinstance(duration, (int, float)) else None,
            "play_count": int(play_count) if isinstance(play_count, int) else None,
            "last_played": _iso_to_unix(song.get("played")), "starred": _iso_to_unix(song.get("starred")),
            "seen_at": seen_at, "child": json.dumps(song, ensure_ascii=False, separators=(",", ":"))}


def link(db: Database, client: MediaServerClient, roots: Iterable[str], path_map: dict[str, str], *,
         page: int = 500, extensions: Iterable[str] = (), ignore: Iterable[str] = ()) -> LinkReport:
    """Read every song of the server, match it, store the mapping. Returns the counts and costs.
    ``extensions``/``ignore`` (library.*): also recognise files on disk the library has not
    reconciled yet as "not analysed yet"."""
    started, cpu0 = time.perf_counter(), time.process_time()
    seen_at = time.time()
    matcher = Matcher(LibraryIndex.load(db, roots, extensions=extensions, ignore=ignore), path_map)
    report = LinkReport()
    batch: list[dict] = []
    pending = []
    for song in client.iter_songs(page=page):
        if song.get("id") is None or song.get("isDir") or song.get("isVideo"):
            continue
        track_id, method, reason = matcher.match(song)
        report.songs += 1
        if method:
            report.by_method[method] += 1
        else:
            report.unmatched += 1
        batch.append(song_row(song, track_id, method, reason, seen_at))
        if len(batch) >= WRITE_CHUNK:
            rows, batch = batch, []
            pending.append(db.submit(lambda c, rows=rows: c.executemany(_UPSERT, rows)))
    if batch:
        pending.append(db.submit(lambda c, rows=batch: c.executemany(_UPSERT, rows)))
    for future in pending:
        future.result()

    def drop_gone(conn: Any) -> int:
        conn.execute("DELETE FROM mediaserver_songs WHERE seen_at < ?", (seen_at,))
        return conn.changes()

    report.removed = db.write(drop_gone)
    report.waiting = matcher.waiting
    report.seconds = time.perf_counter() - started
    report.cpu_s = time.process_time() - cpu0
    return report

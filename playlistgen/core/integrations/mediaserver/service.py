"""The media-server link while serving: one background loop that links every
``mediaserver.link_interval_s``, after the library changed (a reconcile or analysis that changed
files, once it has been quiet for a moment), and on request; pushes saved playlists; keeps the
state that /api/v1/mediaserver/status, /health, /metrics and the dashboard show.

A wrong URL, a wrong password or a server that is down is one log line (repeated only when the
error changes), ``degraded`` in /health, and never stops analysis or the API.

Songs whose library file was not analysed yet at the last link ("not analysed yet") are linked as
soon as the file's analysis is committed: the scheduler reports each outcome to
:meth:`MediaServerService.on_outcome` (wired in ``app.py``), which notes the path and wakes the
thread; the thread links those songs with one small update, not a whole link.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ....config import Settings
from ....errors import MediaServerError
from ...loops import BackgroundLoop
from ...storage.db import Database
from ...storage.records import library_state
from .client import SubsonicClient
from .link import failed_reason, link
from .push import PlaylistPusher, server_track_mask
from .status import counts, link_status, read_state, write_state
from .transport import SubsonicTransport

if TYPE_CHECKING:
    from .protocol import MediaServerClient

log = logging.getLogger(__name__)

CHECK_S = 5.0            # how often the thread looks at the library state
LANDED_CHECK_S = 0.5     # how soon to look again for an analysed file whose result is not committed yet
LANDED_GIVE_UP_S = 120.0  # stop looking for it (the next link finds it)
QUIET_S = 10.0           # link after a library change once nothing changed for this long
MIN_SPACING_S = 60.0     # never re-link for library changes more often than this


class MediaServerService:
    def __init__(self, db: Database, settings: Settings, *, client: MediaServerClient | None = None,
                 metrics: Any = None) -> None:
        ms = settings.mediaserver
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.client = client or SubsonicClient(ms.url, ms.user, ms.password)
        self.pusher = PlaylistPusher(db, self.client)
        self._lock = threading.Lock()          # one link or push at a time
        self._loop = BackgroundLoop("mediaserver", self._look, interval_s=self._interval, wait_first=True,
                                    on_error=lambda exc: log.exception("media server link failed"))
        self._waiting_lock = threading.Lock()
        # library path -> [(server song id, method)] waiting for that file's analysis (from the last link)
        self._waiting: dict[str, list[tuple[str, str]]] = {}
        self._landed: dict[str, float] = {}    # analysed paths among them -> when the outcome was heard
        self._requested = threading.Event()    # a link was asked for (API, CLI)
        self._seen_state: tuple | None = None  # the library state at the last look
        self._changed_at: float | None = None  # when the library last changed, until linked
        self._last_link = 0.0
        self._next_periodic: float | None = 0.0  # link at the first look
        self.last_error: str | None = None
        self.linking = False
        self.check_s, self.quiet_s, self.min_spacing_s = CHECK_S, QUIET_S, MIN_SPACING_S

    # --- errors: one line per distinct failure -------------------------------------------------
    def _failed(self, exc: MediaServerError) -> None:
        line = exc.one_line()
        if line != self.last_error:
            log.error("media server link: %s", line)
        else:
            log.debug("media server link still failing: %s", line)
        self.last_error = line
        write_state(self.db, last_error=line, last_error_at=time.time())

    def _ok(self) -> None:
        if self.last_error is not None:
            log.info("media server link works again (%s)", self.client.url)
        self.last_error = None
        write_state(self.db, last_error=None, last_ok_at=time.time())

    # --- operations ----------------------------------------------------------------------------
    def check(self) -> dict:
        """Ping (authenticated) and remember the server's name and version."""
        info = self.client.ping()
        write_state(self.db, server=json.dumps(info))
        return info

    def link_now(self) -> dict:
        """Link (and push playlists not yet on the server); raises MediaServerError."""
        with self._lock:
            self.linking = True
            try:
                self.check()
                library = self.settings.library
                report = link(self.db, self.client, library.paths, self.settings.mediaserver.path_map,
                              extensions=library.extensions, ignore=library.ignore)
                with self._waiting_lock:
                    self._waiting = report.waiting
                # a file analysed while the server was read: its outcome came before it was waited for
                self.link_analysed(list(report.waiting))
                result = report.to_dict()
                write_state(self.db, last_link_at=time.time(), last_link_s=report.seconds,
                            last_link_cpu_s=report.cpu_s, last_report=json.dumps(result))
                if self.settings.mediaserver.push_playlists:
                    self.pusher.retry_deletes()
                    result["playlists"] = self.pusher.push_all(self.pusher.unpushed())
            except MediaServerError as exc:
                self._failed(exc)
                raise
            finally:
                self.linking = False
        self._ok()
        log.info("linked %d server songs in %.1f s (%.1f CPU-s): %s, %d unmatched", report.songs, report.seconds,
                 report.cpu_s, ", ".join(f"{k} {v}" for k, v in report.by_method.items()), report.unmatched)
        if self.metrics is not None:
            self.metrics.observe("mediaserver_link", report.seconds, songs=report.songs)
        return result

    def linked_any(self) -> bool:
        return bool(self.db.query("SELECT EXISTS (SELECT 1 FROM mediaserver_songs WHERE track_id IS NOT NULL)")[0][0])

    def push(self, playlist_id: int, *, adopt_name: bool = False) -> dict:
        with self._lock:
            try:
                result = self.pusher.push(playlist_id, adopt_name=adopt_name)
            except MediaServerError as exc:
                if exc.subsonic_code is None or exc.subsonic_code == 40:
                    self._failed(exc)
                raise
        return result

    # --- analysis outcomes: link the songs waiting for a file -----------------------------------
    def on_outcome(self, job: Any, result: Any, error: str | None) -> None:
        """A scheduler outcome listener (runs in the scheduler thread: only notes the path). The
        result is not committed yet; the link thread links once it is."""
        with self._waiting_lock:
            if job.path not in self._waiting:
                return
            self._landed.setdefault(job.path, time.monotonic())
        self._loop.wake()

    def _interval(self) -> float:
        with self._waiting_lock:
            return LANDED_CHECK_S if self._landed else self.check_s

    def link_analysed(self, paths: list[str]) -> int:
        """Link the songs waiting for ``paths`` whose analysis is committed (a failed one gets its
        reason); returns the songs linked. Paths still in analysis stay waiting."""
        if not paths:
            return 0
        rows = self.db.query("SELECT path, status, track_id, error FROM files "
                             "WHERE path IN (SELECT value FROM json_each(?))", (json.dumps(paths),))
        linked: list[tuple[int, str, str]] = []
        failed: list[tuple[str, str]] = []
        with self._waiting_lock:
            for path, status, track_id, error in rows:
                if status in ("pending", "analysing") or path not in self._waiting:
                    continue
                songs = self._waiting.pop(path)
                self._landed.pop(path, None)
                if status == "done" and track_id is not None:
                    linked += [(track_id, method, server_id) for server_id, method in songs]
                elif status == "failed":
                    failed += [(failed_reason(error), server_id) for server_id, _ in songs]

        def run(conn: Any) -> None:
            conn.executemany("UPDATE mediaserver_songs SET track_id = ?, method = ?, unmatched_reason = NULL "
                             "WHERE server_id = ? AND track_id IS NULL", linked)
            conn.executemany("UPDATE mediaserver_songs SET unmatched_reason = ? WHERE server_id = ? "
                             "AND track_id IS NULL", failed)

        if linked or failed:
            self.db.write(run)
            log.debug("media server: linked %d song(s) whose files were just analysed", len(linked))
        return len(linked)

    def _link_landed(self) -> None:
        now = time.monotonic()
        with self._waiting_lock:
            for path in [p for p, heard in self._landed.items() if now - heard > LANDED_GIVE_UP_S]:
                del self._landed[path]   # never committed (the storage refused it): the next link sees it
            landed = list(self._landed)
        self.link_analysed(landed)

    # --- hooks the playlist service calls ------------------------------------------------------
    def on_saved(self, meta: dict) -> None:
        """A playlist was saved: push it now; a failure becomes a note (retried after the next link)."""
        if not self.settings.mediaserver.push_playlists or meta.get("id") is None:
            return
        notes = meta.setdefault("notes", [])
        if not self.linked_any():
            notes.append("not pushed to the media server yet: its songs are not linked; it is pushed after the "
                         "first link")
            return
        try:
            result = self.push(int(meta["id"]))
        except MediaServerError as exc:
            notes.append(f"not pushed to the media server ({exc.message}); retried after the next link")
            return
        meta["mediaserver"] = result
        if result["songs_left_out"]:
            notes.append(f"{result['songs_left_out']} track(s) left out of the media-server playlist: "
                         "the server has no song linked to them")

    def before_delete(self, playlist_id: int) -> None:
        if self.settings.mediaserver.push_playlists:
            with self._lock:
                self.pusher.before_delete(playlist_id)

    # --- the thread ----------------------------------------------------------------------------
    def request_link(self) -> None:
        self._requested.set()
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop(15)

    def _look(self) -> None:
        """One look every ``check_s`` (or on request): link when asked, when the periodic link is
        due, or once the library has been quiet for ``quiet_s`` after a change."""
        self._link_landed()
        requested = self._requested.is_set()
        self._requested.clear()
        now = time.monotonic()
        try:
            current = library_state(self.db)
        except Exception as exc:  # the database is closing or busy: try again later
            log.debug("library state unavailable: %s", exc)
            return
        if current != self._seen_state:
            self._seen_state, self._changed_at = current, now
        due = requested or (self._next_periodic is not None and now >= self._next_periodic)
        due = due or (self._changed_at is not None and now - self._changed_at >= self.quiet_s
                      and now - self._last_link >= self.min_spacing_s)
        if not due:
            return
        interval = self.settings.mediaserver.link_interval_s
        self._changed_at = None
        self._last_link = now
        self._next_periodic = now + interval if interval else None
        try:
            self.link_now()
        except MediaServerError:
            pass  # logged once by _failed; shown in /health and the status

    # --- what the API shows --------------------------------------------------------------------
    def health(self) -> dict:
        return {"ready": True, "degraded": self.last_error is not None, "url": self.client.url,
                "error": self.last_error, "linking": self.linking}

    def status(self) -> dict:
        return link_status(self.db, self.settings, linking=self.linking)


def hook_playlists(playlists: Any, db: Database, settings: Settings, *, metrics: Any = None,
                   transport: SubsonicTransport | None = None) -> MediaServerService | None:
    """A link (not started) whose push follows ``playlists``' saves and deletes; None when
    ``mediaserver.url`` is empty. `playlist --save` uses it without a daemon. ``transport``: the
    connection to share with the ``/rest`` proxy."""
    ms = settings.mediaserver
    if not ms.url:
        return None
    client = SubsonicClient(ms.url, ms.user, ms.password, transport=transport)
    service = MediaServerService(db, settings, client=client, metrics=metrics)
    if playlists is not None:
        playlists.on_saved.append(service.on_saved)
        playlists.before_delete.append(service.before_delete)
        if ms.push_playlists:   # saved playlists go to the server: choose them among its songs
            playlists.server_songs = lambda cat: server_track_mask(db, cat)
    return service


def attach(services: Any, transport: SubsonicTransport | None = None) -> MediaServerService | None:
    """Build the link for a running daemon when ``mediaserver.url`` is set and hook it into the
    playlist service (push on save, delete before delete). Started later by ``start()``."""
    settings = services.settings
    service = hook_playlists(services.playlists, services.db, settings, metrics=services.metrics,
                             transport=transport)
    if service is None:
        return None
    services.mediaserver = service
    if services.metrics is not None:
        register_probes(services.metrics, service)
    log.info("media server link: %s as user '%s' (re-link every %d s)", service.client.url,
             settings.mediaserver.user, settings.mediaserver.link_interval_s)
    return service


def register_probes(metrics: Any, service: MediaServerService) -> None:
    """/metrics and /performance gauges of the link (counts read at most every few seconds)."""
    cached: dict[str, Any] = {"at": -1e9, "value": None}

    def current() -> dict:
        if time.monotonic() - cached["at"] > 5:
            c = counts(service.db)
            state = read_state(service.db)
            c["last_link_at"] = float(state.get("last_link_at") or 0)
            c["last_link_s"] = float(state.get("last_link_s") or 0)
            cached.update(at=time.monotonic(), value=c)
        return cached["value"]

    metrics.add_gauge("mediaserver_up", "1 while the media server answers (0 after a failed link or push)",
                      lambda: 0 if service.last_error else 1)
    metrics.add_gauge("mediaserver_songs", "Songs of the media server seen by the last link",
                      lambda: current()["songs_seen"])
    metrics.add_gauge("mediaserver_songs_linked", "Server songs linked to a playlistgen track, by match method",
                      lambda: {(m,): n for m, n in current()["by_method"].items()}, labels=("method",))
    metrics.add_gauge("mediaserver_songs_unmatched", "Server songs no playlistgen track matched",
                      lambda: current()["unmatched"])
    metrics.add_gauge("mediaserver_playlists_pushed", "Saved playlists that have a server copy",
                      lambda: current()["playlists_pushed"])
    metrics.add_gauge("mediaserver_last_link_timestamp_seconds", "Unix time of the last successful link",
                      lambda: current()["last_link_at"])
    metrics.add_gauge("mediaserver_last_link_duration_seconds", "Wall seconds the last link took",
                      lambda: current()["last_link_s"])

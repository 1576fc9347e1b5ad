"""One playlistgen process: builds every part in order, starts them, stops them in reverse order,
reports their status, and turns SIGINT/SIGTERM into a stop. `serve`, `scan`, `worker`, `mpd radio`,
`playlist` and the tests build theirs here; nothing else assembles parts.

The parts of `serve`, in start order (stop runs the other way; a part that is not configured is
simply absent, and one whose stop fails is logged while the rest still stop):

  lock          DatabaseLock: one writing process per database (taken while building, released last)
  database      Database: closed after every part that writes
  tagwriter     TagWriterService (library.write_tags): listens to the scheduler's outcomes, so it
                starts before and stops after the daemon and the last results still get their tags
  daemon        Daemon: job queue, executor, scheduler, library thread and watcher
  cache         the FeatureCache's purger thread
  playlists     PlaylistService: loads the similarity index in the background at start
  mediaserver   the media-server link (mediaserver.url); hears the scheduler's outcomes too, to
                link a server song as soon as its file is analysed
  mixes         MixScheduler (playlists.schedule; no thread when the schedule is empty)
  mpd           MpdRadio (mpd.enabled)
  memtrace      tracemalloc (logging.tracemalloc)
  http          waitress: bound while building (a port in use fails before anything starts), so
                /health answers as soon as it serves; serves last, stops first

Signals only set a flag (huey's consumer does the same): :meth:`App.run`'s loop in the main
thread reads it, while waitress serves from its own thread (``api.server.HttpServer``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from .config import Settings
from .services import Services

if TYPE_CHECKING:
    from flask import Flask

    from .api.server import HttpServer
    from .core.storage.db import Database

log = logging.getLogger(__name__)

DUPLICATE_SIGNAL_S = 0.5   # a second signal sooner than this is the same request delivered twice
WAIT_TICK_S = 0.1          # how often the main loop looks at the stop flag


def _check_output_folder(settings: Settings) -> None:
    """Say at start, not at the first save, that playlists cannot be written (a root-owned Docker
    bind mount); everything else still works, so the daemon starts."""
    from .core.folders import ownership_fix, unwritable

    folder = settings.playlists.output_dir
    problem = unwritable(folder)
    if problem is not None:
        log.warning("playlists.output_dir %s: saving playlists will fail until it is fixed — %s",
                    problem, ownership_fix(folder))


class StopSignals:
    """SIGINT/SIGTERM handlers that only note the request; the app's loop reads :attr:`received`.

    The same stop request often arrives twice at once (Ctrl+C reaches `make` and us; a supervisor
    signals the whole process group), so a second signal within DUPLICATE_SIGNAL_S is ignored; a
    later one means "out now" and ends the process at once, even while parts are stopping. That
    line is written straight to stderr: logging's locks must not be taken inside a handler."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._first_at = 0.0

    def install(self) -> None:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.received is None:
            self.received, self._first_at = signum, now
        elif now - self._first_at >= DUPLICATE_SIGNAL_S:
            _write_now(logging.WARNING, f"second {signal.Signals(signum).name}: exiting immediately")
            os._exit(1)


def _write_now(level: int, message: str) -> None:
    """A log line in the configured format, written without logging's locks or buffers."""
    record = log.makeRecord(log.name, level, __file__, 0, message, (), None)
    handlers = logging.getLogger().handlers
    line = handlers[0].format(record) if handlers else message
    os.write(2, (line + "\n").encode(errors="replace"))


@dataclass
class Part:
    name: str
    start: Callable[[], Any] | None = None
    stop: Callable[[], Any] | None = None
    state: str = "built"          # built → started → stopped, or failed (starting or stopping)
    error: str | None = None
    stopped: bool = False


class App:
    """The parts of one process (:attr:`services` is what the HTTP layer sees). Build one with
    :meth:`for_serve`, :meth:`for_scan`, :meth:`for_radio`, :meth:`for_playlist`, :meth:`for_worker` or
    :meth:`for_api`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.api: Flask | None = None          # the Flask app (for_serve, for_api)
        self.http: HttpServer | None = None    # the bound waitress server
        self.signals = StopSignals()
        self._parts: list[Part] = []
        self._watched: list[tuple[str, Callable[[], bool]]] = []   # parts whose own end ends run()

    # ------------------------------------------------------------------ building

    @classmethod
    def for_serve(cls, settings: Settings) -> App:
        """Everything `serve` runs; nothing started yet (the socket is bound)."""
        from .core.analysis.factory import check_models
        from .core.observe.metrics import Metrics, register_probes
        from .core.storage.cache import FeatureCache
        from .daemon import Daemon

        app = cls(settings)
        with app._building():
            metrics, cache = Metrics.from_settings(settings), FeatureCache.from_settings(settings)
            db = app._open_database(lock="serve", on_batch=metrics.observe_write_batch)
            check_models(settings)   # an ML preset without its models: one line, nothing started
            _check_output_folder(settings)
            tagwriter = app._tag_writer(db)
            listeners = [tagwriter.on_outcome] if tagwriter is not None else []
            if settings.mediaserver.url:
                def to_link(job: Any, result: Any, error: str | None) -> None:
                    # the link is built with the API parts below: it links songs whose file was just analysed
                    if services.mediaserver is not None:
                        services.mediaserver.on_outcome(job, result, error)
                listeners.append(to_link)
            daemon = Daemon(settings, db, metrics=metrics, outcome_listeners=listeners)
            app.add("daemon", daemon.start, daemon.stop)
            register_probes(metrics, db=db, daemon=daemon, cache=cache)
            app.add("cache", cache.start_purger, cache.stop_purger)
            services = Services(settings=settings, db=db, daemon=daemon, metrics=metrics, cache=cache,
                                tagwriter=tagwriter, refitter=app._refitter(db))
            app._api_parts(services, with_link=True)
            if settings.mpd.enabled:
                app._radio(services)
            if metrics.memtrace is not None:
                app.add("memtrace", metrics.memtrace.start, metrics.memtrace.stop)
            app._bind_http()
        return app

    @classmethod
    def for_scan(cls, settings: Settings, *, keep_other_folders: bool = False) -> App:
        """The database (locked for `scan`) and the analysis pipeline, which `scan` drives in the
        foreground: ``app.services.daemon`` is built but not started. ``keep_other_folders``:
        library.paths are folders scanned once, not the library (see ``Library``)."""
        from .core.analysis.factory import check_models
        from .daemon import Daemon

        check_models(settings)   # before the database is created
        app = cls(settings)
        with app._building():
            db = app._open_database(lock="scan")
            daemon = Daemon(settings, db, keep_other_folders=keep_other_folders, upgrade=False)
            app.add("daemon", stop=daemon.stop)
            app.services = Services(settings=settings, db=db, daemon=daemon)
        return app

    @classmethod
    def for_radio(cls, settings: Settings, seeds: Sequence[str] = ()) -> App:
        """`mpd radio`: the database, the playlist service and the radio (started by run())."""
        from .core.playlists.service import PlaylistService
        from .core.playlists.tracks import resolve_seed

        app = cls(settings)
        with app._building():
            db = app._open_database(lock=None)
            seed_ids = [resolve_seed(db, s) for s in seeds]   # a typo is one clear line now, not a retry loop
            services = Services(settings=settings, db=db, playlists=PlaylistService(db, settings))
            app.services = services
            app._radio(services, seeds=seed_ids)
        return app

    @classmethod
    def for_playlist(cls, settings: Settings, *, push: bool = False) -> App:
        """`playlistgen playlist`: the database and the playlist service for one request; with
        ``push`` (a saved playlist) the media-server push follows the save, as in `serve`."""
        from .core.playlists.service import PlaylistService

        app = cls(settings)
        with app._building():
            db = app._open_database(lock=None)
            services = Services(settings=settings, db=db, playlists=PlaylistService(db, settings))
            if push:
                from .core.integrations.mediaserver.service import hook_playlists

                hook_playlists(services.playlists, db, settings)   # None when mediaserver.url is empty
            app.services = services
        return app

    @classmethod
    def for_worker(cls, settings: Settings, pool: Any) -> App:
        """`playlistgen worker`: the Dask worker processes for another machine's daemon (``pool``,
        a ``dask.pool.WorkerPool``); no database, no HTTP. :meth:`run` returns when a signal came
        or when the workers ended by themselves (a refusal: ``pool.error`` says why)."""
        app = cls(settings)
        app.add("workers", pool.start, pool.stop)
        app._watched.append(("workers", pool.alive))
        return app

    @classmethod
    def for_api(cls, settings: Settings, db: Database, *, metrics: Any = None, cache: Any = None,
                playlists: Any = None, mediaserver: Any = None, http: bool = False) -> App:
        """The HTTP app's parts as `serve` builds them, without the daemon, on an open ``db``
        (closed by :meth:`stop`). Only the HTTP server (``http``: bound to api.host/api.port)
        is started by :meth:`start`; tests and benchmarks use the Flask app in ``api``."""
        app = cls(settings)
        with app._building():
            app.add("database", stop=db.close)
            services = Services(settings=settings, db=db, metrics=metrics, cache=cache, mediaserver=mediaserver,
                                playlists=playlists)
            app._api_parts(services, with_link=False, start=False)
            if http:
                app._bind_http()
        return app

    def add(self, name: str, start: Callable[[], Any] | None = None, stop: Callable[[], Any] | None = None) -> None:
        """A part, started after the ones added before it and stopped before them."""
        self._parts.append(Part(name, start, stop))

    @contextlib.contextmanager
    def _building(self) -> Iterator[None]:
        """If a part cannot be built, the parts built so far are stopped (databases closed, the
        lock released) and the error goes on."""
        try:
            yield
        except BaseException:
            self.stop()
            raise

    def _open_database(self, *, lock: str | None, on_batch: Callable[[int, float], None] | None = None) -> Database:
        from .core.storage.db import Database
        from .core.storage.lock import DatabaseLock

        if lock is not None:   # a second writer stops here, naming the first one's pid
            held = DatabaseLock(self.settings.database.path, lock).acquire()
            self.add("lock", stop=held.release)
        db = Database.from_settings(self.settings, on_batch=on_batch)
        self.add("database", stop=db.close)
        return db

    def _tag_writer(self, db: Database) -> Any:
        if not self.settings.library.write_tags:
            return None
        from .core.integrations.tags.service import TagWriterService

        tagwriter = TagWriterService(db, self.settings)
        self.add("tagwriter", tagwriter.start, tagwriter.stop)
        return tagwriter

    def _refitter(self, db: Database) -> Any:
        """The background refit of the similarity projection (none with similarity.projection off)."""
        if self.settings.similarity.projection == "off":
            return None
        from .core.similarity.refit import Refitter

        refitter = Refitter(db, self.settings.similarity)
        self.add("similarity", refitter.start, refitter.stop)
        return refitter

    def _api_parts(self, services: Services, *, with_link: bool, start: bool = True) -> None:
        """The playlist service, the media-server link, sonic search, scheduled mixes, the
        Subsonic upstream and the Flask app over them."""
        from .api import create_app
        from .core.integrations.mediaserver.artists import ServerArtists
        from .core.integrations.mediaserver.sonic import SonicSearch
        from .core.playlists.schedule import MixScheduler
        from .core.playlists.service import PlaylistService

        settings = self.settings
        if services.playlists is None:
            services.playlists = PlaylistService(services.db, settings, cache=services.cache,
                                                 metrics=services.metrics)
        if start:
            self.add("playlists", services.playlists.warm_up)
        # one connection to the media server, shared by the link and the /rest proxy
        transport = None
        if settings.mediaserver.url:
            from .core.integrations.mediaserver.transport import SubsonicTransport

            transport = SubsonicTransport(settings.mediaserver.url)
        if with_link:
            from .core.integrations.mediaserver.service import attach

            if attach(services, transport) is not None:   # mediaserver.url: pushes follow the playlist service
                self.add("mediaserver", services.mediaserver.start, services.mediaserver.stop)
        services.sonic = SonicSearch(services.db, services.playlists, settings)
        services.artists = ServerArtists(services.db, services.playlists, services.sonic, settings)
        services.mixes = MixScheduler(services.playlists, settings)
        if start:
            self.add("mixes", services.mixes.start, services.mixes.stop)
        if settings.mediaserver.proxy and transport is not None:
            from .api.subsonic.upstream import Upstream
            from .core.feedback.nowplaying import NowPlaying
            from .core.feedback.playback import PlaybackReports

            services.upstream = Upstream(transport)
            services.now_playing = NowPlaying(services.playlists.feedback)   # clients' skips, per user
            services.playback = PlaybackReports(services.playlists.feedback)   # OpenSubsonic playbackReport
        self.services = services
        self.api = create_app(settings, services)

    def _radio(self, services: Services, seeds: Sequence[Any] = ()) -> None:
        from .core.integrations.mpd import MpdRadio

        services.mpd = MpdRadio(self.settings, services.db, services.playlists.generate, seeds=list(seeds),
                                feedback=services.playlists.feedback)
        self.add("mpd", services.mpd.start, services.mpd.stop)   # a missing MPD only degrades /health

    def _bind_http(self) -> None:
        from .api.server import HttpServer, create_http_server

        self.http = HttpServer(create_http_server(self.api, self.settings))   # ConfigError if it cannot bind
        self.add("http", self.http.start, self.http.stop)
        self._watched.append(("http", self.http.alive))

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        """Start every part in order; a failure stops nothing by itself (call :meth:`stop`)."""
        for part in self._parts:
            if part.state != "built":
                continue
            try:
                if part.start is not None:
                    part.start()
            except BaseException as exc:
                part.state, part.error = "failed", str(exc) or type(exc).__name__
                raise
            part.state = "started"

    def stop(self) -> None:
        """Stop every part in reverse order, also those built but never started (a database is
        open from the moment it is built). Each failure is logged and the rest still stop.
        A second call does nothing."""
        for part in reversed(self._parts):
            if part.stopped:
                continue
            part.stopped = True
            try:
                if part.stop is not None:
                    part.stop()
            except Exception as exc:
                part.state, part.error = "failed", str(exc) or type(exc).__name__
                log.exception("stopping %s failed", part.name)
            else:
                if part.state != "failed":
                    part.state = "stopped"

    def status(self) -> list[dict]:
        """Each part in start order: name, state (built, started, stopped, failed) and error."""
        return [{"name": p.name, "state": p.state, "error": p.error} for p in self._parts]

    def run(self) -> int:
        """Start, wait for SIGINT/SIGTERM (or for the HTTP server to die), stop; the exit code."""
        self.signals.install()
        code = 0
        try:
            self.start()
            if self.http is not None:
                s = self.settings
                log.info("serving on http://%s:%d (library: %s, database: %s)", s.api.host, s.api.port,
                         ", ".join(s.library.paths), s.database.path)
            while self.signals.received is None:
                ended = next((name for name, alive in self._watched if not alive()), None)
                if ended is not None:
                    log.log(logging.ERROR if ended == "http" else logging.INFO,
                            "%s stopped by itself: shutting down", "the HTTP server" if ended == "http" else ended)
                    code = 1
                    break
                time.sleep(WAIT_TICK_S)
            else:
                log.info("%s received: shutting down", signal.Signals(self.signals.received).name)
        finally:
            self.stop()
        failed = [p["name"] for p in self.status() if p["state"] == "failed"]
        if failed:
            log.warning("stopped; these parts failed: %s", ", ".join(failed))
        else:
            log.info("stopped cleanly")
        return code


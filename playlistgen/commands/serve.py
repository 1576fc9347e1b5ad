"""`playlistgen serve`: the daemon. Builds every component here and passes them down."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from types import FrameType

import click

from .common import settings_from_ctx, user_errors

log = logging.getLogger(__name__)


DUPLICATE_SIGNAL_S = 0.5


class _Shutdown(SystemExit):
    """Raised from the signal handler; waitress's loop stops on SystemExit."""


def _install_signal_handlers() -> None:
    received: list[float] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        # The same stop request often arrives twice at once (Ctrl+C reaches `make` and us; a
        # supervisor signals the whole process group): only a later one means "out now".
        if received and time.monotonic() - received[0] < DUPLICATE_SIGNAL_S:
            return
        if received:  # a second signal: the user wants out now
            log.warning("second %s: exiting immediately", signal.Signals(signum).name)
            os._exit(1)
        received.append(time.monotonic())
        log.info("%s received: shutting down", signal.Signals(signum).name)
        raise _Shutdown(0)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _attach_mpd_and_tags(settings, db, daemon, services) -> None:  # type: ignore[no-untyped-def]
    """The MPD radio (mpd.enabled) and tag writing after each analysis (library.write_tags)."""
    if settings.mpd.enabled:
        from ..core.integrations.mpd import MpdRadio

        services.mpd = MpdRadio(settings, db, services.playlists.generate)
    if settings.library.write_tags:
        from ..core.integrations.tags.service import TagWriterService

        services.tagwriter = TagWriterService(db, settings)
        previous = daemon.scheduler.on_outcome

        def on_outcome(job, result, error) -> None:  # type: ignore[no-untyped-def]
            if previous is not None:
                previous(job, result, error)
            services.tagwriter.on_outcome(job, result, error)

        daemon.scheduler.on_outcome = on_outcome


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML config file (overrides the global --config).")
@click.option("--library", "libraries", multiple=True, type=click.Path(file_okay=False),
              help="Music folder to watch (repeat for several; replaces library.paths).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file.")
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="TCP port (default 8500).")
@click.option("--workers", type=int, help="Analysis worker processes (0 = CPU cores).")
@click.option("--preset", type=click.Choice(["fast", "balanced", "accurate"]), help="Analysis preset.")
@click.pass_context
@user_errors
def serve(ctx: click.Context, config_file: str | None, libraries: tuple[str, ...], db_path: str | None,
          host: str | None, port: int | None, workers: int | None, preset: str | None) -> None:
    """Run the daemon: HTTP API and dashboard, library watcher and analysis.

    \b
    Examples:
      playlistgen serve --library ~/Music
      playlistgen serve --library /music --host 0.0.0.0 --port 8500   # needs api.key
      PLAYLISTGEN_API__PORT=9000 playlistgen serve
    """
    if config_file:
        ctx.find_root().obj["config_file"] = config_file
    overrides = {
        "library": {"paths": list(libraries) or None},
        "database": {"path": db_path},
        "api": {"host": host, "port": port},
        "analysis": {"workers": workers, "preset": preset},
    }
    settings = settings_from_ctx(ctx, overrides, require_library=True)

    # Imported here so `playlistgen --help` stays light; none of these import Essentia/TF.
    from ..api import create_app
    from ..api.server import check_address, create_http_server
    from ..core.observe.metrics import Metrics, register_probes
    from ..core.playlists.service import PlaylistService
    from ..core.storage.cache import FeatureCache
    from ..core.storage.db import Database
    from ..core.storage.lock import DatabaseLock
    from ..daemon import Daemon
    from ..logs import configure_logging
    from ..services import Services

    check_address(settings.api.host, settings.api.port)  # a bad --host: one line, before anything opens

    configure_logging(settings.logging.level, settings.logging.format)
    metrics = Metrics.from_settings(settings)
    cache = FeatureCache.from_settings(settings)
    # one daemon per database: a second one stops here with the first one's pid (held until exit)
    DatabaseLock(settings.database.path, "serve").acquire()
    db = Database.from_settings(settings)
    try:
        daemon = Daemon(settings, db, metrics=metrics)
    except BaseException:
        db.close()
        raise
    register_probes(metrics, db=db, daemon=daemon, cache=cache)
    services = Services(settings=settings, db=db, daemon=daemon, metrics=metrics, cache=cache,
                        playlists=PlaylistService(db, settings, cache=cache, metrics=metrics))
    try:
        from ..core.integrations.mediaserver.service import attach as attach_mediaserver

        attach_mediaserver(services)  # None when mediaserver.url is empty
        _attach_mpd_and_tags(settings, db, daemon, services)  # issue 12: mpd.enabled, library.write_tags
        app = create_app(settings, services)
        server = create_http_server(app, settings)  # ConfigError (one line) if it cannot bind
        _install_signal_handlers()
        daemon.start()  # after the socket is bound: /health answers while analysis starts
        services.playlists.warm_up()  # load the similarity index in the background
        if services.mediaserver is not None:
            services.mediaserver.start()  # links in the background; a dead server only degrades /health
        services.mixes.start()  # playlists.schedule: daily mixes (no thread when the schedule is empty)
        for component in (services.mpd, services.tagwriter):
            if component is not None:
                component.start()  # a missing MPD only degrades /health
        cache.start_purger()
        if metrics.memtrace is not None:
            metrics.memtrace.start()
        log.info("serving on http://%s:%d (library: %s, database: %s)", settings.api.host,
                 settings.api.port, ", ".join(settings.library.paths), settings.database.path)
        try:
            server.run()
        finally:
            server.close()
    finally:
        services.close()
        log.info("stopped cleanly")
    sys.exit(0)

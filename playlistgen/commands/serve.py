"""`playlistgen serve`: the daemon. ``playlistgen.app`` builds, starts and stops its parts."""

from __future__ import annotations

import sys

import click

from .common import settings_from_ctx, user_errors


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
    from ..api.server import check_address
    from ..app import App
    from ..logs import configure_logging

    check_address(settings.api.host, settings.api.port)  # a bad --host: one line, before anything opens
    configure_logging(settings.logging.level, settings.logging.format)
    app = App.for_serve(settings)   # ConfigError (one line) if a part cannot be built, e.g. the port is taken
    sys.exit(app.run())

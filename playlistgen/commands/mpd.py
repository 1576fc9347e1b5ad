"""`playlistgen mpd radio`: keep MPD's queue filled with similar songs, in the foreground."""

from __future__ import annotations

import click

from .common import settings_from_ctx, user_errors


@click.group()
def mpd() -> None:
    """Music Player Daemon integration."""


@mpd.command("radio")
@click.option("--seed", "seeds", multiple=True,
              help='Start from this song (id or "Artist - Title"; repeat to blend) until songs have been played.')
@click.option("--host", help="MPD host (default mpd.host).")
@click.option("--port", type=int, help="MPD port (default mpd.port).")
@click.option("--min-queue", type=int, help="Songs to keep after the current one (default mpd.min_queue).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file.")
@click.pass_context
@user_errors
def radio(ctx: click.Context, seeds: tuple[str, ...], host: str | None, port: int | None,
          min_queue: int | None, db_path: str | None) -> None:
    """Endless radio: whenever fewer than mpd.min_queue songs follow the current one, append songs
    similar to the last ones played (never one of the last mpd.history played). Ctrl+C stops.

    MPD's song paths are taken relative to mpd.music_directory (default: the first library folder),
    so both must name the same music. `playlistgen serve` does the same when mpd.enabled is true.

    \b
    Examples:
      playlistgen mpd radio
      playlistgen mpd radio --seed "Daft Punk - Digital Love" --seed 1234
      PLAYLISTGEN_MPD__MUSIC_DIRECTORY=/srv/music playlistgen mpd radio --host 192.168.1.5
    """
    settings = settings_from_ctx(ctx, {"mpd": {"host": host, "port": port, "min_queue": min_queue},
                                       "database": {"path": db_path}})
    from ..app import App
    from ..logs import configure_logging

    configure_logging(settings.logging.level, settings.logging.format)
    app = App.for_radio(settings, seeds)   # an unknown seed: one clear line, before MPD is tried
    radio = app.services.mpd
    click.echo(f"MPD radio on {settings.mpd.host}:{settings.mpd.port} (music directory {radio.root}); "
               "Ctrl+C stops", err=True)
    app.run()   # until Ctrl+C or SIGTERM
    click.echo(f"stopped; added {radio.added} song(s)", err=True)

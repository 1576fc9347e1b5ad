"""`playlistgen mediaserver check|link|push`: the link to a Subsonic/OpenSubsonic server
(Navidrome, gonic, Airsonic, Ampache, supysonic...), without a running daemon."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import PlaylistgenError
from .common import settings_from_ctx, user_errors


def _settings(ctx: click.Context, db_path: str | None) -> Any:
    settings = settings_from_ctx(ctx, {"database": {"path": db_path}})
    if not settings.mediaserver.url:
        raise PlaylistgenError("no media server configured",
                               hint="set mediaserver.url, mediaserver.user and mediaserver.password in config.yaml "
                                    "(or PLAYLISTGEN_MEDIASERVER__URL / __USER / __PASSWORD)")
    return settings


@contextmanager
def _link(ctx: click.Context, db_path: str | None) -> Iterator[Any]:
    settings = _settings(ctx, db_path)
    if not Path(settings.database.path).is_file():
        raise PlaylistgenError(f"no database at '{settings.database.path}'",
                               hint="analyse a library first (`playlistgen scan DIR`) or pass --db FILE",
                               path=settings.database.path)
    from ..core.integrations.mediaserver.service import MediaServerService
    from ..core.storage.db import Database

    db = Database.from_settings(settings)
    try:
        yield MediaServerService(db, settings)
    finally:
        db.close()


@click.group()
def mediaserver() -> None:
    """The link to your Subsonic/OpenSubsonic media server (mediaserver.* settings).

    \b
    Examples:
      playlistgen mediaserver check
      PLAYLISTGEN_MEDIASERVER__PASSWORD=... playlistgen mediaserver link
      playlistgen mediaserver push 12
    """


_DB = click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file (default database.path).")


@mediaserver.command()
@_DB
@click.pass_context
@user_errors
def check(ctx: click.Context, db_path: str | None) -> None:
    """Connect and authenticate; print the server type, version and song count.

    \b
    Examples:
      playlistgen mediaserver check
      PLAYLISTGEN_MEDIASERVER__URL=http://127.0.0.1:4533 playlistgen mediaserver check
    """
    from ..core.integrations.mediaserver.client import SubsonicClient

    settings = _settings(ctx, db_path)
    ms = settings.mediaserver
    client = SubsonicClient(ms.url, ms.user, ms.password)
    click.echo(describe(client, client.ping(), sum(1 for _ in client.iter_songs())))


def describe(client: Any, info: dict, songs: int) -> str:
    """One line: server, version, API, auth that worked, song count (also used by `doctor`)."""
    auth = "password (the server does not take tokens)" if client.use_password else "token"
    return (f"{client.url}: {info['type']} {info['serverVersion'] or ''} (Subsonic API {info['version']}"
            f"{', OpenSubsonic' if info['openSubsonic'] else ''}), user '{client.user}' ok with {auth} auth, "
            f"{songs} songs")


@mediaserver.command()
@_DB
@click.pass_context
@user_errors
def link(ctx: click.Context, db_path: str | None) -> None:
    """Match every song of the server to an analysed track and store the mapping.

    \b
    Examples:
      playlistgen mediaserver link
      playlistgen mediaserver link --db /data/playlistgen.db
    """
    with _link(ctx, db_path) as service:
        report = service.link_now()
        status = service.status()
    methods = ", ".join(f"{k} {v}" for k, v in report["by_method"].items())
    click.echo(f"{report['songs']} server songs: {report['linked']} linked ({methods}), "
               f"{report['unmatched']} unmatched, in {report['seconds']:.1f} s ({report['cpu_s']:.1f} CPU-s)")
    for song in status["unmatched"]["first"][:10]:
        click.echo(f"  unmatched: {song['path'] or song['title']}: {song['reason']}")
    pushed = report.get("playlists")
    if pushed and (pushed["pushed"] or pushed["failed"]):
        click.echo(f"playlists pushed: {pushed['pushed']}, failed: {pushed['failed']}")


@mediaserver.command()
@click.argument("playlist_id", type=int, required=False)
@_DB
@click.pass_context
@user_errors
def push(ctx: click.Context, playlist_id: int | None, db_path: str | None) -> None:
    """Create or update saved playlists on the server (PLAYLIST_ID, or every saved one).

    \b
    Examples:
      playlistgen mediaserver push        # every saved playlist
      playlistgen mediaserver push 12     # just playlist 12
    """
    with _link(ctx, db_path) as service:
        if not service.linked_any():
            raise PlaylistgenError("no server song is linked to a track yet",
                                   hint="run `playlistgen mediaserver link` first")
        if playlist_id is not None:
            r = service.push(playlist_id)
            click.echo(f"playlist {playlist_id} -> server playlist {r['server_playlist_id']}: "
                       f"{r['songs_pushed']} songs, {r['songs_left_out']} left out (no linked server song)")
            return
        out = service.pusher.push_all()
    click.echo(f"{out['pushed']} playlist(s) pushed, {out['failed']} failed, "
               f"{out['songs_left_out']} track(s) left out (no linked server song)")
    for error in out["errors"]:
        click.echo(f"  {error}", err=True)
    if out["failed"]:
        ctx.exit(1)


def doctor_line(settings: Any) -> tuple[bool, str, str]:
    """(ok, detail, fix) for `playlistgen doctor`: off, or a ping with the configured credentials."""
    ms = settings.mediaserver
    if not ms.url:
        return True, "off (mediaserver.url is empty)", ""
    from ..core.integrations.mediaserver.client import SubsonicClient
    from ..errors import MediaServerError

    try:
        client = SubsonicClient(ms.url, ms.user, ms.password, timeout=5)
        info = client.ping()
    except MediaServerError as exc:
        return False, exc.message, exc.hint or "check the mediaserver.* settings"
    return True, (f"{client.url}: {info['type']} {info['serverVersion'] or ''} (API {info['version']}), "
                  f"user '{ms.user}' ok"), ""

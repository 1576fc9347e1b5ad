"""`playlistgen playlist STRATEGY`: the same playlists as POST /api/v1/playlists, straight from the
database file (no daemon needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ..errors import BadRequestError, PlaylistgenError
from .common import settings_from_ctx, user_errors

FORMATS = ("json", "m3u8", "xspf")


def parse_value(text: str) -> Any:
    """'90..130' → [90, 130] ('90..' and '..130' are open); 'a,b' → ['a', 'b']; '8' → 8; 'x' → 'x'."""
    text = text.strip()
    if ".." in text:
        low, _, high = text.partition("..")
        try:
            return [float(low) if low.strip() else None, float(high) if high.strip() else None]
        except ValueError:
            raise BadRequestError(f"range {text!r} must be numbers like 90..130") from None
    if "," in text:
        return [parse_value(part) for part in text.split(",") if part.strip()]
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool, str)) and value is not None else text


def parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadRequestError(f"{option} {pair!r} must look like KEY=VALUE", hint=f"e.g. {option} bpm=90..130")
        out[key.strip()] = parse_value(value)
    return out


@click.command()
@click.argument("strategy", required=False)
@click.option("--seed", "seeds", multiple=True, help='Seed track: an id or "Artist - Title" (repeat for several).')
@click.option("--artist", help="The artist of artist_radio (its name; case, 'feat.' and 'The' do not matter).")
@click.option("--size", type=int, help="Number of tracks (default playlists.default_size).")
@click.option("--duration-min", type=float, help="Length in minutes instead of a track count.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="Filter: bpm=90..130, energy=0.6.., key=8A, tags=chill,happy, genre=jazz, year=1990..1999.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Strategy parameter: tags=chill, k=8, time_of_day=night (see `--list`).")
@click.option("--artist-gap", type=int, help="Tracks between two by the same artist.")
@click.option("--album-gap", type=int, help="Tracks between two from the same album.")
@click.option("--max-per-artist", type=int, help="At most this many tracks per artist (0 = no cap).")
@click.option("--dedupe/--no-dedupe", default=None, help="Drop other versions of the same song.")
@click.option("--random-seed", type=int, help="Make random choices repeatable.")
@click.option("--order", type=click.Choice(("as_is", "smooth", "energy_arc")),
              help="Track order: smooth transitions (key, tempo, loudness, energy, timbre), an energy arc, or the "
                   "strategy's own (default: smooth for mixes, as_is for path/similarity/sorted lists).")
@click.option("--exclude", "excludes", multiple=True, metavar="RULE=VALUE",
              help="Leave tracks out: genres=christmas, paths=*/Podcasts/*, folders=Audiobooks, max_duration_min=15 "
                   "(added to playlists.exclude).")
@click.option("--include-excluded", is_flag=True, help="Ignore playlists.exclude for this playlist.")
@click.option("--save", is_flag=True, help="Also store it in the database and as M3U8 in playlists.output_dir.")
@click.option("--name", help="Playlist name (default: from the strategy).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file (default database.path).")
@click.option("--list", "list_strategies", is_flag=True, help="List the strategies and their parameters.")
@click.pass_context
@user_errors
def playlist(ctx: click.Context, strategy: str | None, seeds: tuple[str, ...], artist: str | None, size: int | None,
             duration_min: float | None, filters: tuple[str, ...], params: tuple[str, ...], artist_gap: int | None,
             album_gap: int | None, max_per_artist: int | None, dedupe: bool | None, random_seed: int | None,
             order: str | None, excludes: tuple[str, ...], include_excluded: bool,
             save: bool, name: str | None, fmt: str, output: str | None, db_path: str | None,
             list_strategies: bool) -> None:
    """Make a playlist with STRATEGY from the analysed library.

    \b
    Examples:
      playlistgen playlist radio --seed "Massive Attack - Teardrop" --size 30
      playlistgen playlist path --seed 12 --seed 873 --format m3u8 -o trip.m3u8
      playlistgen playlist mood --param tags=chill,happy --duration-min 60
      playlistgen playlist filter --filter bpm=90..130 --filter key=8A --format xspf
      playlistgen playlist clusters --param k=8 --random-seed 1
      playlistgen playlist mood --param tags=party --order energy_arc --exclude genres=christmas
      playlistgen playlist artist_radio --artist "Massive Attack" --size 40
      playlistgen playlist --list
    """
    from ..core.playlists.registry import STRATEGIES

    if list_strategies:
        for s in STRATEGIES.values():
            info = s.to_dict()
            click.echo(f"{s.name:14} seeds: {info['seeds']:<18} {s.description}")
            for p in info["parameters"]:
                click.echo(f"{'':16}{p['name']} ({p['type']}, default {p['default']!r}): {p['description']}")
        return
    if not strategy:
        raise BadRequestError("missing STRATEGY", hint="e.g. `playlistgen playlist radio --seed ID`; "
                              "`playlistgen playlist --list` shows them all")
    settings = settings_from_ctx(ctx, {"database": {"path": db_path}})
    if not Path(settings.database.path).is_file():
        raise PlaylistgenError(f"no database at '{settings.database.path}'",
                               hint="analyse a library first (`playlistgen scan DIR`) or pass --db FILE",
                               path=settings.database.path)
    body: dict[str, Any] = {"strategy": strategy, "seeds": list(seeds), "filters": parse_pairs(filters, "--filter"),
                            "params": parse_pairs(params, "--param"), "save": save}
    if artist is not None:
        body["params"]["artist"] = artist
    diversity = {k: v for k, v in (("artist_gap", artist_gap), ("album_gap", album_gap),
                                   ("max_per_artist", max_per_artist), ("dedupe", dedupe)) if v is not None}
    if excludes:
        body["exclude"] = {k: ([v] if k in ("genres", "paths", "folders") and not isinstance(v, list) else v)
                           for k, v in parse_pairs(excludes, "--exclude").items()}
    if include_excluded:
        body["include_excluded"] = True
    for key, value in (("order", order), ("size", size), ("duration_min", duration_min), ("random_seed", random_seed),
                       ("name", name), ("diversity", diversity or None)):
        if value is not None:
            body[key] = value

    from ..app import App
    from ..core.playlists.export import PathOptions, atomic_write, render
    from ..core.playlists.service import PlaylistRequest
    from ..core.threads import single_threaded_blas

    single_threaded_blas()  # one query: thread start-up would cost more than it saves
    # a saved playlist is also pushed to the media server (mediaserver.url set)
    app = App.for_playlist(settings, push=save)
    try:
        result = app.services.playlists.generate(PlaylistRequest.parse(body, settings))
    finally:
        app.stop()
    if fmt == "json":
        text = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
    else:  # -o FILE: paths as for a saved playlist in FILE's folder (playlists.relative_paths, path_map)
        paths = PathOptions.from_settings(settings)
        text = render(fmt, result, relative_to=paths.base_for(Path(output).resolve().parent) if output else None,
                      paths=paths)
    meta = result["playlist"]
    summary = f"{meta['name']}: {meta['size']} tracks, {meta['duration_s'] / 60:.0f} min"
    if meta.get("file"):
        summary += f", saved as {meta['file']}"
    if output:
        atomic_write(Path(output), text)
        summary += f", written to {output}"
    else:
        sys.stdout.write(text)
    for note in meta.get("notes") or []:
        click.echo(f"note: {note}", err=True)
    click.echo(summary, err=True)

"""`playlistgen similarity fit|status`: the library's "sounds like" projection (core/similarity)."""

from __future__ import annotations

import json

import click

from .common import settings_from_ctx, user_errors

db_option = click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                         help="Database file (default: database.path from the config).")


@click.group()
def similarity() -> None:
    """The projection that adapts "sounds like" to your library (learnt from the music alone).

    \b
    Examples:
      playlistgen similarity status
      playlistgen similarity fit
    """


def _open(ctx: click.Context, db_path: str | None):  # type: ignore[no-untyped-def]
    from ..core.storage.db import Database

    settings = settings_from_ctx(ctx, {"database": {"path": db_path}})
    return settings, Database.from_settings(settings)


@similarity.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
@user_errors
def status(ctx: click.Context, db_path: str | None, as_json: bool) -> None:
    """Show which projection is in use: a library fit of N tracks, the shipped one, or none."""
    from ..core.similarity.refit import status as similarity_status

    settings, db = _open(ctx, db_path)
    try:
        body = similarity_status(db, settings.similarity)
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    click.echo(f"in use: {body['in_use']}")
    click.echo(f"tracks with an embedding: {body['tracks_with_embedding']}, with the MTT one too: "
               f"{body['tracks_with_mtt']}, with a stored spread: {body['tracks_with_spread']} "
               f"(a library fit needs {body['min_tracks']})")
    fits = ", ".join(f"{rep} on {n} tracks" for rep, n in body["library_fits"].items()) or "none"
    click.echo(f"library fits: {fits}")
    if body["refit_due"]:
        click.echo(f"refit due: {body['refit_due']} (`playlistgen serve` refits in the background, "
                   "or run `playlistgen similarity fit`)")


@similarity.command()
@db_option
@click.option("--representation", type=click.Choice(["auto", "msd", "msd+mtt"]), default="auto", show_default=True,
              help="auto: every one the library has tracks for (msd always; msd+mtt when tracks have the MTT "
                   "embedding: presets balanced and accurate); msd: the MSD embedding; msd+mtt: with MTT.")
@click.pass_context
@user_errors
def fit(ctx: click.Context, db_path: str | None, representation: str) -> None:
    """Fit the library's projection now, store it and print the figures (a running `serve` picks
    it up at its next index check)."""
    from ..core.similarity.fit import NotEnoughTracks, counts, fit_library
    from ..errors import BadRequestError

    settings, db = _open(ctx, db_path)
    min_tracks = settings.similarity.min_tracks
    try:
        wanted = [representation] if representation != "auto" else \
            ["msd", *(["msd+mtt"] if counts(db).usable("msd+mtt") else [])]
        fitted = []
        for rep in wanted:
            try:
                fitted.append(fit_library(db, rep, min_tracks=min_tracks))
            except NotEnoughTracks as exc:
                if fitted:     # auto: msd fitted, too few tracks with MTT for the joint one
                    click.echo(f"not fitted: {exc}")
                    continue
                raise BadRequestError(str(exc), hint="analyse more tracks with an ML preset (or `scan --upgrade` "
                                      "older ones), or lower similarity.min_tracks; until then the shipped "
                                      "projection is used") from None
    finally:
        db.close()
    for one in fitted:
        p = one.projection
        click.echo(f"fitted the {one.representation} projection on {one.tracks} tracks in {one.fit_s:.2f} s "
                   f"({p.matrix.shape[0]} -> {p.matrix.shape[1]} dimensions, stored as id {one.id})")
        top = ", ".join(f"{v:.2f}" for v in p.eigenvalues[:5])
        click.echo(f"  strongest between/within-track ratios: {top}")

"""`playlistgen export FILE` and `playlistgen import FILE`: the analysis as JSON Lines, keyed by
audio fingerprint, so a reinstall or a new machine with the same music needs no re-analysis."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import settings_from_ctx, user_errors


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file.")
@click.pass_context
@user_errors
def export(ctx: click.Context, file: str, db_path: str | None) -> None:
    """Write every analysed file's analysis to FILE (JSON Lines; gzip when FILE ends in .gz).

    One line per analysed file: byte and audio fingerprints, analyzer version, preset and the
    whole analysis (features, embedding, ML tags, metadata).

    \b
    Examples:
      playlistgen export analysis.jsonl.gz
      playlistgen export /backup/music-analysis.jsonl --db /srv/playlistgen.db
    """
    settings = settings_from_ctx(ctx, {"database": {"path": db_path}})
    from ..core.library.transfer import export_file
    from ..core.storage.db import Database

    started = time.monotonic()
    db = Database.from_settings(settings)
    try:
        count = export_file(db, Path(file), settings.library.paths)
    finally:
        db.close()
    click.echo(f"exported {count} analysed file(s) to {file} in {time.monotonic() - started:.1f} s")


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--library", "libraries", multiple=True, type=click.Path(file_okay=False),
              help="Music folder (repeat for several; replaces library.paths).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Database file.")
@click.pass_context
@user_errors
def import_(ctx: click.Context, file: str, libraries: tuple[str, ...], db_path: str | None) -> None:
    """Import an export: files of the library whose audio matches a record count as analysed.

    All or nothing: every line is checked first (JSON of at most 1 MiB, the export's fields and
    types, finite numbers in range, vector and text lengths); if any record is invalid or was made
    by another analyzer version, nothing is imported and each bad line is listed as "line N: what".
    Then the library is reconciled and each file that is not analysed yet is matched by its
    fingerprint, or by its audio fingerprint when only its tags changed. What is left is analysed
    by `scan`/`serve`.

    \b
    Examples:
      playlistgen import analysis.jsonl.gz
      playlistgen import /backup/music-analysis.jsonl --library /srv/music
    """
    settings = settings_from_ctx(ctx, {"library": {"paths": list(libraries) or None},
                                       "database": {"path": db_path}}, require_library=True)
    from ..core.analysis.factory import analyzer_version
    from ..core.library.reconcile import Library
    from ..core.library.transfer import import_file
    from ..core.storage.db import Database
    from ..core.storage.jobs import JobQueue

    started = time.monotonic()
    version = analyzer_version(settings)
    db = Database.from_settings(settings)
    try:
        queue = JobQueue(db, version)
        queue.requeue_in_flight()
        report = import_file(db, Library(db, settings.library, version), queue, Path(file),
                             progress=lambda line: click.echo(line, err=True))
    finally:
        db.close()
    click.echo(f"imported {report.imported} file(s) from {report.records} record(s) "
               f"({report.by_fingerprint} by fingerprint, {report.by_audio} by audio fingerprint) "
               f"in {time.monotonic() - started:.1f} s; {report.still_pending} file(s) still to analyse"
               + (f"; {report.unmatched_records} record(s) matched no file" if report.unmatched_records else ""))

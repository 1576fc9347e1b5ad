"""`playlistgen db …`: create, check, back up, compact and describe the database."""

from __future__ import annotations

import json

import click

from ..core.storage import maintenance
from ..core.storage.lock import DatabaseLock
from .common import settings_from_ctx, user_errors

db_option = click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
                         help="Database file (default: database.path from the config).")


def _db_path(ctx: click.Context, db_path: str | None) -> tuple[str, int]:
    settings = settings_from_ctx(ctx, {"database": {"path": db_path}})
    return settings.database.path, settings.database.busy_timeout_ms


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@click.group()
def db() -> None:
    """Create, check, back up, compact and describe the database.

    \b
    Examples:
      playlistgen db init
      playlistgen db check
      playlistgen db backup /backups/
      playlistgen db stats --json
    """


@db.command()
@db_option
@click.pass_context
@user_errors
def init(ctx: click.Context, db_path: str | None) -> None:
    """Create the database or apply pending migrations.

    \b
    Example:
      playlistgen db init --db ./playlistgen.db
    """
    path, timeout = _db_path(ctx, db_path)
    with DatabaseLock(path, "db init"):
        version, applied = maintenance.init_database(path, timeout)
    if applied:
        click.echo(f"{path}: applied migrations {', '.join(map(str, applied))}; schema version {version}")
    else:
        click.echo(f"{path}: already at schema version {version}")


@db.command()
@db_option
@click.pass_context
@user_errors
def check(ctx: click.Context, db_path: str | None) -> None:
    """Run integrity_check and foreign_key_check; exit 1 if anything is wrong.

    \b
    Example:
      playlistgen db check
    """
    path, timeout = _db_path(ctx, db_path)
    problems = maintenance.check_database(path, timeout)
    if problems:
        for line in problems:
            click.echo(line, err=True)
        raise click.ClickException(f"{path}: {len(problems)} problem(s) found; "
                                   "restore a backup (`playlistgen db backup` makes them) if integrity failed")
    click.echo(f"{path}: ok (integrity, foreign keys, schema version)")


@db.command()
@click.argument("dest", type=click.Path())
@db_option
@click.pass_context
@user_errors
def backup(ctx: click.Context, dest: str, db_path: str | None) -> None:
    """Copy the database to DEST with SQLite's online backup (safe while serving).

    DEST is a file name or an existing folder (a dated file name is chosen).

    \b
    Example:
      playlistgen db backup /backups/playlistgen.db
    """
    path, timeout = _db_path(ctx, db_path)
    size = maintenance.backup_database(path, dest, timeout)
    click.echo(f"backed up {path} to {dest} ({_human(size)})")


@db.command()
@db_option
@click.pass_context
@user_errors
def vacuum(ctx: click.Context, db_path: str | None) -> None:
    """Compact the database file (VACUUM) and refresh query statistics.

    \b
    Example:
      playlistgen db vacuum
    """
    path, timeout = _db_path(ctx, db_path)
    with DatabaseLock(path, "db vacuum"):
        before, after = maintenance.vacuum_database(path, timeout)
    click.echo(f"{path}: {_human(before)} -> {_human(after)}")


@db.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@user_errors
def stats(ctx: click.Context, db_path: str | None, as_json: bool) -> None:
    """Show row counts and sizes per table and files per status.

    \b
    Example:
      playlistgen db stats
    """
    path, timeout = _db_path(ctx, db_path)
    data = maintenance.database_stats(path, timeout)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['path']}  schema v{data['schema_version']}  "
               f"file {_human(data['file_bytes'])}  wal {_human(data['wal_bytes'])}")
    click.echo(f"{'table':<20}{'rows':>12}{'size':>12}")
    for row in data["tables"]:
        click.echo(f"{row['table']:<20}{row['rows']:>12}{_human(row['bytes']):>12}")
    if data["files_by_status"]:
        click.echo("files: " + ", ".join(f"{k} {v}" for k, v in sorted(data["files_by_status"].items())))

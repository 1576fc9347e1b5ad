"""Numbered SQL migrations (``NNNN_name.sql`` in the ``playlistgen.migrations`` package, which is
the repository's ``migrations/`` folder). Each runs in one transaction and bumps
``PRAGMA user_version`` inside that same transaction, so a crash leaves the old or the new
version, never half of one."""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from importlib import resources

import apsw

from ...errors import MigrationError

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """All shipped migrations in version order; numbering must be 1, 2, 3 … without gaps."""
    found = []
    for entry in resources.files("playlistgen.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration numbering has a gap: expected {expected:04d}, found {migration.name}")
    return found


def current_version(conn: apsw.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchall()[0][0]


@functools.cache  # the shipped files do not change while we run; /health asks on every request
def latest_version() -> int:
    migrations = available_migrations()
    return migrations[-1].version if migrations else 0


def migrate(conn: apsw.Connection, target: int | None = None) -> list[int]:
    """Apply every migration above the database's version (up to ``target``). Returns the versions applied."""
    migrations = available_migrations()
    version = current_version(conn)
    newest = migrations[-1].version if migrations else 0
    if version > newest:
        raise MigrationError(
            f"database schema version {version} is newer than this playlistgen knows ({newest})",
            hint="upgrade playlistgen, or restore a backup made by this version")
    applied = []
    for migration in migrations:
        if migration.version <= version or (target is not None and migration.version > target):
            continue
        log.info("applying migration %s", migration.name)
        try:
            with conn:  # one transaction: the schema change and the version bump commit together
                conn.execute(migration.sql)
                conn.execute(f"PRAGMA user_version = {migration.version}")
        except apsw.Error as exc:
            raise MigrationError(f"migration {migration.name} failed: {exc}",
                                 hint="the database was left at the previous version") from exc
        applied.append(migration.version)
    return applied

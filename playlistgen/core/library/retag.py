"""Retagged files keep their analysis: a changed file whose *audio* fingerprint is unchanged only
gets its metadata re-read.

Called by `Library._sync` in two steps, so no file is read inside a writer transaction:

1. :func:`find_retagged` (library thread, before writing): for present entries whose row is
   analysed and whose byte fingerprint changed, compute the audio fingerprint
   (`core.audio_fingerprint`, one read of the file, no decoding) and, when it matches the
   track's, read the tags (mutagen). Files that were never analysed are not read at all.
2. :func:`apply_retag` (inside the writer job): re-checks the row and either updates the track
   in place (the file was its only copy: saved playlists keep their track id) or, when other
   files still hold the old tags, gives this file a new track row with a copy of the features
   and tags. The track's byte fingerprint becomes the new one, so moves and copies of the
   retagged file keep matching.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import apsw

from ..audio.fingerprint import audio_fingerprint
from ..storage import files
from ..storage.db import Database
from ..storage.records import METADATA, OPTIONAL_METADATA

log = logging.getLogger(__name__)

_QUERY_CHUNK = 500


@dataclass(frozen=True)
class Retagged:
    audio_fingerprint: str
    metadata: dict[str, Any]


def find_retagged(db: Database, entries: Iterable[Any], fingerprints: Mapping[str, str]) -> dict[str, Retagged]:
    """Paths (of ``entries``) that changed only in their tags, with their new metadata."""
    from ..analysis.metadata import read_metadata  # mutagen only; no analysis stack

    paths = [e.path for e in entries]
    out: dict[str, Retagged] = {}
    for start in range(0, len(paths), _QUERY_CHUNK):
        part = paths[start:start + _QUERY_CHUNK]
        rows = db.query(
            "SELECT f.path, f.fingerprint, t.audio_fingerprint FROM files f JOIN tracks t ON t.id = f.track_id "
            f"WHERE f.status IN ('done', 'missing') AND t.audio_fingerprint IS NOT NULL "
            f"AND f.path IN ({', '.join('?' * len(part))})", part)
        for path, old_fp, stored in rows:
            if fingerprints.get(path) in (None, old_fp):
                continue   # unchanged (or unreadable): nothing to decide here
            try:
                if audio_fingerprint(path) != stored:
                    continue   # the audio changed: analysed again
                metadata, _duration = read_metadata(path)
            except OSError as exc:
                log.warning("cannot read %s: %s", path, exc.strerror)
                continue
            out[path] = Retagged(stored, metadata)
    return out


def _columns(conn: apsw.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def copy_track(conn: apsw.Connection, track_id: int, fingerprint: str) -> int:
    """A new track row for ``fingerprint`` with a copy of ``track_id``'s features and tags."""
    new_id = conn.execute(
        "INSERT INTO tracks(fingerprint, audio_fingerprint, duration_s) SELECT ?, audio_fingerprint, duration_s "
        "FROM tracks WHERE id = ? RETURNING id", (fingerprint, track_id)).fetchall()[0][0]
    for table, skip in (("features", {"id", "track_id", "created_at"}), ("tags", {"track_id"})):
        cols = [c for c in _columns(conn, table) if c not in skip]
        listed = ", ".join(cols)
        conn.execute(f"INSERT INTO {table}(track_id, {listed}) SELECT ?, {listed} FROM {table} WHERE track_id = ?",
                     (new_id, track_id))
    return new_id


def update_metadata(conn: apsw.Connection, track_id: int, metadata: Mapping[str, Any]) -> None:
    """Write the tag metadata: records.METADATA, and the optional columns this schema has."""
    known = set(_columns(conn, "tracks"))
    columns = [*METADATA, *(k for k in OPTIONAL_METADATA if k in known)]
    conn.execute(f"UPDATE tracks SET {', '.join(f'{c} = ?' for c in columns)}, updated_at = unixepoch('subsec') "
                 "WHERE id = ?", [*(metadata.get(c) for c in columns), track_id])


def apply_retag(conn: apsw.Connection, file_id: int, size: int, mtime_ns: int, fingerprint: str,
                info: Retagged, analyzer_version: str) -> bool:
    """Keep the analysis of a retagged file (writer thread). False: treat it as changed audio."""
    row = conn.execute(
        "SELECT f.track_id FROM files f JOIN tracks t ON t.id = f.track_id WHERE f.id = ? "
        "AND f.status IN ('done', 'missing') AND t.audio_fingerprint = ? AND EXISTS "
        "(SELECT 1 FROM features x WHERE x.track_id = t.id AND x.analyzer_version = ?)",
        (file_id, info.audio_fingerprint, analyzer_version)).fetchall()
    if not row or conn.execute("SELECT 1 FROM tracks WHERE fingerprint = ?", (fingerprint,)).fetchall():
        return False   # changed meanwhile, analysed by an older version, or known under the new bytes
    track_id = row[0][0]
    shared = conn.execute("SELECT 1 FROM files WHERE track_id = ? AND id != ? LIMIT 1",
                          (track_id, file_id)).fetchall()
    if shared:
        track_id = copy_track(conn, track_id, fingerprint)
    else:
        conn.execute("UPDATE tracks SET fingerprint = ? WHERE id = ?", (fingerprint, track_id))
    update_metadata(conn, track_id, info.metadata)
    files.link(conn, file_id, size, mtime_ns, fingerprint, track_id)
    return True

"""Reconcile the music folders with the files table (the persistent job queue).

Only new or changed files are queued. A file that appears with the size and content fingerprint
of a file that disappeared is a move: its row (and its analysis) follows it. A file whose
fingerprint matches an already analysed track is a copy: it is linked, not analysed again.
Rows under no configured root have disappeared too (a moved or dropped music folder); rows under
a configured root that is absent have not (roots.py: unavailable). The walk also collects the tag
writer's leftover temporary copies, removed once stale (core/library/tag_copies.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import apsw

from ...config import LibrarySettings
from ..storage import files
from ..storage.db import Database
from .paths import is_candidate
from .retag import apply_retag, find_retagged
from .roots import check_root, is_unreadable_row, unavailable_roots, under_any, unreadable_reason
from .tag_copies import is_copy_name, remove_stale

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_WRITE_CHUNK = 500


def fingerprint(path: str, size: int) -> str:
    """A cheap content fingerprint: size + first and last 64 KiB. Survives renames and touches."""
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as fh:
        digest.update(fh.read(_CHUNK))
        if size > 2 * _CHUNK:
            fh.seek(size - _CHUNK)
            digest.update(fh.read(_CHUNK))
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    mtime_ns: int


@dataclass
class ReconcileReport:
    seen: int = 0
    unchanged: int = 0
    queued: int = 0
    moved: int = 0
    linked: int = 0
    retagged: int = 0   # changed only in their tags: metadata re-read, analysis kept
    missing: int = 0
    unreadable: int = 0
    stale_copies_removed: int = 0   # temporary copies an interrupted tag write left behind
    seconds: float = 0.0
    roots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def walk(roots: Iterable[str], extensions: list[str], ignore: list[str],
         on_error: Callable[[str, OSError], None] | None = None,
         tag_copies: list[str] | None = None) -> Iterator[Entry]:
    """Every candidate audio file under the roots, with size and mtime (one stat each). The tag
    writer's temporary copies met on the way are added to ``tag_copies`` when it is given."""
    stack = [(os.path.abspath(r), os.path.abspath(r)) for r in roots]
    while stack:
        folder, root = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            if on_error:
                on_error(folder, exc)
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not entry.name.startswith("."):
                        stack.append((entry.path, root))
                elif entry.is_file() and is_candidate(entry.path, extensions, ignore, root=root):
                    st = entry.stat()
                    yield Entry(entry.path, st.st_size, st.st_mtime_ns)
                elif tag_copies is not None and is_copy_name(entry.name):
                    tag_copies.append(entry.path)
            except OSError as exc:
                if on_error:
                    on_error(entry.path, exc)


def stat_entry(path: str) -> Entry | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return Entry(os.path.abspath(path), st.st_size, st.st_mtime_ns) if os.path.isfile(path) else None


class Library:
    """Keeps the files table in step with the folders. Writes go through the writer thread."""

    def __init__(self, db: Database, settings: LibrarySettings, analyzer_version: str,
                 on_queued: Callable[[], None] | None = None, *, keep_other_folders: bool = False) -> None:
        """``keep_other_folders``: ``settings.paths`` are folders scanned once (`scan DIR` outside
        the configured library), not the library: a known file outside them counts as gone only when
        it no longer exists (a moved folder), never because it is elsewhere."""
        self.db = db
        self.keep_other_folders = keep_other_folders
        self.settings = settings
        self.analyzer_version = analyzer_version
        self.roots = [os.path.abspath(p) for p in settings.paths]
        self._on_queued = on_queued
        self.last_report: ReconcileReport | None = None
        self.current: dict | None = None  # progress of a running reconcile, for /library/status
        self.unavailable: dict[str, str] = {}  # root -> why it is not trusted now (core/library/roots.py)
        self.needs_scan = False  # set by apply_paths when only a full reconcile can tell what happened

    # ---- full reconcile -------------------------------------------------------------------
    def reconcile(self, trigger: str = "cli", roots: list[str] | None = None) -> ReconcileReport:
        """Walk the roots, queue new/changed files, follow moves, mark vanished files missing."""
        started = time.perf_counter()
        roots = [os.path.abspath(r) for r in (roots or self.roots)]
        run_id = self.db.write(lambda c: c.execute(
            "INSERT INTO scan_runs(trigger) VALUES (?) RETURNING id", (trigger,)).fetchall()[0][0])
        report = ReconcileReport(roots=roots)
        self.current = {"run_id": run_id, "trigger": trigger, "started_at": time.time(), "files_seen": 0}
        try:
            known, outside = self._known_rows(roots)
            unavailable = self._note_unavailable(roots, known)
            not_looked_at = list(unavailable)   # never taken for gone: unavailable roots, unlistable folders

            def cannot_read(path: str, exc: OSError) -> None:
                log.warning("cannot read %s: %s", path, exc.strerror)
                not_looked_at.append(path)

            seen_paths = set()
            present: list[Entry] = []
            tag_copies: list[str] = []
            for entry in walk([r for r in roots if r not in unavailable], self.settings.extensions,
                              self.settings.ignore, on_error=cannot_read, tag_copies=tag_copies):
                seen_paths.add(entry.path)
                report.seen += 1
                self.current["files_seen"] = report.seen
                row = known.get(entry.path)
                if (row and row[1] == entry.size and row[2] == entry.mtime_ns and row[3] != "missing"
                        and not is_unreadable_row(row[3], row[4])):
                    report.unchanged += 1
                else:
                    present.append(entry)
            gone = [p for p, row in known.items() if p not in seen_paths and row[3] != "missing"
                    and not under_any(p, not_looked_at)]
            if outside:   # their folder left library.paths: gone, unless found moved into the library
                log.info("%d file(s) under folders no longer in library.paths: marked missing unless "
                         "found moved", len(outside))
            self._sync(present, gone + outside, report)
            report.stale_copies_removed = len(remove_stale(tag_copies))
        except Exception as exc:
            reason = str(exc)
            self.db.write(lambda c: c.execute(
                "UPDATE scan_runs SET finished_at = unixepoch('subsec'), error = ? WHERE id = ?",
                (reason, run_id)))
            raise
        finally:
            self.current = None
        report.seconds = time.perf_counter() - started
        self.db.write(lambda c: c.execute(
            "UPDATE scan_runs SET finished_at = unixepoch('subsec'), files_seen = ?, files_queued = ?, "
            "files_missing = ? WHERE id = ?", (report.seen, report.queued, report.missing, run_id)))
        self.last_report = report
        log.info("reconcile (%s): %d files, %d queued, %d moved, %d linked, %d retagged, %d missing in %.2f s",
                 trigger, report.seen, report.queued, report.moved, report.linked, report.retagged,
                 report.missing, report.seconds)
        return report

    def _root_of(self, path: str) -> str | None:
        return next((r for r in self.roots if path.startswith(r.rstrip(os.sep) + os.sep)), None)

    def _note_unavailable(self, roots: list[str], known: dict[str, tuple]) -> dict[str, str]:
        unavailable = unavailable_roots(roots, known)
        for root in roots:
            if root in unavailable and root not in self.unavailable:
                log.warning("%s", unavailable[root])
            elif root not in unavailable and root in self.unavailable:
                log.info("library root %s is available again", root)
            self.unavailable.pop(root, None)
        self.unavailable.update(unavailable)
        return unavailable

    def _known_rows(self, roots: list[str]) -> tuple[dict[str, tuple], list[str]]:
        """(rows under ``roots`` by path, paths of present rows under no configured root). A root
        still configured but absent is unavailable (roots.py); one no longer configured is gone."""
        rows = self.db.query("SELECT path, size, mtime_ns, status, error FROM files")
        prefixes = tuple(r.rstrip(os.sep) + os.sep for r in roots)
        configured = tuple(r.rstrip(os.sep) + os.sep for r in {*self.roots, *roots})
        known = {r[0]: r for r in rows if r[0].startswith(prefixes)}
        outside = [r[0] for r in rows if r[3] != "missing" and not r[0].startswith(configured)]
        if self.keep_other_folders:
            outside = [p for p in outside if not os.path.lexists(p)]
        return known, outside

    # ---- targeted changes (from the watcher) ----------------------------------------------
    def apply_paths(self, changed: Iterable[str] = (), deleted: Iterable[str] = ()) -> ReconcileReport:
        """Sync specific paths: ``changed`` are re-stat'ed (a folder is walked), ``deleted`` (files or
        folders) are marked missing. A move is a delete plus a change: the fingerprint links them."""
        report = ReconcileReport(roots=self.roots)
        present: list[Entry] = []
        gone: list[str] = []
        for path in changed:
            path = os.path.abspath(path)
            if os.path.isdir(path):
                present.extend(walk([path], self.settings.extensions, self.settings.ignore))
            elif is_candidate(path, self.settings.extensions, self.settings.ignore, root=self._root_of(path)):
                entry = stat_entry(path)
                if entry:
                    present.append(entry)
                else:
                    gone.append(path)
        for path in deleted:
            path = os.path.abspath(path)
            root = self._root_of(path)
            if root is None or check_root(root) is not None:
                # a root itself went (unmount, unplug): a full reconcile decides, nothing is dropped here
                self.needs_scan = True
                continue
            prefix = path.rstrip(os.sep) + os.sep
            gone.extend(p for (p,) in self.db.query(
                "SELECT path FROM files WHERE (path = ? OR substr(path, 1, ?) = ?) AND status != 'missing'",
                (path, len(prefix), prefix)))
        report.seen = len(present)
        self._sync(present, gone, report)
        return report

    # ---- the one place that decides what happens to a path --------------------------------
    def _sync(self, present: list[Entry], gone: list[str], report: ReconcileReport) -> None:
        """Apply present (new or changed) entries and vanished paths in one pass so moves match."""
        fingerprints: dict[str, str] = {}
        unreadable: list[tuple[Entry, str]] = []
        for entry in present:
            try:
                fingerprints[entry.path] = fingerprint(entry.path, entry.size)
            except OSError as exc:
                log.warning("cannot read %s: %s", entry.path, exc.strerror)
                report.unreadable += 1
                unreadable.append((entry, unreadable_reason(exc)))
        if unreadable:  # listed in /api/v1/tracks/failed with the reason; looked at again each reconcile
            self.db.write(lambda c: files.upsert_unreadable(
                c, [(e.path, e.size, e.mtime_ns, reason) for e, reason in unreadable]))
        present = [e for e in present if e.path in fingerprints]
        retagged = find_retagged(self.db, present, fingerprints)   # reads files: outside the writer
        gone_set = set(gone)
        for start in range(0, max(len(present), 1), _WRITE_CHUNK):
            chunk = present[start:start + _WRITE_CHUNK]
            self.db.write(lambda c, chunk=chunk: self._apply_present(c, chunk, fingerprints, gone_set, report,
                                                                     retagged))
        missing = [p for p in gone if p in gone_set]  # those not consumed by a move
        for start in range(0, len(missing), _WRITE_CHUNK):
            chunk = missing[start:start + _WRITE_CHUNK]
            self.db.write(lambda c, chunk=chunk: files.mark_missing(c, chunk))
            report.missing += len(chunk)
        if report.queued and self._on_queued:
            self._on_queued()

    def _apply_present(self, conn: apsw.Connection, entries: list[Entry], fingerprints: dict[str, str],
                       gone: set[str], report: ReconcileReport, retagged: dict | None = None) -> None:
        for entry in entries:
            fp = fingerprints[entry.path]
            row = conn.execute("SELECT id, fingerprint, status, track_id, error FROM files WHERE path = ?",
                               (entry.path,)).fetchall()
            if row:
                file_id, old_fp, status, track_id, error = row[0]
                readable_again = is_unreadable_row(status, error)
                if old_fp == fp and track_id is not None and (status in ("done", "missing") or readable_again):
                    # touched or came back unchanged: keep the analysis
                    files.keep_analysis(conn, file_id, entry.size, entry.mtime_ns)
                    report.unchanged += 1
                    continue
                if old_fp == fp and status == "failed" and not readable_again:
                    files.update_stat(conn, file_id, entry.size, entry.mtime_ns)  # retried only when it changes
                    report.unchanged += 1
                    continue
                if retagged and entry.path in retagged and apply_retag(
                        conn, file_id, entry.size, entry.mtime_ns, fp, retagged[entry.path], self.analyzer_version):
                    report.retagged += 1
                    continue
                self._queue(conn, file_id, entry, fp, report)
                continue
            moved_from = self._find_move_source(conn, entry, fp, gone)
            if moved_from is not None:
                old_path, file_id = moved_from
                gone.discard(old_path)
                files.move(conn, file_id, entry.path, entry.mtime_ns)
                report.moved += 1
                continue
            track_id = self._analysed_track(conn, fp)
            files.insert(conn, entry.path, entry.size, entry.mtime_ns, fp, track_id)
            if track_id is not None:
                report.linked += 1
            else:
                report.queued += 1

    def _queue(self, conn: apsw.Connection, file_id: int, entry: Entry, fp: str, report: ReconcileReport) -> None:
        track_id = self._analysed_track(conn, fp)
        if track_id is not None:  # content identical to an analysed track (e.g. replaced by a copy)
            files.link(conn, file_id, entry.size, entry.mtime_ns, fp, track_id)
            report.linked += 1
            return
        files.queue_changed(conn, file_id, entry.size, entry.mtime_ns, fp)
        report.queued += 1

    def _find_move_source(self, conn: apsw.Connection, entry: Entry, fp: str,
                          gone: set[str]) -> tuple[str, int] | None:
        """A vanished or missing file with the same size and fingerprint: the same file, moved."""
        for path, file_id, status in conn.execute(
                "SELECT path, id, status FROM files WHERE size = ? AND fingerprint = ?", (entry.size, fp)):
            if path in gone or status == "missing":
                return path, file_id
        return None

    def _analysed_track(self, conn: apsw.Connection, fp: str) -> int | None:
        rows = conn.execute("SELECT t.id FROM tracks t JOIN features f ON f.track_id = t.id "
                            "WHERE t.fingerprint = ? AND f.analyzer_version = ?",
                            (fp, self.analyzer_version)).fetchall()
        return rows[0][0] if rows else None


def library_counts(db: Database) -> dict[str, int]:
    counts = dict(db.query("SELECT status, count(*) FROM files GROUP BY status"))
    out = {s: counts.get(s, 0) for s in ("pending", "analysing", "done", "failed", "missing")}
    out["total"] = sum(v for k, v in out.items() if k != "missing")
    out["analysed"] = out["done"]
    out["tracks"] = db.query(f"SELECT count(DISTINCT track_id) FROM files WHERE {files.live()}")[0][0]
    return out


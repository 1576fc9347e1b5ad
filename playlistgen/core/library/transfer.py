"""Analysis that survives reinstalls: export every analysed file as JSON Lines, import it on a
new machine with the same music instead of analysing for hours.

One record (one line) per analysed file: ``fingerprint`` (the cheap byte one), ``audio_fingerprint``
(core.audio_fingerprint: tags ignored), ``analyzer_version``, ``preset``, ``path`` (relative to its
library folder, for people reading the file), every field of the analysis contract (DESIGN §6:
scalars, the vectors as lists, ``tags``, ``metadata``). A ``.gz`` suffix means gzip.

Import first reads the whole file and checks every line against the export schema
(``export_format``: bounded lines, types, finite numbers in range, vector and string lengths); one
invalid record, or one from another analyzer version, and the import is refused with nothing
written — all or nothing, the bad lines listed as ``line N: <what>``. Then it reconciles the
library, matches each pending file to a record — by byte fingerprint
(no read) or else by audio fingerprint (one read of the file, no decode; its current tags are
read too, since they differ from the exported ones) — and stores the record exactly as an
analysis result is stored (`JobQueue`), so an imported file counts as analysed. A record from
another analyzer version is refused because its numbers would not be comparable with the ones
this installation computes.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ...errors import PlaylistgenError
from ..analysis.result import AnalysisResult
from ..audio.fingerprint import audio_fingerprint
from ..storage import files
from ..storage.db import Database
from ..storage.jobs import Job, JobQueue
from ..storage.records import (
    METADATA,
    OPTIONAL_METADATA,
    SCALAR_FEATURES,
    VECTOR_FEATURES,
    get_adaptation,
    get_many_features,
    half_values,
)
from .export_format import READ_ERRORS, BadRecord, LineTooLong, check_record, decompressed, entries
from .reconcile import Library

log = logging.getLogger(__name__)

_CHUNK = 500
MAX_LISTED = 20            # invalid records named one by one; the rest are counted


class TransferError(PlaylistgenError):
    """A bad export file or a refused import."""


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


# ------------------------------------------------------------------------------------- export

def _relative(path: str | None, roots: list[str]) -> str | None:
    if path is None:
        return None
    for root in roots:
        prefix = root.rstrip(os.sep) + os.sep
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def export_records(db: Database, roots: list[str]) -> Iterator[dict]:
    """One record per analysed (done) file, in track order."""
    roots = [os.path.abspath(r) for r in roots]
    rows = db.query("SELECT f.path, f.fingerprint, t.id, t.audio_fingerprint FROM files f "
                    f"JOIN tracks t ON t.id = f.track_id WHERE {files.live('f')} ORDER BY t.id, f.id")
    columns = {r[1] for r in db.query("PRAGMA table_info(tracks)")}
    optional = [c for c in OPTIONAL_METADATA if c in columns]   # this schema's later metadata columns
    extra = {r[0]: r[1:] for r in db.query(f"SELECT id, {', '.join(optional)} FROM tracks")} if optional else {}
    for start in range(0, len(rows), _CHUNK):
        part = rows[start:start + _CHUNK]
        found = get_many_features(db, None, [r[2] for r in part])
        adaptation = get_adaptation(db, [r[2] for r in part])
        for path, fp, track_id, audio_fp in part:
            rec = found.get(track_id)
            if rec is None:
                continue
            if audio_fp is None:   # analysed before audio fingerprints existed
                try:
                    audio_fp = audio_fingerprint(path)
                except OSError as exc:
                    log.warning("left out %s: %s", path, exc.strerror)
                    continue
            out: dict[str, Any] = {"fingerprint": fp, "audio_fingerprint": audio_fp,
                                   "analyzer_version": rec["analyzer_version"], "preset": rec["preset"],
                                   "path": _relative(path, roots)}
            for name in SCALAR_FEATURES:
                out[name] = rec[name]
            for name in VECTOR_FEATURES:
                out[name] = None if rec[name] is None else rec[name].tolist()
            extra_ml = adaptation.get(track_id, {})
            spread, mtt = extra_ml.get("embedding_spread"), extra_ml.get("embedding_mtt")
            out["embedding_spread"] = None if spread is None else half_values(spread)
            out["embedding_patches"] = extra_ml.get("embedding_patches")
            out["embedding_mtt"] = None if mtt is None else mtt.tolist()
            out["tags"] = rec["tags"]
            meta = {k: rec[k] for k in METADATA}
            meta.update((k, v) for k, v in zip(optional, extra.get(track_id, ()), strict=False) if v)
            out["metadata"] = meta
            try:   # only what `import` accepts: a database may predate the import checks
                check_record(out)
            except BadRecord as exc:
                log.warning("left out %s: %s (it is analysed again where this export is imported)", path, exc)
                continue
            yield out


def export_file(db: Database, dest: Path, roots: list[str]) -> int:
    """Write the export to ``dest`` (via a temporary file: a failure never leaves half a file)."""
    dest = Path(dest)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=dest.suffix, dir=dest.parent or ".")
    os.close(fd)
    count = 0
    try:
        with _open(Path(tmp), "w") as fh:
            for record in export_records(db, roots):
                fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n")
                count += 1
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


# ------------------------------------------------------------------------------------- import

@dataclass
class ImportReport:
    records: int = 0
    imported: int = 0          # files that became analysed
    by_fingerprint: int = 0
    by_audio: int = 0
    unmatched_records: int = 0
    still_pending: int = 0
    reconcile: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class InvalidRecordsError(TransferError):
    """Records that do not fit the export schema: the import is refused as a whole."""

    def __init__(self, path: Path, bad: int, total: int, problems: list[str], *, stopped: bool) -> None:
        read = " read" if stopped else ""
        super().__init__(f"{path}: {bad} invalid record(s) of {total}{read}, nothing was imported",
                         hint="fix or delete these lines, or export again with `playlistgen export`")
        self.problems = problems[:MAX_LISTED]
        if bad > len(self.problems):
            self.problems.append(f"... and {bad - len(self.problems)} more")

    def one_line(self) -> str:   # the CLI's message: the summary, then one line per bad record
        return super().one_line() + ":" + "".join(f"\n  {p}" for p in self.problems)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "problems": self.problems}


@dataclass
class _Scan:
    """The first pass over an export: counts, problems, and the fingerprints to match."""

    records: int = 0
    bad: int = 0
    problems: list[str] = field(default_factory=list)      # the first MAX_LISTED
    stopped: bool = False                                   # at a line past MAX_LINE_BYTES
    other: dict[str, int] = field(default_factory=dict)     # other analyzer versions → records
    by_fp: dict[str, str] = field(default_factory=dict)     # byte fingerprint → audio fingerprint
    audio: set[str] = field(default_factory=set)

    def fail(self, problem: str) -> None:
        self.bad += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(problem)


def _scan(fh: IO[bytes], path: Path, analyzer_version: str) -> _Scan:
    """First pass: every line checked before anything is written; refuses the whole file when a
    record is invalid or from another analyzer version."""
    scan = _Scan()
    try:
        for _, entry in entries(fh, analyzer_version):
            scan.records += 1
            if isinstance(entry, str):
                scan.fail(entry)
            elif entry["analyzer_version"] != analyzer_version:
                scan.other[entry["analyzer_version"]] = scan.other.get(entry["analyzer_version"], 0) + 1
            else:
                scan.by_fp[entry["fingerprint"]] = entry["audio_fingerprint"]
                scan.audio.add(entry["audio_fingerprint"])
    except LineTooLong as exc:
        scan.records += 1
        scan.fail(str(exc))
        scan.stopped = True
    except READ_ERRORS as exc:   # truncated or corrupt gzip, I/O error: nothing was written yet
        raise _unreadable(path, exc) from None
    if scan.other:
        versions = sorted(scan.other.items())
        found = ", ".join(f"{v} ({n} record{'s' if n > 1 else ''})" for v, n in versions[:5])
        found += f" and {len(versions) - 5} other version(s)" if len(versions) > 5 else ""
        raise TransferError(
            f"{path} holds analyses by {found}; this installation analyses with {analyzer_version}: import refused, "
            "nothing was changed",
            hint="import with the playlistgen version that exported it, or analyse with `playlistgen scan`")
    if scan.bad:
        raise InvalidRecordsError(path, scan.bad, scan.records, scan.problems, stopped=scan.stopped)
    return scan


def _valid_records(fh: IO[bytes], path: Path, analyzer_version: str) -> Iterator[dict[str, Any]]:
    """Second pass: the records again (all valid: the first pass said so, unless something wrote
    to the file in between — then the records before the changed line are imported, and it says so)."""
    def changed(what: str) -> TransferError:
        return TransferError(f"{path} changed while it was imported ({what}): only the records before that line "
                             "were imported", hint="import a copy that nothing writes to")

    try:
        for number, entry in entries(fh, analyzer_version):
            if isinstance(entry, str):
                raise changed(entry)
            if entry["analyzer_version"] != analyzer_version:
                raise changed(f"line {number}: analyzer version {entry['analyzer_version']}")
            yield entry
    except LineTooLong as exc:
        raise changed(str(exc)) from None
    except READ_ERRORS as exc:
        raise changed(f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from None


def import_file(db: Database, library: Library, queue: JobQueue, path: Path,
                progress: Callable[[str], None] | None = None) -> ImportReport:
    """Check every record, reconcile, match pending files to the records, store them as analysed.
    All or nothing: one invalid record (or one of another analyzer version) and nothing is written.
    The file stays open between the passes, so a file replaced meanwhile is not the one read twice."""
    path = Path(path)
    try:
        raw = open(path, "rb")   # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with raw:
        try:
            fh = decompressed(raw)
        except READ_ERRORS as exc:
            raise _unreadable(path, exc) from None
        with fh:
            return _import(db, library, queue, fh, path, progress)


def _unreadable(path: Path, exc: BaseException) -> TransferError:
    return TransferError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                         hint="is this a file written by `playlistgen export`?")


def _import(db: Database, library: Library, queue: JobQueue, fh: IO[bytes], path: Path,
            progress: Callable[[str], None] | None) -> ImportReport:
    from ..analysis.metadata import read_metadata  # mutagen only

    report = ImportReport()
    scan = _scan(fh, path, queue.analyzer_version)
    report.records = scan.records
    report.reconcile = library.reconcile(trigger="import").to_dict()
    pending = db.query("SELECT id, path, fingerprint FROM files WHERE status = 'pending' ORDER BY id")
    wanted: dict[str, list[tuple[int, str, str, dict | None]]] = {}   # audio fp → files
    for file_id, file_path, fp in pending:
        if fp in scan.by_fp:
            wanted.setdefault(scan.by_fp[fp], []).append((file_id, file_path, fp, None))
            report.by_fingerprint += 1
            continue
        try:
            afp = audio_fingerprint(file_path)
        except OSError as exc:
            log.warning("cannot read %s: %s", file_path, exc.strerror)
            continue
        if afp in scan.audio:   # same audio, other tags: keep the file's own metadata
            wanted.setdefault(afp, []).append((file_id, file_path, fp, read_metadata(file_path)[0]))
            report.by_audio += 1
    if progress:
        progress(f"{len(pending)} file(s) to analyse, {report.by_fingerprint + report.by_audio} found in {path}")
    used: set[str] = set()
    futures = []
    fh.seek(0)
    for record in _valid_records(fh, path, queue.analyzer_version):
        matches = wanted.get(record["audio_fingerprint"])
        if not matches:
            if record["audio_fingerprint"] not in used:
                report.unmatched_records += 1
            continue
        used.add(record["audio_fingerprint"])
        for file_id, file_path, fp, metadata in matches:
            result = AnalysisResult.from_dict(record)
            if metadata is not None:
                result.metadata = metadata
            # batched by the writer; a copy stored with the first of its fingerprint counts too
            futures.append(db.submit(lambda c, f=file_id, p=file_path, fp=fp, r=result: _store(c, queue, f, p, fp, r)))
        del wanted[record["audio_fingerprint"]]
    for future in futures:
        future.result()
    report.imported = len(futures)
    report.still_pending = queue.pending_count()
    return report


def _store(conn: Any, queue: JobQueue, file_id: int, path: str, fp: str, result: AnalysisResult) -> bool:
    """Store a record the way an analysis result is stored (one transaction); False if the file
    was linked meanwhile (a copy with the fingerprint of a record stored just before)."""
    if not files.claim_for_import(conn, file_id, fp):
        return False
    queue.store_result(conn, Job(file_id, path, fp), result)
    return True

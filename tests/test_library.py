"""Reconcile and the job queue on a real folder and a real SQLite file. The files hold random
bytes: reconcile never decodes, it only stats and fingerprints."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from playlistgen.config import LibrarySettings
from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.library.reconcile import Library, library_counts
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.jobs import JobQueue

VERSION = "test-1"


def make_file(path: Path, seed: int, size: int = 200_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(16) + bytes([seed % 256]) * size)
    return path


@pytest.fixture
def lib(tmp_path: Path, database: Database) -> tuple[Library, JobQueue, Path]:
    root = tmp_path / "music"
    root.mkdir()
    settings = LibrarySettings(paths=[str(root)])
    settings.extensions = [".mp3", ".flac", ".ogg"]
    return Library(database, settings, VERSION), JobQueue(database, VERSION), root


def analyse_all(queue: JobQueue) -> int:
    """Complete every pending job with a small result, as the scheduler would."""
    jobs = queue.claim(1000)
    for job in jobs:
        queue.complete(job, AnalysisResult(duration_s=60.0, bpm=120.0, preset="fast",
                                           analyzer_version=VERSION, metadata={"title": Path(job.path).stem},
                                           mfcc_mean=[0.0] * 13, tags={"msd": {"rock": 0.9}})).result(10)
    return len(jobs)


def statuses(db: Database) -> dict[str, str]:
    return {Path(p).name: s for p, s in db.query("SELECT path, status FROM files")}


def test_new_files_are_queued_once(lib) -> None:
    library, queue, root = lib
    for i in range(5):
        make_file(root / f"a{i}.mp3", i)
    make_file(root / "cover.jpg", 9)
    make_file(root / ".hidden.mp3", 8)
    report = library.reconcile()
    assert report.queued == 5 and report.seen == 5
    assert library.reconcile().queued == 0
    assert analyse_all(queue) == 5
    again = library.reconcile()
    assert again.queued == 0 and again.unchanged == 5
    assert library_counts(queue.db)["done"] == 5


def test_modified_file_is_requeued_touched_is_not(lib) -> None:
    library, queue, root = lib
    a, b = make_file(root / "a.mp3", 1), make_file(root / "b.mp3", 2)
    library.reconcile()
    analyse_all(queue)
    os.utime(a, ns=(1, 10**18))  # touch only: same content
    make_file(b, 3)  # new content
    report = library.reconcile()
    assert report.queued == 1
    assert statuses(queue.db) == {"a.mp3": "done", "b.mp3": "pending"}


def test_move_file_and_folder_keep_analysis(lib) -> None:
    library, queue, root = lib
    make_file(root / "x.mp3", 1)
    for i in range(3):
        make_file(root / "Album" / f"{i}.flac", 10 + i)
    library.reconcile()
    analyse_all(queue)
    ids = dict(queue.db.query("SELECT fingerprint, id FROM files"))
    (root / "x.mp3").rename(root / "y.mp3")
    shutil.move(root / "Album", root / "Renamed Album")
    report = library.reconcile()
    assert report.moved == 4 and report.queued == 0 and report.missing == 0
    assert dict(queue.db.query("SELECT fingerprint, id FROM files")) == ids  # same rows followed
    assert set(statuses(queue.db).values()) == {"done"}
    assert queue.db.query("SELECT count(*) FROM files WHERE path LIKE '%Renamed Album%'")[0][0] == 3


def test_apply_paths_follows_a_watcher_move(lib) -> None:
    library, queue, root = lib
    make_file(root / "a.mp3", 1)
    library.reconcile()
    analyse_all(queue)
    (root / "a.mp3").rename(root / "b.mp3")
    report = library.apply_paths(changed=[str(root / "b.mp3")], deleted=[str(root / "a.mp3")])
    assert report.moved == 1 and report.queued == 0
    assert statuses(queue.db) == {"b.mp3": "done"}


def test_copy_is_linked_not_analysed(lib) -> None:
    library, queue, root = lib
    make_file(root / "song.mp3", 1)
    library.reconcile()
    analyse_all(queue)
    shutil.copy2(root / "song.mp3", root / "copy of song.mp3")
    report = library.reconcile()
    assert report.linked == 1 and report.queued == 0
    rows = queue.db.query("SELECT status, track_id FROM files")
    assert {r[0] for r in rows} == {"done"} and len({r[1] for r in rows}) == 1


def test_copy_queued_before_analysis_finishes_is_analysed_once(lib) -> None:
    library, queue, root = lib
    make_file(root / "song.mp3", 1)
    shutil.copy2(root / "song.mp3", root / "song copy.mp3")
    library.reconcile()
    job = queue.claim(1)
    assert len(job) == 1
    queue.complete(job[0], AnalysisResult(duration_s=1.0, analyzer_version=VERSION)).result(10)
    assert queue.claim(10) == []  # the copy was satisfied by the same analysis
    assert set(statuses(queue.db).values()) == {"done"}


def test_deleted_is_missing_and_comes_back(lib) -> None:
    library, queue, root = lib
    make_file(root / "a.mp3", 1)
    make_file(root / "b.mp3", 2)
    library.reconcile()
    analyse_all(queue)
    data = (root / "a.mp3").read_bytes()
    (root / "a.mp3").unlink()
    assert library.reconcile().missing == 1
    counts = library_counts(queue.db)
    assert counts["missing"] == 1 and counts["total"] == 1
    (root / "a.mp3").write_bytes(data)
    report = library.reconcile()
    assert report.queued == 0 and statuses(queue.db)["a.mp3"] == "done"


def test_failed_file_is_retried_only_when_it_changes(lib) -> None:
    library, queue, root = lib
    bad = make_file(root / "bad.mp3", 1)
    library.reconcile()
    queue.fail(queue.claim(1)[0], "decoder: invalid data\nsecond line")
    queue.db.writer.flush()
    assert queue.failures()[0]["reason"] == "decoder: invalid data second line"
    os.utime(bad, ns=(1, 10**18))
    assert library.reconcile().queued == 0
    make_file(bad, 7)
    assert library.reconcile().queued == 1


def test_in_flight_files_are_requeued_after_a_crash(lib) -> None:
    library, queue, root = lib
    for i in range(3):
        make_file(root / f"{i}.ogg", i)
    library.reconcile()
    claimed = queue.claim(2)
    assert len(claimed) == 2
    assert queue.requeue_in_flight() == 2
    assert sorted(j.file_id for j in queue.claim(10)) == [1, 2, 3]
    assert queue.db.query("SELECT max(attempts) FROM files")[0][0] == 1


def test_result_is_stored_whole(lib) -> None:
    library, queue, root = lib
    make_file(root / "a.mp3", 1)
    library.reconcile()
    job = queue.claim(1)[0]
    queue.complete(job, AnalysisResult(duration_s=61.5, bpm=128.0, key="A", scale="minor", camelot="8A",
                                       analyzer_version=VERSION, preset="balanced", embedding=[0.5] * 200,
                                       metadata={"artist": "Ünïcode", "title": "Song", "year": 1999},
                                       tags={"msd": {"rock": 0.7, "pop": 0.2}})).result(10)
    row = queue.db.query("SELECT t.artist, t.year, f.bpm, f.camelot, length(f.embedding) FROM tracks t "
                         "JOIN features f ON f.track_id = t.id")
    assert row == [("Ünïcode", 1999, 128.0, "8A", 800)]
    assert queue.db.query("SELECT label FROM tags ORDER BY probability DESC") == [("rock",), ("pop",)]
    assert queue.db.query("SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH 'unicode'") == [(1,)]


# ---- issue 20, point 19: a moved or dropped music folder ------------------------------------------
def library_at(database: Database, *roots: Path) -> Library:
    settings = LibrarySettings(paths=[str(r) for r in roots])
    settings.extensions = [".mp3", ".flac", ".ogg"]
    return Library(database, settings, VERSION)


def test_moved_library_folder_takes_its_rows_along(tmp_path: Path, database: Database) -> None:
    """`scan libX; mv libX libY; scan libY`: the rows (and their analysis) follow the files."""
    lib_x, lib_y = tmp_path / "libX", tmp_path / "libY"
    for i in range(4):
        make_file(lib_x / "Album" / f"{i}.flac", i)
    library = library_at(database, lib_x)
    library.reconcile()
    queue = JobQueue(database, VERSION)
    assert analyse_all(queue) == 4
    ids = dict(database.query("SELECT fingerprint, id FROM files"))
    lib_x.rename(lib_y)

    report = library_at(database, lib_y).reconcile()
    assert (report.moved, report.queued, report.linked, report.missing) == (4, 0, 0, 0), report
    assert dict(database.query("SELECT fingerprint, id FROM files")) == ids   # the same rows, moved
    paths = [p for (p,) in database.query("SELECT path FROM files WHERE status = 'done'")]
    assert len(paths) == 4 and all(p.startswith(str(lib_y) + os.sep) for p in paths), paths
    assert queue.claim(10) == []                                              # nothing to analyse


def test_folder_dropped_from_library_paths_is_missing_until_configured_again(tmp_path: Path,
                                                                              database: Database) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    make_file(a / "1.mp3", 1)
    make_file(b / "2.mp3", 2)
    library_at(database, a, b).reconcile()
    analyse_all(JobQueue(database, VERSION))

    report = library_at(database, a).reconcile()       # b is no longer configured (still on disk)
    assert report.missing == 1 and report.unchanged == 1
    assert statuses(database) == {"1.mp3": "done", "2.mp3": "missing"}
    report = library_at(database, a, b).reconcile()    # configured again: back with its analysis
    assert report.queued == 0 and statuses(database) == {"1.mp3": "done", "2.mp3": "done"}


def test_configured_root_that_vanished_is_unavailable_not_missing(tmp_path: Path, database: Database) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    make_file(a / "1.mp3", 1)
    make_file(b / "2.mp3", 2)
    library = library_at(database, a, b)
    library.reconcile()
    b.rename(tmp_path / "b unplugged")
    report = library.reconcile()
    assert report.missing == 0 and str(b) in library.unavailable
    assert statuses(database) == {"1.mp3": "pending", "2.mp3": "pending"}


def test_reconcile_of_a_part_of_the_library_leaves_the_rest(tmp_path: Path, database: Database) -> None:
    root = tmp_path / "music"
    make_file(root / "Old" / "1.mp3", 1)
    make_file(root / "New" / "2.mp3", 2)
    library = library_at(database, root)
    library.reconcile()
    (root / "New" / "2.mp3").unlink()
    make_file(root / "New" / "3.mp3", 3)
    report = library.reconcile(roots=[str(root / "New")])
    assert report.missing == 1 and report.queued == 1
    assert statuses(database) == {"1.mp3": "pending", "2.mp3": "missing", "3.mp3": "pending"}

"""Storage layer on real SQLite files: migrations, writer batching, reader pool, crash safety."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import apsw
import pytest

from playlistgen.core.storage import maintenance
from playlistgen.core.storage.db import Database, ReaderPool, connect
from playlistgen.core.storage.migrate import current_version, latest_version, migrate
from playlistgen.errors import DatabaseError, MigrationError

FIXTURES = Path(__file__).parent / "fixtures"


def test_connect_applies_pragmas(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a.db", busy_timeout_ms=1234)
    assert conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchall()[0][0] == 1
    assert conn.execute("PRAGMA synchronous").fetchall()[0][0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchall()[0][0] == 1234


def test_migrations_on_empty_db_then_noop(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a.db")
    assert migrate(conn) == list(range(1, latest_version() + 1))
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='table'")}
    assert {"files", "tracks", "features", "tags", "playlists", "playlist_items", "tracks_fts",
            "scan_runs"} <= tables
    assert migrate(conn) == []
    assert current_version(conn) == latest_version()


def test_upgrade_from_stored_v1_file_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURES / "db_v1.sqlite", path)
    conn = connect(path)
    assert current_version(conn) == 1
    assert migrate(conn) == list(range(2, latest_version() + 1))
    assert conn.execute("SELECT path, status FROM files").fetchall() == [("/music/old.ogg", "done")]
    # the FTS index built by migration 1 still finds the old track
    assert conn.execute("SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH 'old'").fetchall() == [(1,)]
    assert maintenance.check_database(path) == []


def test_newer_database_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "a.db")
    conn.execute("PRAGMA user_version = 999")
    with pytest.raises(MigrationError, match="newer than this playlistgen knows"):
        migrate(conn)


def test_fts_follows_track_updates(database: Database) -> None:
    database.write(lambda c: c.execute(
        "INSERT INTO tracks(fingerprint, artist, title, album) VALUES ('f1', 'Björk', 'Jóga', 'Homogenic')"))
    assert database.query("SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH 'bjork'") == [(1,)]
    database.write(lambda c: c.execute("UPDATE tracks SET title = 'Hunter' WHERE id = 1"))
    assert database.query("SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH 'joga'") == []
    assert database.query("SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH 'hunter'") == [(1,)]


def test_failing_job_fails_alone(database: Database) -> None:
    ok1 = database.submit(lambda c: c.execute("INSERT INTO tracks(fingerprint) VALUES ('a')"))
    bad = database.submit(lambda c: c.execute("INSERT INTO tracks(fingerprint) VALUES ('a')"))  # UNIQUE
    ok2 = database.submit(lambda c: c.execute("INSERT INTO tracks(fingerprint) VALUES ('b')"))
    ok1.result(5), ok2.result(5)
    with pytest.raises(apsw.ConstraintError):
        bad.result(5)
    assert database.query("SELECT fingerprint FROM tracks ORDER BY 1") == [("a",), ("b",)]


def test_writers_and_readers_concurrently_exact_counts(database: Database) -> None:
    """4 writer threads and 8 reader threads for 3 seconds: every acknowledged row is there, once."""
    writers, readers, seconds = 4, 8, 3.0
    errors: list[BaseException] = []
    written = [0] * writers
    stop = threading.Event()

    def write(n: int) -> None:
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                futures = [database.submit(lambda c, i=written[n] + k: c.execute(
                    "INSERT INTO tracks(fingerprint, artist) VALUES (?, ?)", (f"w{n}-{i}", f"writer {n}")))
                    for k in range(20)]
                for f in futures:
                    f.result(30)
                written[n] += len(futures)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                database.query("SELECT count(*), max(id) FROM tracks")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(readers)]
    threads += [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads[readers:]:
        t.join(60)
    stop.set()
    for t in threads[:readers]:
        t.join(10)
    assert errors == []
    counts = dict(database.query("SELECT artist, count(DISTINCT fingerprint) FROM tracks GROUP BY artist"))
    assert counts == {f"writer {n}": written[n] for n in range(writers)}
    assert database.query("SELECT count(*) FROM tracks")[0][0] == sum(written)
    stats = database.pool_stats()
    assert stats["writer"]["jobs"] == sum(written) and stats["writer"]["failed_jobs"] == 0
    assert stats["writer"]["batches"] < sum(written)  # writes were batched
    assert stats["checkouts"] > readers and stats["opened"] <= 4


def test_pool_waits_when_full_and_counts_it(tmp_path: Path) -> None:
    Database(tmp_path / "p.db").close()
    pool = ReaderPool(tmp_path / "p.db", pool_min=1, pool_max=2, busy_timeout_ms=1000)
    held = [pool._checkout(), pool._checkout()]
    released = threading.Timer(0.2, lambda: pool._checkin(held.pop()))
    released.start()
    with pool.connection() as conn:  # waits until the timer returns one
        assert conn.execute("SELECT 1").fetchall() == [(1,)]
    stats = pool.snapshot()
    assert stats["waits"] == 1 and stats["wait_s"] >= 0.15 and stats["opened"] == 2
    pool._checkin(held.pop())
    pool.close()
    pool.close()  # idempotent


def test_pool_checkout_timeout_names_setting(tmp_path: Path) -> None:
    Database(tmp_path / "p.db").close()
    pool = ReaderPool(tmp_path / "p.db", pool_min=1, pool_max=1, busy_timeout_ms=100,
                      checkout_timeout_s=0.1)
    held = pool._checkout()
    with pytest.raises(DatabaseError) as err:
        pool._checkout()
    assert "database.pool_max" in err.value.hint
    pool._checkin(held)
    pool.close()


def test_readers_are_read_only(database: Database) -> None:
    with pytest.raises(apsw.ReadOnlyError):
        database.read(lambda c: c.execute("INSERT INTO tracks(fingerprint) VALUES ('x')"))


def test_close_flushes_and_is_idempotent(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db", batch_size=8)
    for i in range(100):
        db.submit(lambda c, i=i: c.execute("INSERT INTO tracks(fingerprint) VALUES (?)", (str(i),)))
    db.close()
    db.close()
    conn = connect(tmp_path / "c.db")
    assert conn.execute("SELECT count(*) FROM tracks").fetchall() == [(100,)]
    with pytest.raises(DatabaseError, match="closed"):
        db.submit(lambda c: None)


def test_busy_error_escaping_timeout_is_retried(tmp_path: Path) -> None:
    db = Database(tmp_path / "b.db", busy_timeout_ms=0)
    blocker = connect(tmp_path / "b.db", busy_timeout_ms=0)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.15, lambda: blocker.execute("COMMIT")).start()
    db.write(lambda c: c.execute("INSERT INTO tracks(fingerprint) VALUES ('z')"), timeout=10)
    assert db.pool_stats()["writer"]["busy_retries"] >= 1
    assert db.query("SELECT count(*) FROM tracks") == [(1,)]
    db.close()


CRASH_SCRIPT = textwrap.dedent("""
    import sys
    from playlistgen.core.storage.db import Database
    db = Database(sys.argv[1], batch_size=16)
    rows = 50
    def batch(conn, b):
        for i in range(rows):
            conn.execute("INSERT INTO tracks(fingerprint, album) VALUES (?, ?)", (f"{b}-{i}", f"batch {b}"))
    b = 0
    while True:
        futures = [db.submit(lambda c, b=b + k: batch(c, b)) for k in range(16)]
        b += 16
        futures[-1].result()
        print(b, flush=True)
""")


def test_sigkill_mid_batch_leaves_whole_batches_only(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True)
    for _ in range(20):  # let it commit a good number of batches, then kill it mid-write
        assert proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert maintenance.check_database(path) == []
    conn = connect(path)
    sizes = {n for (n,) in conn.execute("SELECT count(*) FROM tracks GROUP BY album")}
    assert sizes == {50}, f"partial batches found: {sizes}"
    assert conn.execute("SELECT count(DISTINCT album) FROM tracks").fetchall()[0][0] >= 20 * 16


def test_backup_while_writing_is_consistent(tmp_path: Path, database: Database) -> None:
    stop = threading.Event()

    def keep_writing() -> None:
        i = 0
        while not stop.is_set():
            database.write(lambda c, i=i: c.execute("INSERT INTO tracks(fingerprint) VALUES (?)", (f"k{i}",)))
            i += 1

    t = threading.Thread(target=keep_writing)
    t.start()
    time.sleep(0.3)
    maintenance.backup_database(database.path, tmp_path / "copy.db")
    stop.set()
    t.join()
    assert maintenance.check_database(tmp_path / "copy.db") == []
    assert connect(tmp_path / "copy.db").execute("SELECT count(*) FROM tracks").fetchall()[0][0] > 0


def test_stats_counts_rows(database: Database) -> None:
    database.write(lambda c: c.execute("INSERT INTO files(path, size, mtime_ns) VALUES ('/a.mp3', 1, 1)"))
    stats = maintenance.database_stats(database.path)
    rows = {t["table"]: t["rows"] for t in stats["tables"]}
    assert rows["files"] == 1 and rows["tracks"] == 0
    assert stats["files_by_status"] == {"pending": 1}

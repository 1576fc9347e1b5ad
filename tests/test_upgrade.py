"""Issue 22 point 4: a library analysed before the spread existed is upgraded without a stop —
by a running daemon (real workers, real audio) while it answers, or by `scan --upgrade` — and
only the missing part is written: every other column stays byte-identical. A file that cannot be
upgraded is reported with its reason and not retried in a loop.

The "old" database is made by the real path: `scan` with preset balanced, then the three columns
migration 0008 added are set back to NULL (what an older playlistgen left after migrating)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from playlistgen.core.analysis.factory import essentia_available
from playlistgen.core.storage.db import connect
from tests.conftest import ChildProcess, free_port, run_cli
from tests.helpers import status, wait_for

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / ".cache" / "real-audio" / "xmoto"
SONGS = ("MadeiraStew.ogg", "legolodio.ogg", "speeditup.ogg")
NEW = ("embedding_spread", "embedding_patches", "embedding_mtt", "spread_error")

pytestmark = pytest.mark.skipif(
    not (essentia_available() and (ROOT / "models" / "msd_musicnn.onnx").is_file()
         and all((REAL / s).is_file() for s in SONGS)),
    reason="needs Essentia, the MusiCNN models and .cache/real-audio")


def _env(work: Path) -> dict:
    return {"PLAYLISTGEN_DATABASE__PATH": str(work / "playlistgen.db"),
            "PLAYLISTGEN_LIBRARY__PATHS": f'["{work / "library"}"]',
            "PLAYLISTGEN_ANALYSIS__PRESET": "balanced", "PLAYLISTGEN_ANALYSIS__WORKERS": "1"}


def _rows(db: Path) -> tuple[list, list]:
    """(every features row without the new columns, every tags row), in a stable order."""
    conn = connect(db, readonly=True)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(features)") if r[1] not in NEW]
        features = conn.execute(f"SELECT {', '.join(columns)} FROM features ORDER BY id").fetchall()
        tags = conn.execute("SELECT * FROM tags ORDER BY track_id, source, label").fetchall()
    finally:
        conn.close()
    return features, tags


def _spreads(db: Path) -> dict[str, tuple]:
    conn = connect(db, readonly=True)
    try:
        rows = conn.execute("SELECT fl.path, f.embedding_spread, f.embedding_patches, f.spread_error FROM features f "
                            "JOIN files fl ON fl.track_id = f.track_id ORDER BY fl.path").fetchall()
    finally:
        conn.close()
    return {Path(path).name: rest for path, *rest in rows}


@pytest.fixture(scope="module")
def old_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A folder with a library and a database in the pre-0008 state, plus the spreads the full
    analysis computed (to compare the upgrade's with)."""
    work = tmp_path_factory.mktemp("old")
    (work / "library").mkdir()
    for song in SONGS:
        shutil.copy(REAL / song, work / "library" / song)
    proc = run_cli("scan", "--preset", "balanced", "--workers", "1", env=_env(work), cwd=work, timeout=900)
    assert proc.returncode == 0, proc.stderr
    db = work / "playlistgen.db"
    full = _spreads(db)
    assert all(spread is not None for spread, *_ in full.values())
    conn = connect(db)
    try:
        conn.execute("UPDATE features SET embedding_spread = NULL, embedding_patches = NULL, embedding_mtt = NULL")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return work, full


def _copy(old_library: tuple[Path, dict], dest: Path) -> Path:
    work, _ = old_library
    shutil.copytree(work / "library", dest / "library")
    shutil.copy(work / "playlistgen.db", dest / "playlistgen.db")
    conn = connect(dest / "playlistgen.db")   # the same library in its new place: nothing moved
    try:
        conn.execute("UPDATE files SET path = replace(path, ?, ?)", (str(work / "library"), str(dest / "library")))
    finally:
        conn.close()
    return dest


def _break(path: Path) -> None:
    """Same size and mtime (the reconcile sees an unchanged file), no longer audio."""
    stat = path.stat()
    path.write_bytes(b"\x00garbage" * (stat.st_size // 8) + b"\x00" * (stat.st_size % 8))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _same_spread(got: bytes, want: bytes) -> bool:
    a, b = (np.frombuffer(x, "<f2").astype(np.float64) for x in (got, want))
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-2, atol=1e-2 * np.abs(b).max())


def test_scan_tells_and_scan_upgrade_completes_only_the_missing_part(old_library, tmp_path: Path) -> None:
    work = _copy(old_library, tmp_path)
    before = _rows(work / "playlistgen.db")

    told = run_cli("scan", env=_env(work), cwd=work, timeout=300)
    assert told.returncode == 0, told.stderr
    assert re.search(r"upgrade: 3 track\(s\) analysed by an older version .*scan --upgrade", told.stderr), told.stderr
    assert all(v[0] is None for v in _spreads(work / "playlistgen.db").values())   # scan alone changes nothing

    proc = run_cli("scan", "--upgrade", env=_env(work), cwd=work, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "upgrade: 3 track(s) to complete" in proc.stderr and "upgraded 3, failed 0" in proc.stdout
    after = _spreads(work / "playlistgen.db")
    for song, (spread, patches, error) in after.items():
        want = old_library[1][song]
        assert error is None and patches == want[1] and _same_spread(spread, want[0]), song
    assert _rows(work / "playlistgen.db") == before   # DSP values, embedding, tags: byte-identical

    again = run_cli("scan", "--upgrade", env=_env(work), cwd=work, timeout=300)
    assert "upgrade: 0 track(s) to complete" in again.stderr, again.stderr


def test_scan_upgrade_reports_a_file_that_fails(old_library, tmp_path: Path) -> None:
    work = _copy(old_library, tmp_path)
    before = _rows(work / "playlistgen.db")
    _break(work / "library" / "legolodio.ogg")
    proc = run_cli("scan", "--upgrade", env=_env(work), cwd=work, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "upgraded 2, failed 1" in proc.stdout, proc.stdout + proc.stderr
    assert re.search(r"not upgraded: .*legolodio\.ogg: \S", proc.stderr), proc.stderr
    spreads = _spreads(work / "playlistgen.db")
    assert spreads["legolodio.ogg"][0] is None and spreads["legolodio.ogg"][2]
    assert _rows(work / "playlistgen.db") == before


def test_a_running_daemon_upgrades_in_the_background_and_keeps_answering(old_library, tmp_path: Path,
                                                                        daemon_factory) -> None:
    work = _copy(old_library, tmp_path)
    before = _rows(work / "playlistgen.db")
    _break(work / "library" / "speeditup.ogg")
    conn = connect(work / "playlistgen.db", readonly=True)
    try:
        (track_id,) = conn.execute("SELECT track_id FROM files WHERE path LIKE '%legolodio.ogg'").fetchall()[0]
    finally:
        conn.close()
    daemon = daemon_factory(env=_env(work), workdir=work)
    daemon.wait_ready(60)
    first = status(daemon)
    assert first["upgrade"]["todo"] + first["upgrade"]["upgraded"] + first["upgrade"]["failed"] == 3

    answered = []

    def upgraded() -> bool:
        response = requests.get(f"{daemon.url}/api/v1/tracks/{track_id}/similar", timeout=30)
        assert response.status_code == 200, response.text   # the old vectors keep answering
        answered.append(response.json())
        progress = status(daemon)["upgrade"]
        return progress["todo"] == 0 and progress["in_flight"] == 0

    wait_for(upgraded, 600, "the background upgrade")
    assert answered
    progress = status(daemon)["upgrade"]
    assert (progress["upgraded"], progress["failed"], progress["failed_now"]) == (2, 1, 1), progress

    # another reconcile wakes the scheduler: the failed file is not tried again
    last = status(daemon).get("last_scan")
    requests.post(daemon.url + "/api/v1/library/scan", timeout=10)
    wait_for(lambda: status(daemon).get("last_scan") != last, 120, "the requested reconcile")
    assert status(daemon)["upgrade"]["failed_now"] == 1
    daemon.stop()
    assert daemon.output().count("cannot upgrade") == 1, daemon.output()[-3000:]
    spreads = _spreads(work / "playlistgen.db")
    assert spreads["speeditup.ogg"][0] is None and spreads["speeditup.ogg"][2]
    for song in ("MadeiraStew.ogg", "legolodio.ogg"):
        assert _same_spread(spreads[song][0], old_library[1][song][0]), song
    assert _rows(work / "playlistgen.db") == before


def test_scan_upgrade_runs_on_a_dask_cluster(old_library, tmp_path: Path) -> None:
    """With ``analysis.executor: dask`` and ``dask_fallback: wait`` nothing runs in the scan
    process: the upgrade jobs (task SPREAD) reach the cluster's worker and come back through the
    checked JSON payload."""
    work = _copy(old_library, tmp_path)
    before = _rows(work / "playlistgen.db")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = [ChildProcess([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                             "--port", str(port), "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                            tmp_path / "scheduler.log")]
    try:
        started.append(ChildProcess([sys.executable, "-m", "playlistgen", "worker", "--scheduler", address,
                                     "--nworkers", "1"], tmp_path / "worker.log"))
        env = {**_env(work), "PLAYLISTGEN_ANALYSIS__EXECUTOR": "dask", "PLAYLISTGEN_ANALYSIS__DASK_SCHEDULER": address,
               "PLAYLISTGEN_ANALYSIS__DASK_FALLBACK": "wait"}
        proc = run_cli("scan", "--upgrade", env=env, cwd=work, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert "upgraded 3, failed 0" in proc.stdout, proc.stdout + proc.stderr
        assert "Starting Worker plugin playlistgen-analyzer" in started[1].output()
    finally:
        for child in reversed(started):
            child.stop(signal.SIGKILL)
    assert all(v[0] is not None for v in _spreads(work / "playlistgen.db").values())
    assert _rows(work / "playlistgen.db") == before


def test_new_files_go_before_upgrades(old_library, tmp_path: Path) -> None:
    """The daemon's own pipeline (in this process, one worker): with an older library to upgrade
    and a new file queued, the first job is the new file; the upgrades fill the worker after it."""
    from playlistgen.config import Settings
    from playlistgen.core.storage.db import Database
    from playlistgen.core.storage.jobs import ANALYZE
    from playlistgen.daemon import Daemon

    work = _copy(old_library, tmp_path)
    shutil.copy(REAL / "foxrun.ogg", work / "library" / "foxrun.ogg")
    settings = Settings()
    settings.library.paths = [str(work / "library")]
    settings.analysis.preset, settings.analysis.workers, settings.analysis.executor = "balanced", 1, "thread"
    settings.analysis.models_dir = str(ROOT / "models")
    db = Database(work / "playlistgen.db")
    daemon = Daemon(settings, db)
    try:
        daemon.library.reconcile(trigger="cli")
        assert daemon.queue.pending_count() == 1 and daemon.upgrades.counts()["todo"] == 3
        daemon.executor.start()
        assert daemon.executor.wait_for_capacity(120)
        scheduler = daemon.scheduler
        scheduler.step(poll_s=0)
        assert [job.task for job in scheduler.in_flight.values()] == [ANALYZE]
        scheduler.run_until_idle()
        assert daemon.queue.pending_count() == 0
        assert daemon.upgrades.counts() == {"todo": 0, "failed": 0, "upgraded": 3, "failed_now": 0, "in_flight": 0}
    finally:
        daemon.stop(grace_s=0)
        db.close()

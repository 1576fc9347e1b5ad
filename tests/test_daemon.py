"""End-to-end: a real `playlistgen serve` process on a temp library with generated audio.
Drop files, copy slowly, rename a folder, delete, kill -9 mid-run, SIGTERM — and check that
every file is analysed exactly once and nothing is lost."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests

from playlistgen.app import DUPLICATE_SIGNAL_S
from playlistgen.core.storage import maintenance
from playlistgen.core.storage.db import connect
from tests import audio_fixtures as af
from tests.helpers import ENV, SR, features_per_track, make_song, status, wait_for


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    lib = tmp_path / "library"
    lib.mkdir()
    return lib


def test_drop_copy_rename_delete(tmp_path: Path, library_dir: Path, daemon_factory) -> None:
    daemon = daemon_factory(env=ENV)
    startup = daemon.wait_ready()
    assert startup < 10
    # 50 files dropped at once
    staging = tmp_path / "staging"
    for i in range(50):
        make_song(staging / "Drop" / f"song {i:02d}.wav", i)
    (staging / "Drop").rename(library_dir / "Drop")
    wait_for(lambda: status(daemon)["counts"]["done"] == 50, 240, "50 files analysed")
    s = status(daemon)
    assert s["analysis"]["analysed"] == 50 and s["counts"]["failed"] == 0

    # a slow copy: written in 5 chunks 0.3 s apart; analysed once, after it stops changing
    audio = af.song(8.0, SR, 1, bpm=128, tonic=3)
    import soundfile as sf
    with sf.SoundFile(library_dir / "slow.wav", "w", SR, 1) as fh:
        for part in np.array_split(audio, 5):
            fh.write(part)
            fh.flush()
            time.sleep(0.3)
    wait_for(lambda: status(daemon)["counts"]["done"] == 51, 60, "slow copy analysed")
    time.sleep(1.5)
    assert status(daemon)["analysis"]["analysed"] == 51

    # rename the folder: the 50 files keep their analysis
    (library_dir / "Drop").rename(library_dir / "Dropped Album")
    wait_for(lambda: requests.get(daemon.url + "/health", timeout=5).ok and
             connect(tmp_path / "playlistgen.db").execute(
                 "SELECT count(*) FROM files WHERE path LIKE '%Dropped Album%' AND status = 'done'"
             ).fetchall()[0][0] == 50, 30, "folder rename followed")
    assert status(daemon)["analysis"]["analysed"] == 51

    # delete: marked missing, no longer counted
    (library_dir / "slow.wav").unlink()
    wait_for(lambda: status(daemon)["counts"]["missing"] == 1, 30, "delete noticed")
    s = status(daemon)
    assert s["counts"]["total"] == 50 and s["analysis"]["analysed"] == 51
    assert daemon.stop(signal.SIGTERM) == 0
    assert features_per_track(tmp_path / "playlistgen.db") == [1] * 51


TOTAL = 40


def test_kill_9_mid_run_then_restart_finishes_exactly_once(tmp_path: Path, library_dir: Path,
                                                           daemon_factory) -> None:
    for i in range(TOTAL):
        make_song(library_dir / f"t{i:02d}.wav", 100 + i, seconds=15.0)
    daemon = daemon_factory(env=ENV)
    daemon.wait_ready()
    wait_for(lambda: status(daemon)["counts"]["done"] >= 2, 120, "part of the run done")
    workers = psutil.Process(daemon.proc.pid).children(recursive=True)
    assert workers
    daemon.stop(signal.SIGKILL)
    # the workers notice their parent is gone and leave instead of idling with their models
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []
    db_path = tmp_path / "playlistgen.db"
    done_before = connect(db_path).execute("SELECT count(*) FROM files WHERE status = 'done'").fetchall()[0][0]
    assert 2 <= done_before < TOTAL, "the kill did not land mid-run"
    assert maintenance.check_database(db_path) == []

    again = daemon_factory(env=ENV)
    again.wait_ready()
    wait_for(lambda: status(again)["counts"]["done"] == TOTAL, 180, "restart finished the run")
    s = status(again)
    assert s["analysis"]["analysed"] == TOTAL - done_before  # nothing done before was repeated
    assert again.stop(signal.SIGTERM) == 0
    assert maintenance.check_database(db_path) == []
    assert features_per_track(db_path) == [1] * TOTAL


def test_sigterm_mid_run_exits_fast_and_loses_nothing(tmp_path: Path, library_dir: Path, daemon_factory) -> None:
    for i in range(16):
        make_song(library_dir / f"s{i:02d}.wav", 200 + i, seconds=10.0)
    daemon = daemon_factory(env=ENV)
    daemon.wait_ready()
    wait_for(lambda: status(daemon)["counts"]["done"] >= 2, 120, "analysis under way")
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    conn = connect(tmp_path / "playlistgen.db")
    counts = dict(conn.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
    assert "analysing" not in counts and counts.get("failed", 0) == 0
    assert counts.get("done", 0) + counts.get("pending", 0) == 16
    again = daemon_factory(env=ENV)
    again.wait_ready()
    wait_for(lambda: status(again)["counts"]["done"] == 16, 180, "restart finished")
    assert status(again)["analysis"]["analysed"] == counts.get("pending", 0)
    again.stop(signal.SIGTERM)


def test_periodic_reconcile_catches_what_no_watcher_saw(tmp_path: Path, library_dir: Path, daemon_factory) -> None:
    env = dict(ENV, PLAYLISTGEN_LIBRARY__WATCH="false", PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S="1")
    daemon = daemon_factory(env=env)
    daemon.wait_ready()
    assert status(daemon)["watcher"]["mode"] == "off"
    make_song(library_dir / "late.wav", 7)
    (library_dir / "broken.wav").write_bytes(b"RIFF\x00\x00")
    wait_for(lambda: status(daemon)["counts"]["done"] == 1, 60, "periodic reconcile picked the file up")
    wait_for(lambda: status(daemon)["counts"]["failed"] == 1, 30, "broken file recorded")
    failed = requests.get(daemon.url + "/api/v1/tracks/failed", timeout=5).json()
    assert failed["total"] == 1 and failed["failed"][0]["path"].endswith("broken.wav")
    assert failed["failed"][0]["reason"]
    assert daemon.stop(signal.SIGTERM) == 0


def test_polling_watcher_and_api_rescan(tmp_path: Path, library_dir: Path, daemon_factory) -> None:
    daemon = daemon_factory(env=dict(ENV, PLAYLISTGEN_LIBRARY__POLLING="true"))
    daemon.wait_ready()
    assert status(daemon)["watcher"]["mode"] == "polling"
    make_song(library_dir / "polled.wav", 8)
    wait_for(lambda: status(daemon)["counts"]["done"] == 1, 60, "polling observer saw the file")
    r = requests.post(daemon.url + "/api/v1/library/scan", timeout=5)
    assert r.status_code == 202 and r.json()["accepted"] is True
    wait_for(lambda: (status(daemon)["last_scan"] or {}).get("unchanged") == 1, 30, "API rescan ran")
    assert daemon.stop(signal.SIGTERM) == 0


def test_second_signal_exits_at_once(tmp_path: Path, library_dir: Path, daemon_factory) -> None:
    for i in range(6):
        make_song(library_dir / f"q{i}.wav", 300 + i, seconds=20.0)
    daemon = daemon_factory(env=ENV)
    daemon.wait_ready()
    wait_for(lambda: status(daemon)["in_flight"] > 0, 60, "analysis in flight")
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.send_signal(signal.SIGTERM)  # the same request twice at once is not "exit now"
    second = time.monotonic()
    wait_for(lambda: "SIGTERM received: shutting down" in daemon.log_path.read_text(), 10, "the stop request")
    # a later signal only counts as "exit now" once the duplicate window has passed: wait out the
    # rest of that window (the contract's own constant), not a guessed delay
    time.sleep(max(0.0, second + DUPLICATE_SIGNAL_S + 0.05 - time.monotonic()))
    assert daemon.proc.poll() is None, "a duplicate signal must not stop the in-flight work"
    assert "exiting immediately" not in daemon.log_path.read_text()
    started = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    daemon.proc.wait(10)
    assert time.monotonic() - started < 3
    assert daemon.proc.returncode == 1

"""The analysis executor with real worker processes: native crashes, timeouts, memory recycling,
task-count recycling, thread mode, start-up failures and graceful shutdown.

The analyzer is tests/executor_helpers.py, loaded inside the workers by import path; each test
file's content says what analysing it does (ok, fail, segv, abort, sleep N, alloc MB, exit N).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from playlistgen.core.analysis.factory import AnalyzerSpec
from playlistgen.core.execution.local import AnalysisExecutor
from playlistgen.core.execution.protocol import Outcome
from tests.executor_helpers import spec


@pytest.fixture
def make_files(tmp_path: Path):
    counter = iter(range(1, 10_000))

    def make(*contents: str) -> list[tuple[int, str]]:
        out = []
        for content in contents:
            file_id = next(counter)
            path = tmp_path / f"{file_id:03d}-{content.split()[0]}.txt"
            path.write_text(content)
            out.append((file_id, str(path)))
        return out

    return make


@pytest.fixture
def executors() -> Iterator:
    made: list[AnalysisExecutor] = []

    def make(analyzer: AnalyzerSpec | None = None, **kw) -> AnalysisExecutor:
        options = {"kind": "process", "workers": 2, "timeout_s": 20.0, "max_memory_mb": 1000,
                   "max_tasks_per_child": 100, **kw}
        ex = AnalysisExecutor(analyzer or spec(), **options)
        ex.start()
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.close(grace_s=0)


def run_all(ex: AnalysisExecutor, files: list[tuple[int, str]], limit_s: float = 30) -> dict[int, Outcome]:
    """Feed files as capacity allows (the scheduler's loop) until every one has an outcome."""
    pending, done = list(files), {}
    deadline = time.monotonic() + limit_s
    while len(done) < len(files):
        assert time.monotonic() < deadline, f"stuck: {ex.health()}"
        while pending and ex.capacity:
            ex.submit(*pending.pop(0))
        for outcome in ex.poll(0.5):
            assert outcome.file_id not in done, "a file got two outcomes"
            done[outcome.file_id] = outcome
    return done


def assert_ok(outcome: Outcome) -> None:
    assert outcome.error is None and not outcome.requeue, outcome
    assert outcome.result.metadata["command"] in ("ok", "sleep", "alloc")
    assert set(outcome.result.worker.to_dict()) == {"pid", "rss_mb", "wall_s", "cpu_s"}


def test_good_files_succeed_and_health_shows_workers(executors, make_files) -> None:
    ex = executors()
    files = make_files("ok", "ok", "ok", "ok")
    outcomes = run_all(ex, files)
    for outcome in outcomes.values():
        assert_ok(outcome)
        assert outcome.result.worker.pid != os.getpid()
        assert outcome.result.metadata["loaded_in"] == outcome.result.worker.pid   # loaded in the worker
    health = json.loads(json.dumps(ex.health()))   # served as-is by the health endpoint
    assert health["alive"] == 2 and health["in_flight"] == 0 and health["capacity"] == 2
    assert health["succeeded"] == 4 and health["restarts"]["total"] == 0
    assert sum(w["tasks_done"] for w in health["workers"]) == 4
    assert all(w["pid"] and w["age_s"] is not None for w in health["workers"])


def test_analysis_error_fails_the_file_and_the_pool_keeps_going(executors, make_files) -> None:
    ex = executors()
    files = make_files("ok", "fail", "ok", "ok")
    outcomes = run_all(ex, files)
    bad = outcomes[files[1][0]]
    assert bad.error == "cannot decode 002-fail.txt: corrupt header" and not bad.requeue and bad.result is None
    for file_id, _ in files[:1] + files[2:]:
        assert_ok(outcomes[file_id])
    health = ex.health()
    assert health["restarts"]["total"] == 0 and health["failed"] == 1
    assert health["last_error"]["path"] == files[1][1]


def test_native_crashes_fail_alone(executors, make_files) -> None:
    ex = executors()
    files = make_files("ok", "segv", "ok", "abort", "ok", "exit 3", "ok", "ok")
    outcomes = run_all(ex, files)
    assert outcomes[files[1][0]].error == "worker crashed (SIGSEGV)"
    assert outcomes[files[3][0]].error == "worker crashed (SIGABRT)"
    assert outcomes[files[5][0]].error == "worker crashed (exit code 3)"
    for index in (0, 2, 4, 6, 7):
        assert_ok(outcomes[files[index][0]])
    assert not any(o.requeue for o in outcomes.values())
    health = ex.health()
    assert health["restarts"]["crash"] == 3 and health["alive"] == 2 and health["capacity"] == 2


def test_timeout_fails_only_the_slow_file(executors, make_files) -> None:
    ex = executors(timeout_s=1.0)
    files = make_files("sleep 60", "ok", "sleep 0.2", "ok", "ok")
    started = time.monotonic()
    outcomes = run_all(ex, files)
    assert time.monotonic() - started < 10
    assert outcomes[files[0][0]].error == "timed out after 1 s" and not outcomes[files[0][0]].requeue
    for file_id, _ in files[1:]:
        assert_ok(outcomes[file_id])
    health = ex.health()
    assert health["restarts"]["timeout"] == 1 and health["alive"] == 2


def test_memory_hungry_worker_is_recycled(executors, make_files) -> None:
    ex = executors(workers=1, max_memory_mb=100)
    files = make_files("ok", "alloc 120", "ok", "ok")
    outcomes = run_all(ex, files)
    for outcome in outcomes.values():
        assert_ok(outcome)
    hungry = outcomes[files[1][0]].result.worker
    assert hungry.rss_mb > 100
    assert outcomes[files[2][0]].result.worker.pid != hungry.pid   # a fresh worker
    assert outcomes[files[0][0]].result.worker.pid == hungry.pid
    assert ex.health()["restarts"] == {"total": 1, "memory": 1}


def test_worker_far_over_the_memory_limit_is_killed_mid_file(executors, make_files) -> None:
    ex = executors(workers=1, max_memory_mb=64)
    files = make_files("alloc 300 30", "ok")
    outcomes = run_all(ex, files)
    assert outcomes[files[0][0]].error == "worker memory passed 128 MB (limit 64 MB)"
    assert_ok(outcomes[files[1][0]])
    assert ex.health()["restarts"]["memory"] == 1


def test_max_tasks_per_child_replaces_workers(executors, make_files) -> None:
    ex = executors(max_tasks_per_child=2)
    outcomes = run_all(ex, make_files(*["ok"] * 6))
    for outcome in outcomes.values():
        assert_ok(outcome)
    pids = [o.result.worker.pid for o in outcomes.values()]
    assert len(set(pids)) >= 3 and max(pids.count(p) for p in pids) <= 2
    assert ex.health()["restarts"]["max_tasks"] >= 2


def test_thread_mode(executors, make_files) -> None:
    ex = executors(kind="thread", timeout_s=0.5)
    files = make_files("ok", "fail", "sleep 1.5", "ok", "ok")
    outcomes = run_all(ex, files)
    assert outcomes[files[1][0]].error == "cannot decode 002-fail.txt: corrupt header"
    assert outcomes[files[2][0]].error == "timed out after 0.5 s"   # the thread runs on, ignored
    for index in (0, 3, 4):
        assert_ok(outcomes[files[index][0]])
        assert outcomes[files[index][0]].result.worker.pid == os.getpid()
    health = ex.health()
    assert health["kind"] == "thread" and health["alive"] == 2 and health["restarts"]["timeout"] == 1


def test_close_returns_unfinished_work_and_is_idempotent(executors, make_files) -> None:
    ex = executors()
    (quick, slow) = make_files("sleep 0.3", "sleep 60")
    ex.submit(*quick)
    ex.submit(*slow)
    assert ex.capacity == 0
    started = time.monotonic()
    assert ex.close(grace_s=1.5) == [slow]
    assert 0.2 < time.monotonic() - started < 5
    assert [o.file_id for o in ex.poll(0)] == [quick[0]]   # finished during the grace period
    assert ex.close() == [] and ex.capacity == 0 and ex.poll(0.1) == []
    assert ex.health()["state"] == "closed" and ex.health()["alive"] == 0
    with pytest.raises(RuntimeError):
        ex.submit(*quick)


def test_worker_stopped_from_outside_requeues_the_file(executors, make_files) -> None:
    ex = executors(workers=1)
    (slow, good) = make_files("sleep 60", "ok")
    ex.submit(*slow)
    deadline = time.monotonic() + 10
    while (ex.health()["workers"][0]["current"] or {}).get("running_s") is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(ex.health()["workers"][0]["pid"], signal.SIGTERM)
    (outcome,) = ex.poll(10)
    assert outcome.requeue and outcome.error == "worker was stopped from outside (SIGTERM)"
    assert_ok(run_all(ex, [good])[good[0]])


def test_worker_that_dies_while_idle_is_replaced_without_blame(executors, make_files) -> None:
    ex = executors(workers=1)
    (first, second) = make_files("ok", "ok")
    assert_ok(run_all(ex, [first])[first[0]])
    os.kill(ex.health()["workers"][0]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while ex.health()["restarts"].get("died_idle") != 1:
        assert time.monotonic() < deadline, ex.health()
        assert ex.poll(0.1) == []
    assert_ok(run_all(ex, [second])[second[0]])
    assert ex.health()["failed"] == 0 and ex.health()["fatal_error"] is None


def test_analyzer_that_cannot_start_does_not_blame_files(executors, make_files) -> None:
    ex = executors(spec("broken"))
    outcomes = run_all(ex, make_files("ok", "ok"))
    assert all(o.requeue and "model file missing" in o.error for o in outcomes.values())
    deadline = time.monotonic() + 10
    while ex.health()["fatal_error"] is None:
        assert time.monotonic() < deadline, ex.health()
        ex.poll(0.2)
    assert ex.capacity == 0 and ex.health()["state"] == "failed"
    assert "analyzer could not start: model file missing" in ex.health()["fatal_error"]


def test_worker_that_aborts_at_start_does_not_blame_files(executors, make_files) -> None:
    ex = executors(spec("abort"), workers=1)
    outcomes = run_all(ex, make_files("ok"))
    (outcome,) = outcomes.values()
    assert outcome.requeue and outcome.error == "worker died while starting (SIGABRT)"


@pytest.mark.skipif(importlib.util.find_spec("playlistgen.core.analysis.factory") is None,
                    reason="playlistgen.core.analysis.factory is not written yet")
def test_real_fast_preset_through_the_process_pool(executors, tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    sr = 44100
    t = np.arange(sr * 10) / sr
    audio = 0.3 * np.sin(2 * np.pi * 440.0 * t) * (1 + (np.floor(t * 2) % 2))   # 120 BPM pulses
    wav = tmp_path / "tone.wav"
    sf.write(wav, audio.astype(np.float32), sr)
    real = AnalyzerSpec(factory="playlistgen.core.analysis.factory:create_analyzer", backend="auto",
                        preset="fast", models_dir=str(tmp_path / "models"))
    ex = executors(real, workers=1, timeout_s=120)
    (outcome,) = run_all(ex, [(1, str(wav))], limit_s=180).values()
    assert outcome.error is None, outcome.error
    assert abs(outcome.result.duration_s - 10.0) < 0.1 and outcome.result.preset == "fast"
    assert outcome.result.bpm > 0
    assert outcome.result.worker.pid != os.getpid()


def test_what_the_outside_asks_any_executor(executors, make_files) -> None:
    """The protocol's views the resource monitor and `scan` use instead of asking the kind: worker
    processes on this machine (none for threads, which are this process), none elsewhere, and
    whether capacity is there (at once False when none can come)."""
    ex = executors()
    run_all(ex, make_files("ok", "ok"))
    procs = ex.worker_processes()
    assert sorted(slot for _, slot in procs) == [0, 1]
    assert {pid for pid, _ in procs} == {w["pid"] for w in ex.health()["workers"]} and os.getpid() not in dict(procs)
    assert ex.remote_processes() == [] and ex.wait_for_capacity(1)
    threads = executors(kind="thread")
    assert threads.worker_processes() == [] and threads.wait_for_capacity(1)
    ex.close(grace_s=0)
    started = time.monotonic()
    assert not ex.wait_for_capacity(5) and time.monotonic() - started < 1


def test_the_factory_builds_the_configured_executor() -> None:
    from playlistgen.config import Settings
    from playlistgen.core.execution.factory import build_executor

    settings = Settings()
    wake = lambda: None  # noqa: E731 - the scheduler's wake
    for kind, cls in (("process", "AnalysisExecutor"), ("thread", "AnalysisExecutor"),
                      ("dask", "DaskAnalysisExecutor")):
        settings.analysis.executor = kind
        ex = build_executor(settings, spec(), "test-version", on_capacity=wake)
        assert type(ex).__name__ == cls and ex.kind == kind and ex.on_capacity is wake
        ex.close(grace_s=0)   # never started: nothing to stop

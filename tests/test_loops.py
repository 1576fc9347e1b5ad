"""BackgroundLoop: start/stop/join, wake (also by the body), a fixed or callable interval, errors
that keep the loop alive and are reported, stop before start, double stop, restart, a foreground
run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from playlistgen.core.loops import BackgroundLoop


def until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_start_runs_the_body_on_a_named_thread_and_stop_joins_it() -> None:
    names: list[str] = []
    loop = BackgroundLoop("test-loop", lambda: names.append(threading.current_thread().name), interval_s=0.01)
    loop.start()
    until(lambda: len(names) >= 3)
    assert loop.is_alive and loop.running and not loop.stopping
    assert loop.stop(timeout=2)
    assert not loop.is_alive and not loop.running and loop.stopping
    assert set(names) == {"test-loop"}
    assert "test-loop" not in {t.name for t in threading.enumerate()}


def test_start_is_idempotent_and_a_stopped_loop_starts_again() -> None:
    body = Counter()
    loop = BackgroundLoop("idem", body, interval_s=0.01)
    loop.start()
    thread = loop._thread
    loop.start()
    assert loop._thread is thread
    assert sum(t.name == "idem" for t in threading.enumerate()) == 1
    assert loop.stop()
    calls = body.calls
    loop.start()
    until(lambda: body.calls > calls)
    assert loop.running
    assert loop.stop()


def test_interval_between_calls_and_wait_first() -> None:
    times: list[float] = []
    started = time.monotonic()
    loop = BackgroundLoop("interval", lambda: times.append(time.monotonic()), interval_s=0.1, wait_first=True)
    loop.start()
    until(lambda: len(times) >= 3)
    loop.stop()
    assert times[0] - started >= 0.09          # waited before the first call
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.09 for gap in gaps)


def test_first_call_is_immediate_without_wait_first() -> None:
    body = Counter()
    loop = BackgroundLoop("now", body, interval_s=60)
    loop.start()
    until(lambda: body.calls == 1, timeout=2)
    assert loop.stop(timeout=2)   # the 60 s wait ends on stop
    assert body.calls == 1


def test_wake_ends_the_wait_and_none_waits_for_a_wake_only() -> None:
    body = Counter()
    loop = BackgroundLoop("woken", body, interval_s=None, wait_first=True)
    loop.start()
    time.sleep(0.2)
    assert body.calls == 0
    loop.wake()
    until(lambda: body.calls == 1)
    time.sleep(0.2)
    assert body.calls == 1
    loop.wake()
    until(lambda: body.calls == 2)
    assert loop.stop()


def test_a_wake_during_a_call_is_not_lost() -> None:
    calls: list[int] = []
    loop: BackgroundLoop

    def body() -> None:
        calls.append(1)
        if len(calls) == 1:
            loop.wake()   # e.g. new work queued while this call ran

    loop = BackgroundLoop("rewake", body, interval_s=60)
    loop.start()
    until(lambda: len(calls) == 2, timeout=2)
    assert loop.stop()


def test_a_body_with_work_left_wakes_itself() -> None:
    body = Counter()
    loop: BackgroundLoop

    def busy() -> bool:   # like the analysis scheduler's step(): True while there is work
        body()
        if body.calls < 50:
            loop.wake()
        return True        # ignored

    loop = BackgroundLoop("busy", busy, interval_s=60)
    loop.start()
    until(lambda: body.calls >= 50, timeout=2)
    time.sleep(0.1)
    assert body.calls == 50   # then idle: the 60 s wait
    assert loop.stop(timeout=2)


def test_a_callable_interval_is_asked_before_every_wait() -> None:
    body = Counter()
    asked: list[float] = []

    def interval() -> float:
        asked.append(time.monotonic())
        return 0.01 if len(asked) <= 3 else 60

    loop = BackgroundLoop("callable", body, interval_s=interval, wait_first=True)
    loop.start()
    until(lambda: body.calls == 3)
    time.sleep(0.1)
    assert body.calls == 3 and len(asked) == 4   # the fourth wait is 60 s
    assert loop.stop(timeout=2)


def test_a_failing_interval_is_reported_and_retried() -> None:
    body = Counter()
    attempts: list[int] = []

    def interval() -> float:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("no schedule")
        return 0.01

    loop = BackgroundLoop("retry", body, interval_s=interval, wait_first=True)
    loop.start()
    until(lambda: body.calls >= 1, timeout=3)   # after RETRY_S
    assert loop.running and loop.errors == 1 and loop.last_error == "no schedule"
    assert loop.stop()


def test_errors_keep_the_loop_alive_and_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    body = Counter()

    def flaky() -> None:
        body()
        if body.calls <= 2:
            raise ValueError(f"bad   iteration\n{body.calls}")

    loop = BackgroundLoop("flaky", flaky, interval_s=0.01)
    with caplog.at_level(logging.ERROR, logger="playlistgen.core.loops"):
        loop.start()
        until(lambda: body.calls >= 4)
        loop.stop()
    assert loop.errors == 2 and loop.iterations >= 4
    assert loop.last_error == "bad iteration 2" and loop.last_error_at is not None
    assert sum("flaky: background iteration failed" in r.getMessage() for r in caplog.records) == 2
    assert all(r.exc_info for r in caplog.records)
    health = loop.health()
    assert health["errors"] == 2 and health["last_error"] == "bad iteration 2" and not health["running"]


def test_on_error_logs_instead_and_a_failing_handler_does_not_end_the_loop() -> None:
    seen: list[Exception] = []

    def handler(exc: Exception) -> None:
        seen.append(exc)
        raise RuntimeError("handler broke too")

    def body() -> None:
        raise KeyError("x")

    loop = BackgroundLoop("handled", body, interval_s=0.01, on_error=handler)
    loop.start()
    until(lambda: len(seen) >= 3)
    assert loop.running
    assert loop.stop()
    assert all(isinstance(e, KeyError) for e in seen) and loop.errors >= 3


def test_stop_before_start_and_double_stop() -> None:
    loop = BackgroundLoop("never", Counter(), interval_s=1)
    assert loop.stop() and loop.stop()
    assert not loop.is_alive and not loop.running and not loop.started
    loop.start()
    assert loop.started
    assert loop.stop() and loop.stop(timeout=0.1)
    assert not loop.is_alive and loop.started


def test_stop_waits_for_the_call_in_progress_and_reports_a_thread_that_does_not_end(
        caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    entered = threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(5)

    loop = BackgroundLoop("slow", slow, interval_s=1)
    loop.start()
    assert entered.wait(2)
    with caplog.at_level(logging.WARNING, logger="playlistgen.core.loops"):
        assert not loop.stop(timeout=0.05)
    assert "thread slow did not end" in caplog.text
    release.set()
    assert loop.stop(timeout=2) and not loop.is_alive


def test_sleep_in_the_body_ends_on_stop() -> None:
    slept: list[bool] = []
    loop: BackgroundLoop

    def body() -> None:
        slept.append(loop.sleep(30))

    loop = BackgroundLoop("sleeper", body, interval_s=1)
    loop.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert loop.stop(timeout=2)
    assert time.monotonic() - started < 1 and slept == [True]


def test_run_in_the_foreground_returns_after_stop() -> None:
    body = Counter()
    loop = BackgroundLoop("foreground", body, interval_s=0.01)
    stopper = threading.Timer(0.1, loop.stop)
    stopper.start()
    loop.run()   # blocks until the timer calls stop()
    stopper.join()
    assert body.calls >= 2 and not loop.is_alive

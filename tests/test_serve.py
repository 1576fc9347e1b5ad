"""A real daemon process: health, JSON errors, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
import requests

from playlistgen.app import App
from playlistgen.config import Settings
from playlistgen.errors import ConfigError


def test_health_json_errors_and_sigterm(tmp_path: Path, daemon_factory) -> None:
    (tmp_path / "library").mkdir()
    daemon = daemon_factory()
    daemon.wait_ready()
    r = requests.get(daemon.url + "/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] is True and body["components"]["database"]["ready"] is True
    assert 0 < float(r.headers["X-Process-Time"]) <= r.elapsed.total_seconds()
    missing = requests.get(daemon.url + "/api/v1/nothing-here", timeout=5)
    assert missing.status_code == 404
    assert 0 < float(missing.headers["X-Process-Time"]) <= missing.elapsed.total_seconds()  # errors too
    assert set(missing.json()["error"]) >= {"code", "message", "hint"}
    assert requests.get(daemon.url + "/health", timeout=5).headers["Server"] == "playlistgen"
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert "stopped cleanly" in daemon.log_path.read_text()


def test_sigint_exits_zero(tmp_path: Path, daemon_factory) -> None:
    (tmp_path / "library").mkdir()
    daemon = daemon_factory()
    daemon.wait_ready()
    assert daemon.stop(signal.SIGINT) == 0


def test_port_in_use_is_one_clear_line(tmp_path: Path, daemon_factory) -> None:
    (tmp_path / "library").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        daemon = daemon_factory("--port", str(port))  # the later --port wins
        daemon.proc.wait(20)
    log = daemon.log_path.read_text()
    assert daemon.proc.returncode != 0 and "Traceback" not in log
    assert f"cannot listen on 127.0.0.1:{port}" in log


def _serve_settings(tmp_path: Path, **sections: dict) -> Settings:
    settings = Settings()
    (tmp_path / "library").mkdir(exist_ok=True)
    settings.library.paths = [str(tmp_path / "library")]
    settings.database.path = str(tmp_path / "app.db")
    settings.analysis.preset = "fast"
    settings.api.port = 0
    for section, values in sections.items():
        for key, value in values.items():
            setattr(getattr(settings, section), key, value)
    return settings


def test_serve_parts_in_start_order_and_stopped_in_reverse(tmp_path: Path) -> None:
    """The order `serve` starts its parts in (the reverse is how they stop): the tag writer around
    the daemon, the HTTP server last. Built only: nothing is started here."""
    settings = _serve_settings(tmp_path, library={"write_tags": True}, mpd={"enabled": True},
                               logging={"tracemalloc": True})
    app = App.for_serve(settings)
    try:
        assert [p["name"] for p in app.status()] == [
            "lock", "database", "tagwriter", "daemon", "cache", "similarity", "playlists", "mixes", "mpd", "memtrace",
            "http"]
        assert {p["state"] for p in app.status()} == {"built"}
        assert app.services.mpd is not None and app.services.tagwriter is not None and app.http.port > 0
    finally:
        app.stop()
    assert {p["state"] for p in app.status()} == {"stopped"}
    plain = App.for_serve(_serve_settings(tmp_path))   # the lock was released: a second one may start
    assert [p["name"] for p in plain.status()] == ["lock", "database", "daemon", "cache", "similarity", "playlists",
                                                     "mixes", "http"]
    plain.stop()


def test_a_part_that_cannot_be_built_stops_those_built_before_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = _serve_settings(tmp_path, api={"port": taken.getsockname()[1]})
        with pytest.raises(ConfigError, match="cannot listen on"):
            App.for_serve(settings)
    again = App.for_serve(_serve_settings(tmp_path))   # database closed and lock released
    again.stop()


def test_stop_runs_in_reverse_and_goes_on_past_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    app = App(Settings())
    calls: list[str] = []

    def stuck() -> None:
        calls.append("stop b")
        raise RuntimeError("stuck")

    app.add("a", lambda: calls.append("start a"), lambda: calls.append("stop a"))
    app.add("b", lambda: calls.append("start b"), stuck)
    app.add("c", stop=lambda: calls.append("stop c"))
    app.start()
    app.stop()
    app.stop()   # a second call does nothing
    assert calls == ["start a", "start b", "stop c", "stop b", "stop a"]
    assert [(p["name"], p["state"], p["error"]) for p in app.status()] == [
        ("a", "stopped", None), ("b", "failed", "stuck"), ("c", "stopped", None)]
    assert "stopping b failed" in caplog.text

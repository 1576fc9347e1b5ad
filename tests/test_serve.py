"""A real daemon process: health, JSON errors, clean shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import requests


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

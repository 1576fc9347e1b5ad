"""Issue 10, defects 1, 2, 6 and 9 (API part): cross-site requests and DNS rebinding, the upload
size limit, slow/idle clients, a bad --host, full and read-only disks. Against a real daemon
process (real waitress on loopback) where the defect is about the server, else the real Flask app."""

from __future__ import annotations

import io
import os
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import requests

from playlistgen.api.security import HostPolicy
from playlistgen.api.server import CONNECTION_LIMIT, raise_open_file_limit
from playlistgen.app import App
from playlistgen.config import Settings
from playlistgen.core.storage.db import Database
from tests.conftest import Daemon, run_cli

MB = 1024 * 1024


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    root = tmp_path_factory.mktemp("secure")
    (root / "library").mkdir()
    d = Daemon(root, "--library", str(root / "library"), env={"PLAYLISTGEN_API__MAX_UPLOAD_MB": "1"})
    d.wait_ready(60)
    d.library = root / "library"  # type: ignore[attr-defined]
    yield d
    d.stop()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _upload(daemon: Daemon, name: str, headers: dict | None = None) -> requests.Response:
    return requests.post(daemon.url + "/api/v1/library/upload", files={"file": (name, b"OggS" + b"\0" * 4000)},
                         headers=headers or {}, timeout=10)


# --- defect 1: DNS rebinding and cross-site requests --------------------------------------------

def test_a_host_name_the_server_does_not_answer_to_is_refused(daemon: Daemon) -> None:
    r = requests.get(daemon.url + "/health", headers={"Host": f"evil.example:{daemon.port}"}, timeout=5)
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "forbidden_host" and "api.allowed_hosts" in error["hint"]
    for host in (f"127.0.0.1:{daemon.port}", f"localhost:{daemon.port}", f"[::1]:{daemon.port}", "LOCALHOST"):
        assert requests.get(daemon.url + "/health", headers={"Host": host}, timeout=5).status_code == 200, host
    # the rebinding attack of the issue: a page of evil.example re-pointed at 127.0.0.1 uploads a file
    attack = _upload(daemon, "a.ogg", {"Origin": f"http://evil.example:{daemon.port}",
                                       "Host": f"evil.example:{daemon.port}"})
    assert attack.status_code == 403 and _files(daemon.library) == []  # type: ignore[attr-defined]


def test_state_changing_requests_from_other_sites_are_refused(daemon: Daemon) -> None:
    library: Path = daemon.library  # type: ignore[attr-defined]
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Referer": "http://evil.example/page.html"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": f"http://127.0.0.1:{daemon.port + 1}"}):
        r = _upload(daemon, "x.ogg", headers)
        assert r.status_code == 403, headers
        error = r.json()["error"]
        assert error["code"] == "cross_site_request" and "api.allowed_hosts" in error["hint"], headers
        scan = requests.post(daemon.url + "/api/v1/library/scan", headers=headers, timeout=5)
        assert scan.status_code == 403, headers
    assert _files(library) == []
    # reads stay open to other origins' tools; the server's own page and non-browser clients may write
    assert requests.get(daemon.url + "/api/v1/library/status", headers={"Origin": "http://evil.example"},
                        timeout=5).status_code == 200
    assert _upload(daemon, "own.ogg", {"Origin": daemon.url, "Referer": daemon.url + "/dashboard"}).status_code == 201
    assert _upload(daemon, "curl.ogg").status_code == 201
    assert _files(library) == ["curl.ogg", "own.ogg"]
    for name in _files(library):
        (library / name).unlink()


def _app(tmp_path: Path, **api: object) -> tuple:
    """The test client and its App (``app.stop()`` closes the database)."""
    settings = Settings()
    (tmp_path / "library").mkdir(exist_ok=True)
    settings.library.paths = [str(tmp_path / "library")]
    for key, value in api.items():
        setattr(settings.api, key, value)
    app = App.for_api(settings, Database(tmp_path / "test.db", pool_min=1, pool_max=2))
    return app.api.test_client(), app


def test_allowed_hosts_admit_a_reverse_proxy_name(tmp_path: Path) -> None:
    client, app = _app(tmp_path, allowed_hosts=["music.example.com", ".home.arpa"])
    try:
        assert client.get("/health", headers={"Host": "music.example.com"}).status_code == 200
        assert client.get("/health", headers={"Host": "nas.home.arpa:8443"}).status_code == 200
        assert client.get("/health", headers={"Host": "example.com"}).status_code == 403
        # the proxy rewrites Host to the bound address but the browser's Origin is the public name
        r = client.post("/api/v1/library/scan", headers={"Host": "127.0.0.1:8500",
                                                         "Origin": "https://music.example.com"})
        assert r.status_code != 403
        assert client.post("/api/v1/library/scan", headers={"Origin": "https://evil.example"}).status_code == 403
    finally:
        app.stop()


def test_host_policy_of_a_server_on_every_interface() -> None:
    policy = HostPolicy("0.0.0.0", ["music.example.com"], machine_name="Box")
    for name in ("192.168.1.20", "10.0.0.1", "::1", "fe80::1", "box", "box.local", "localhost",
                 "music.example.com"):
        assert policy.host_allowed(name), name
    for name in ("evil.example", "192.168.1.20.nip.io", "box.evil.example"):
        assert not policy.host_allowed(name), name
    loopback = HostPolicy("127.0.0.1", [])
    assert not loopback.host_allowed("192.168.1.20") and loopback.host_allowed("127.0.0.1")


def test_security_headers_and_the_dashboard_policy(tmp_path: Path) -> None:
    client, app = _app(tmp_path)
    try:
        page = client.get("/dashboard")
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp
        for r in (page, client.get("/api/v1/library/status"), client.get("/nothing")):
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["X-Frame-Options"] == "DENY"
        assert client.get("/api/v1/library/status").headers["Content-Security-Policy"].startswith("default-src 'none'")
    finally:
        app.stop()


# --- defect 2: the upload limit before the body is read ---------------------------------------

def _stream(daemon: Daemon, head: bytes, chunk: bytes, budget: int) -> tuple[bytes, int]:
    """Send ``head`` then ``chunk`` repeatedly (up to ``budget`` bytes) while watching for an
    answer; returns (the answer so far, body bytes sent)."""
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(head)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            readable, _, _ = select.select([s], [], [], 0 if sent < budget else 1)
            if readable:
                data = s.recv(65536)
                answer += data
                if not data or b"\r\n\r\n" in answer:
                    break
                continue
            if sent >= budget:
                continue
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                with suppress(OSError):
                    answer += s.recv(65536)
                break
            sent += len(chunk)
    return answer, sent


def test_a_declared_oversize_upload_gets_413_before_the_body(daemon: Daemon) -> None:
    head = (f"POST /api/v1/library/upload HTTP/1.1\r\nHost: 127.0.0.1:{daemon.port}\r\n"
            f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {200 * MB}\r\n\r\n").encode()
    answer, sent = _stream(daemon, head, b"\0" * 65536, 64 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * MB, f"{sent} bytes sent before the answer"
    assert not list(daemon.library.iterdir())  # type: ignore[attr-defined]


def test_a_chunked_upload_is_cut_off_at_the_limit(daemon: Daemon) -> None:
    head = (f"POST /api/v1/library/upload HTTP/1.1\r\nHost: 127.0.0.1:{daemon.port}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    payload = b"\0" * 65536
    answer, sent = _stream(daemon, head, b"%x\r\n" % len(payload) + payload + b"\r\n", 64 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 24 * MB, f"{sent} bytes sent before the answer (limit 1 MB)"
    assert not list(daemon.library.iterdir())  # type: ignore[attr-defined]


# --- defect 6: idle connections -------------------------------------------------------------------

def test_health_answers_however_many_idle_connections_are_open(daemon: Daemon) -> None:
    """waitress's default limit is 100 connections: the 101st waited until an idle one timed out
    (120 s). Now 300 idle sockets are simply held, and past the limit (1000) the quietest idle
    ones are closed to make room."""
    raise_open_file_limit(CONNECTION_LIMIT + 400)
    idle: list[socket.socket] = []
    try:
        for count in (300, CONNECTION_LIMIT + 100):
            while len(idle) < count:
                s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
                if len(idle) % 2:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127")  # a slowloris header that never ends
                idle.append(s)
            r = requests.get(daemon.url + "/health", timeout=30)
            assert r.status_code == 200, count
    finally:
        for s in idle:
            s.close()
    assert "quietest idle ones" in daemon.log_path.read_text()


# --- defect 9 (API part) --------------------------------------------------------------------------

def test_an_invalid_host_is_one_line_and_opens_nothing(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    r = run_cli("serve", "--library", "library", "--db", "x.db", "--host", "127.999.0.1", "--port", "8599",
                cwd=tmp_path, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "127.999.0.1" in lines[0] and "--host" in lines[0], r.stderr
    assert not (tmp_path / "x.db").exists()


@contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[None]:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _post(client, data: bytes):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/library/upload", data={"file": (io.BytesIO(data), "song.ogg")},
                       content_type="multipart/form-data")


def test_upload_to_a_full_disk_is_507_without_paths(tmp_path: Path) -> None:
    client, app = _app(tmp_path, max_upload_mb=4)
    music = tmp_path / "library" / "full"
    with _tmpfs(music, "size=256k"):
        app.services.settings.library.paths = [str(music)]
        try:
            r = _post(client, os.urandom(MB))
            assert r.status_code == 507, r.get_data(as_text=True)
            error = r.get_json()["error"]
            assert error["code"] == "insufficient_storage" and str(tmp_path) not in str(error)
            assert list(music.iterdir()) == []  # the partial file is gone
            assert _post(client, b"OggS" + b"\0" * 1000).status_code == 201  # space for a small one
        finally:
            app.stop()


def test_upload_to_a_folder_the_daemon_cannot_write_is_403_without_paths(tmp_path: Path) -> None:
    client, app = _app(tmp_path)
    music = tmp_path / "library" / "locked"
    try:
        if os.geteuid() == 0:  # root ignores permissions: a read-only filesystem says no instead
            with _tmpfs(music, "size=64k,ro"):
                app.services.settings.library.paths = [str(music)]
                r = _post(client, b"OggS" + b"\0" * 1000)
        else:
            music.mkdir()
            music.chmod(0o555)
            app.services.settings.library.paths = [str(music)]
            r = _post(client, b"OggS" + b"\0" * 1000)
            music.chmod(0o755)
        assert r.status_code == 403, r.get_data(as_text=True)
        error = r.get_json()["error"]
        assert error["code"] == "not_writable" and str(tmp_path) not in str(error) and "library.paths" in error["hint"]
    finally:
        app.stop()

"""The /rest proxy against what a real Subsonic server cannot be made to do (issue 20, points 4–13):
a hostile stand-in upstream on 127.0.0.1 (tests/hostile_upstream.py) with huge, slow or
cookie-setting answers and hostile headers, in front of the real app served by waitress."""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from playlistgen.api import server as http_server
from playlistgen.api.subsonic import upstream as upstream_module
from playlistgen.config import Settings
from playlistgen.core.integrations.mediaserver.transport import SubsonicTransport
from playlistgen.logs import configure_logging

from .hostile_upstream import HostileUpstream

AUTH = {"u": "a", "p": "pw", "v": "1.16.1", "c": "tests"}
STREAMS = 20
MB = 1024 * 1024


def wait_for(condition: Callable[[], object], timeout: float = 30.0, step: float = 0.05) -> bool:
    """True as soon as ``condition()`` is true; False after ``timeout`` seconds (bounded)."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while time.monotonic() < deadline:
        if condition():
            return True
        event.wait(step)
    return bool(condition())


@pytest.fixture
def standin() -> Iterator[HostileUpstream]:
    server = HostileUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def serve(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``serve(upstream_url, **api)`` → (base URL, App): the real app with mediaserver.proxy, served by waitress."""

    def start(url: str, **api: object) -> tuple[str, object]:
        settings = Settings()
        settings.api.port = 0
        settings.mediaserver.url = url
        settings.mediaserver.user = "a"
        settings.mediaserver.password = "pw"
        settings.mediaserver.proxy = True
        settings.playlists.output_dir = str(tmp_path / "playlists")
        for key, value in api.items():
            setattr(settings.api, key, value)
        app = make_app(settings, http=True)
        app.start()
        return f"http://127.0.0.1:{app.http.port}", app

    return start


def raw_request(port: int, target: str, *, rcvbuf: int = 4096, headers: str = "") -> socket.socket:
    """A client that sends one GET and never reads (a paused phone)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # small window: it stalls at once
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
    return sock


def health_latency(url: str) -> float:
    started = time.perf_counter()
    answer = requests.get(f"{url}/health", timeout=15)
    assert answer.status_code == 200
    return time.perf_counter() - started


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def stream_target(**extra: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in {**AUTH, "id": "1", **extra}.items())
    return f"/rest/stream.view?{query}"


# --- 4: streams cannot starve the API ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["stalled", "slow"])
def test_twenty_stalled_or_slow_streams_leave_the_api_responsive(standin: HostileUpstream, serve, kind: str) -> None:
    url, app = serve(standin.url)
    # stalled: 64 MiB answered at once, never read; slow: the server sends 64 KiB every 0.25 s
    target = stream_target(size=64 * MB) if kind == "stalled" else stream_target(size=64 * MB, pace=0.25, max_s=60)
    clients = [raw_request(port_of(url), target) for _ in range(STREAMS)]
    try:
        wait_for(lambda: len(standin.calls("stream")) >= STREAMS, timeout=30)
        latency = health_latency(url)            # bench/proxy_stall.py prints the precise figure
        assert latency < 10, f"/health took {latency:.1f} s with {STREAMS} {kind} streams open"
        assert len(standin.calls("stream")) == STREAMS  # every stream was served, none refused
        ping = requests.get(f"{url}/rest/ping.view", params={**AUTH, "f": "json"}, timeout=15)
        assert ping.json()["subsonic-response"]["status"] == "ok"   # and the proxy still answers
    finally:
        for client in clients:
            client.close()
    assert wait_for(lambda: app.services.upstream.streams_open() == 0, timeout=60)


def test_streams_past_the_limit_are_refused_at_once(standin: HostileUpstream, serve,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_module, "MAX_STREAMS", 2)
    url, app = serve(standin.url)
    clients = [raw_request(port_of(url), stream_target(size=64 * MB)) for _ in range(2)]
    try:
        assert wait_for(lambda: app.services.upstream.streams_open() == 2)
        started = time.perf_counter()
        third = requests.get(f"{url}{stream_target(size=1000, f='json')}", timeout=15)
        assert third.status_code == 503 and time.perf_counter() - started < 10
        assert third.headers["Retry-After"]
        assert "try again" in third.json()["subsonic-response"]["error"]["message"]
        assert health_latency(url) < 10
    finally:
        for client in clients:
            client.close()
    assert wait_for(lambda: app.services.upstream.streams_open() == 0, timeout=60)
    after = requests.get(f"{url}{stream_target(size=1000)}", timeout=15)
    assert after.status_code == 200 and len(after.content) == 1000


def test_a_client_that_stops_reading_is_cut_off_after_the_send_timeout(standin: HostileUpstream, serve,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "SEND_TIMEOUT_S", 2)
    url, app = serve(standin.url)
    client = raw_request(port_of(url), stream_target(size=64 * MB))
    try:
        assert wait_for(lambda: app.services.upstream.streams_open() == 1)
        # nothing read for SEND_TIMEOUT_S: the connection is closed and the stream's slot is free
        assert wait_for(lambda: app.services.upstream.streams_open() == 0, timeout=60)
        assert wait_for(lambda: any(not s.finished for s in standin.sent), timeout=30)
        client.settimeout(30)
        received = 0
        try:
            while chunk := client.recv(1 << 20):
                received += len(chunk)
        except OSError:   # reset: the server gave up on us
            pass
        assert received < 64 * MB
    finally:
        client.close()


# --- 5: /rest bodies are small and never read into memory whole -------------------------------------

def test_a_large_rest_body_is_refused_before_it_is_read(standin: HostileUpstream, serve) -> None:
    url, _app = serve(standin.url)
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as sock:
        sock.sendall(b"POST /rest/ping.view HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400000000\r\n\r\n")
        head = sock.recv(4096)   # no body sent: the refusal must come from the headers alone
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    # chunked: cut off once past the limit
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=10) as sock:
        sock.sendall(b"POST /rest/ping.view HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n%s\r\n" % (64 * 1024, b"a" * 64 * 1024)
        try:
            for _ in range(64):   # 4 MiB at most
                sock.sendall(piece)
        except OSError:
            pass
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert not standin.calls("ping")   # nothing reached the server
    # a form of normal size is forwarded as sent
    form = {**AUTH, "f": "json", "name": "x" * 200_000}
    answer = requests.post(f"{url}/rest/createPlaylist.view", data=form, timeout=15)
    assert answer.status_code == 200
    assert standin.calls("createPlaylist")[-1].query["name"] == form["name"]
    # a form we read ourselves first (scrobble; getSimilarSongs2 of an id we cannot place) reaches the server whole
    for method in ("scrobble", "getSimilarSongs2"):
        sent = {**AUTH, "f": "json", "id": "not-linked-" + method}
        answer = requests.post(f"{url}/rest/{method}.view", data=sent, timeout=15)
        assert answer.status_code == 200, answer.text[:200]
        seen = standin.calls(method)[-1]
        assert seen.method == "POST" and seen.query == sent and int(seen.headers["content-length"]) == len(seen.body)


# --- 6: no cookie travels from one client to another -----------------------------------------------

def test_a_cookie_set_for_one_client_never_reaches_another(standin: HostileUpstream, serve) -> None:
    url, _app = serve(standin.url)
    first = requests.get(f"{url}/rest/getLicense.view", params={**AUTH, "f": "json"}, timeout=15)
    assert first.status_code == 200 and standin.calls("getLicense")
    requests.get(f"{url}/rest/getLicense.view", params={**AUTH, "u": "b", "f": "json"}, timeout=15)
    assert "cookie" not in standin.calls("getLicense")[-1].headers
    assert "set-cookie" not in {k.lower() for k in first.headers}   # never forwarded back: it could not return


# --- 7: credentials never reach the logs -------------------------------------------------------------

def test_credentials_never_reach_the_logs(standin: HostileUpstream, serve) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("urllib3").level)
    buffer = io.StringIO()
    try:
        configure_logging("DEBUG", "text")
        root.handlers[0].setStream(buffer)
        url, _app = serve(standin.url, slow_request_ms=1)   # every request is "slow"
        logging.getLogger("playlistgen.api").setLevel(logging.DEBUG)
        secrets = {"p": "enc:736563726574", "t": "d41d8cd98f00b204e9800998ecf8427e", "s": "s4ltvalue",
                   "apiKey": "k3y-value-123"}
        for name, value in secrets.items():
            params = {"u": "secretuser", name: value, "v": "1.16.1", "c": "tests", "f": "json"}
            requests.get(f"{url}/rest/getArtists.view", params=params, timeout=15)
            requests.get(f"{url}/rest/getSonicSimilarTracks.view", params={**params, "id": "9"}, timeout=15)
        app_log = logging.getLogger("playlistgen.api")
        app_log.warning("slow request GET /rest/x?u=secretuser&p=enc:736563726574&t=%s", secrets["t"])
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        logging.getLogger("urllib3").setLevel(saved[2])
    text = buffer.getvalue()
    assert "slow request GET /rest/getArtists.view" in text and "GET /rest/x?" in text   # the lines are there ...
    for value in (*secrets.values(), "736563726574", "secretuser"):
        assert value not in text, f"{value} logged"   # ... without the credentials


# --- 9: headers ----------------------------------------------------------------------------------------

def test_hop_by_hop_identity_and_security_headers(standin: HostileUpstream, serve) -> None:
    url, _app = serve(standin.url, key="the-api-key")
    sent = {"Authorization": "Bearer the-api-key", "X-API-Key": "the-api-key", "Connection": "X-Client-Hop",
            "X-Client-Hop": "1", "Remote-User": "admin", "X-Real-IP": "6.6.6.6", "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-User": "admin", "Forwarded": "for=6.6.6.6", "Cookie": "a=b", "Range": "bytes=0-9",
            "If-None-Match": '"etag"', "User-Agent": "tests/1.0"}
    answer = requests.get(f"{url}/rest/getUser.view", params={**AUTH, "f": "json"}, headers=sent, timeout=15)
    assert answer.status_code == 200
    seen = standin.calls("getUser")[-1].headers
    for name in ("authorization", "x-api-key", "x-client-hop", "remote-user", "x-real-ip", "x-forwarded-for",
                 "x-forwarded-user", "forwarded", "cookie"):
        assert name not in seen, f"{name} forwarded"
    assert "the-api-key" not in repr(seen)
    assert seen["range"] == "bytes=0-9" and seen["if-none-match"] == '"etag"' and seen["user-agent"] == "tests/1.0"
    got = {k.lower(): v for k, v in answer.headers.items()}
    assert "x-upstream-hop" not in got and "keep-alive" not in got   # named in the server's Connection
    assert got["x-frame-options"] == "DENY" and got["x-content-type-options"] == "nosniff"
    assert got["content-security-policy"].startswith("default-src 'none'")
    assert got["referrer-policy"] == "same-origin"
    assert got["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in got


# --- 10, 11: the credential check ---------------------------------------------------------------------

def test_token_and_salt_are_never_cached_and_passwords_only_briefly(standin: HostileUpstream, serve) -> None:
    url, _app = serve(standin.url)
    token = {"u": "a", "t": "0123456789abcdef0123456789abcdef", "s": "salt1", "v": "1.16.1", "c": "tests", "f": "json"}
    for _ in range(2):
        answer = requests.get(f"{url}/rest/getSonicSimilarTracks.view", params={**token, "id": "9"}, timeout=15)
        assert answer.json()["subsonic-response"]["error"]["code"] == 70   # checked, then not found
    assert len(standin.calls("ping")) == 2   # a replayed token+salt is asked about again
    for _ in range(2):
        requests.get(f"{url}/rest/getSonicSimilarTracks.view", params={**AUTH, "f": "json", "id": "9"}, timeout=15)
    assert len(standin.calls("ping")) == 3   # a password: one check per auth_ttl_s


def test_a_cached_password_is_asked_about_again_after_the_ttl(standin: HostileUpstream) -> None:
    from playlistgen.api.subsonic.upstream import Upstream

    upstream = Upstream(SubsonicTransport(standin.url), auth_ttl_s=0.5)
    assert upstream.check(AUTH).ok
    assert upstream.check(AUTH).ok and len(standin.calls("ping")) == 1
    assert wait_for(lambda: upstream.check(AUTH).ok and len(standin.calls("ping")) == 2, timeout=30)
    assert Upstream(SubsonicTransport(standin.url)).auth_ttl_s <= 60   # the documented trade-off


def test_jsonp_clients_pass_the_credential_check(standin: HostileUpstream, serve) -> None:
    url, _app = serve(standin.url)
    answer = requests.get(f"{url}/rest/getSonicSimilarTracks.view",
                          params={**AUTH, "f": "jsonp", "callback": "cb", "id": "9"}, timeout=15)
    assert answer.text.startswith("cb(") and '"code": 70' in answer.text, answer.text[:300]
    assert standin.calls("ping")[-1].query["f"] == "json"
    refused = requests.get(f"{url}/rest/getSonicSimilarTracks.view",
                           params={**AUTH, "p": "wrong", "f": "jsonp", "callback": "cb", "id": "9"}, timeout=15)
    assert refused.text.startswith("cb(") and '"code": 40' in refused.text


# --- 12: buffered answers are bounded -----------------------------------------------------------------

@pytest.mark.parametrize("method", ["getSonicSimilarTracks", "scrobble", "getOpenSubsonicExtensions"])
def test_huge_answers_on_buffered_paths_are_not_read_whole(standin: HostileUpstream, serve, method: str) -> None:
    url, _app = serve(standin.url)
    standin.huge_bytes = 200 * MB
    answer = requests.get(f"{url}/rest/{method}.view", params={**AUTH, "f": "json", "id": "9"}, timeout=60)
    body = answer.json()["subsonic-response"]
    if method == "getOpenSubsonicExtensions":
        assert {"name": "sonicSimilarity", "versions": [1]} in body["openSubsonicExtensions"]
    else:
        assert answer.status_code == 502 and "too large" in body["error"]["message"]
    assert wait_for(lambda: standin.sent, timeout=60)
    assert standin.sent[0].bytes < 64 * MB and not standin.sent[0].finished   # the proxy stopped reading
    standin.huge_bytes = 0
    ok = requests.get(f"{url}/rest/scrobble.view", params={**AUTH, "f": "json", "id": "9"}, timeout=15)
    assert ok.json()["subsonic-response"]["status"] == "ok"   # the pooled connection was not reused half-read


# --- 13: no internal address in errors -----------------------------------------------------------------

def test_an_unreachable_server_is_named_without_its_address(serve) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]   # nothing listens there once closed
    url, _app = serve(f"http://127.0.0.1:{port}")
    for method in ("ping", "getSonicSimilarTracks", "scrobble", "stream"):
        answer = requests.get(f"{url}/rest/{method}.view", params={**AUTH, "f": "json", "id": "9"}, timeout=30)
        assert answer.status_code == 502
        message = answer.json()["subsonic-response"]["error"]["message"]
        assert "media server unreachable" in message and str(port) not in message and "127.0.0.1" not in message

"""A stand-in Subsonic server on 127.0.0.1 for what a real one (supysonic) cannot be made to do:
huge or slow answers, ``Set-Cookie``, hostile headers. It records what it received and how many
body bytes it managed to send, so tests can see what the proxy read and forwarded.

* ``ping`` / ``getOpenSubsonicExtensions`` / ``scrobble`` / ``reportPlayback``: ``status ok`` in
  the asked format (``f`` json, jsonp with ``callback``, else XML); the password ``wrong`` gets
  error 40. The extensions listed are ``extensions`` (attribute; default ``theirs``).
  ``huge_bytes`` (attribute) makes these answers that many bytes long instead.
* ``stream``: ``size`` bytes (query, default 64 MiB); with ``pace`` (seconds) one 64 KiB chunk per
  pace, never for longer than ``max_s`` (default 60) — every handler ends by itself.
* ``getLicense``: sets a cookie for user ``a`` (``Set-Cookie: sid=for-a``).
* anything else: ``status ok`` with the hostile headers of :attr:`HOSTILE_HEADERS` and
  ``Connection: X-Upstream-Hop`` naming one more hop-by-hop header.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CHUNK = 64 * 1024
HOSTILE_HEADERS = {"X-Frame-Options": "ALLOWALL", "Content-Security-Policy": "default-src *",
                   "X-Content-Type-Options": "sniff-away", "Referrer-Policy": "unsafe-url",
                   "Access-Control-Allow-Origin": "https://evil.example",
                   "Access-Control-Allow-Credentials": "true", "X-Upstream-Hop": "secret-hop-value",
                   "Keep-Alive": "timeout=5"}


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


@dataclass
class Sent:
    path: str
    bytes: int
    finished: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:  # noqa: N802
        self._answer(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length) if length else b"")

    def _answer(self, body: bytes) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if body and "urlencoded" in (self.headers.get("Content-Type") or ""):
            query.update({k: v[-1] for k, v in parse_qs(body.decode("latin-1")).items()})
        method = parts.path.rsplit("/", 1)[-1].removesuffix(".view")
        owner.record(Seen(self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body))
        if method == "stream":
            self._stream(int(query.get("size") or 64 * 1024 * 1024), float(query.get("pace") or 0),
                         float(query.get("max_s") or 60))
        elif method in ("ping", "getOpenSubsonicExtensions", "scrobble") and owner.huge_bytes:
            self._send_bytes(parts.path, owner.huge_bytes, "application/json")
        elif method == "getLicense":
            cookie = {"Set-Cookie": "sid=for-a; Path=/"} if query.get("u") == "a" else {}
            self._subsonic(query, {"license": {"valid": True}}, cookie)
        elif method in ("ping", "getOpenSubsonicExtensions", "scrobble", "reportPlayback"):
            extra = {"openSubsonicExtensions": [{"name": name, "versions": [1]} for name in owner.extensions]} \
                if method == "getOpenSubsonicExtensions" else {}
            self._subsonic(query, extra, {})
        else:
            self._subsonic(query, {}, {**HOSTILE_HEADERS, "Connection": "X-Upstream-Hop"})

    def _subsonic(self, query: dict, content: dict, headers: dict) -> None:
        if query.get("p") == "wrong":
            body: dict = {"status": "failed", "version": "1.16.1",
                          "error": {"code": 40, "message": "Wrong username or password"}}
        else:
            body = {"status": "ok", "version": "1.16.1", "type": "standin", **content}
        fmt = query.get("f") or "xml"
        if fmt == "jsonp" and query.get("callback"):
            data, ctype = f"{query['callback']}({json.dumps({'subsonic-response': body})});".encode(), \
                "text/javascript"
        elif fmt in ("json", "jsonp"):
            data, ctype = json.dumps({"subsonic-response": body}).encode(), "application/json"
        else:
            error = body.get("error")
            inner = f'<error code="{error["code"]}" message="{error["message"]}"/>' if error else ""
            data = (f'<?xml version="1.0" encoding="UTF-8"?><subsonic-response xmlns="http://subsonic.org/restapi" '
                    f'status="{body["status"]}" version="1.16.1">{inner}</subsonic-response>').encode()
            ctype = "text/xml; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_bytes(self, path: str, size: int, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self._body(path, size, 0.0, 60.0)

    def _stream(self, size: int, pace: float, max_s: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/flac")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self._body(self.path, size, pace, max_s)

    def _body(self, path: str, size: int, pace: float, max_s: float) -> None:
        block = b"\x00" * CHUNK
        sent, deadline = 0, time.monotonic() + max_s
        stop = self.server.owner.stopping
        try:
            while sent < size and time.monotonic() < deadline and not stop.is_set():
                n = min(CHUNK, size - sent)
                self.wfile.write(block[:n])
                sent += n
                if pace:
                    stop.wait(pace)
        except OSError:   # the proxy went away: what it read is what it got
            self.close_connection = True
        finished = sent == size
        if not finished:
            self.close_connection = True
        self.server.owner.sent_record(Sent(path, sent, finished))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128   # many proxied streams connect at once
    owner: HostileUpstream


@dataclass
class HostileUpstream:
    huge_bytes: int = 0
    extensions: list[str] = field(default_factory=lambda: ["theirs"])
    seen: list[Seen] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="hostile-upstream", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def sent_record(self, sent: Sent) -> None:
        with self._lock:
            self.sent.append(sent)

    def calls(self, method: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path.rsplit("/", 1)[-1].removesuffix(".view") == method]

    def start(self) -> HostileUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

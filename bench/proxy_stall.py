"""Can the /rest proxy starve the API? (issue 20, points 4, 5, 12): ``/health`` latency with N
stalled and N slow proxied streams open, and the proxy's memory when a client posts a huge body or
the server sends a huge answer on a buffered path.

The proxy is the real app as ``serve`` binds it (``App.for_api(..., http=True)``: waitress with
playlistgen's options, eviction, body limits and send timeout) in a child process of its own, so
its RSS is its own. The upstream is the tests' hostile stand-in (tests/hostile_upstream.py) in this
process: ``stream`` answers 64 MiB at once (stalled: the client never reads) or 64 KiB per 0.25 s
(slow: the server paces it, the client reads). Everything is on loopback; every loop is bounded.

    .venv/bin/python bench/proxy_stall.py [--streams 20] [--post-mb 400] [--answer-mb 800]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if os.environ.get("PROXY_STALL_SRC"):   # the proxy child of --src runs that tree's playlistgen
    sys.path.insert(0, os.environ["PROXY_STALL_SRC"])

MB = 1024 * 1024
AUTH = "u=a&p=pw&v=1.16.1&c=bench&id=1"
HEALTH_TIMEOUT_S = 60


def serve_child(upstream: str, db: str) -> None:
    """The proxy process: prints ``ready <port>``, serves until stdin closes."""
    from playlistgen.app import App
    from playlistgen.config import Settings
    from playlistgen.core.storage.db import Database

    settings = Settings()
    settings.api.port = 0
    settings.database.path = db
    settings.playlists.output_dir = str(Path(db).parent / "playlists")
    settings.mediaserver.url, settings.mediaserver.user, settings.mediaserver.password = upstream, "a", "pw"
    settings.mediaserver.proxy = True
    app = App.for_api(settings, Database(db, pool_min=1, pool_max=4), http=True)
    app.start()
    print(f"ready {app.http.port}", flush=True)
    sys.stdin.read()   # the parent closes stdin to stop us
    app.stop()


def health_ms(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        try:
            ok = requests.get(f"{url}/health", timeout=HEALTH_TIMEOUT_S).status_code == 200
        except requests.RequestException:
            ok = False
        out.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        if not ok:
            break   # starved: one timeout says it (and the next tries would only wait as long)
    return out


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline, tick = time.monotonic() + timeout, threading.Event()
    while time.monotonic() < deadline and not condition():
        tick.wait(0.05)
    return condition()


def open_streams(port: int, n: int, query: str) -> list[socket.socket]:
    clients = []
    for _ in range(n):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET /rest/stream.view?{AUTH}&{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        clients.append(sock)
    return clients


def drain(clients: list[socket.socket], stop: threading.Event) -> threading.Thread:
    """Slow clients read what the server paces out (bounded by ``stop``)."""
    def run() -> None:
        for sock in clients:
            sock.setblocking(False)
        while not stop.is_set():
            for sock in clients:
                try:
                    sock.recv(1 << 16)
                except OSError:
                    pass
            stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


class PeakRss:
    """The child's RSS sampled every 20 ms while in the ``with`` block."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        self.base = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(0.02)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / MB


def row(label: str, values: list[float]) -> str:
    finite = [v for v in values if v != float("inf")]
    timeouts = len(values) - len(finite)
    if not finite:
        return f"  {label:34} no answer within {HEALTH_TIMEOUT_S} s"
    text = f"  {label:34} p50 {statistics.median(finite):7.1f} ms  max {max(finite):7.1f} ms"
    return text + (f"  ({timeouts} timed out after {HEALTH_TIMEOUT_S} s)" if timeouts else "")


def post_huge(port: int, megabytes: int) -> str:
    """A body of ``megabytes`` MB to /rest/ping.view without credentials, sent as fast as accepted."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"POST /rest/ping.view HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     f"application/x-www-form-urlencoded\r\nContent-Length: {megabytes * MB}\r\n\r\n".encode())
        block = b"a" * MB
        try:
            for _ in range(megabytes):
                sock.sendall(block)
        except OSError:
            pass   # refused early: the server closed the connection
        try:
            return sock.recv(200).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            return type(exc).__name__


def measure(streams: int, post_mb: int, answer_mb: int, src: str | None, log=print) -> dict:  # type: ignore[no-untyped-def]
    from tests.hostile_upstream import HostileUpstream

    log(f"# bench/proxy_stall.py  streams={streams} post={post_mb} MB answer={answer_mb} MB"
        + (f"  src={src}" if src else ""))
    out: dict = {"streams": streams}
    upstream = HostileUpstream().start()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO), **({"PROXY_STALL_SRC": src} if src else {})}
        child = subprocess.Popen([sys.executable, __file__, "--serve-child", upstream.url, str(Path(tmp) / "p.db")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline().split()[1])
            url = f"http://127.0.0.1:{port}"
            health_ms(url, 3)   # warm
            out["idle"] = health_ms(url, 20)
            log(f"/health latency (20 tries each; {streams} streams held open during the try):")
            log(row("no stream open", out["idle"]))
            for kind, query in (("stalled", f"size={64 * MB}"), ("slow", f"size={64 * MB}&pace=0.25&max_s=120")):
                before = len(upstream.calls("stream"))
                clients = open_streams(port, streams, query)
                stop = threading.Event()
                if kind == "slow":
                    drain(clients, stop)
                try:
                    reached = wait_for(lambda b=before: len(upstream.calls("stream")) - b >= streams, 30)
                    out[kind] = health_ms(url, 20)
                    log(row(f"{streams} {kind} streams" + ("" if reached else " (not all reached the server)"),
                            out[kind]))
                finally:
                    stop.set()
                    sent_before = len(upstream.sent)
                    for sock in clients:
                        sock.close()
                left = time.perf_counter()
                # the proxy closes a stream's upstream connection once it sees its client gone
                done = wait_for(lambda s=sent_before: len(upstream.sent) - s >= streams, 60)
                out[f"{kind}_closed_s"] = time.perf_counter() - left if done else float("inf")
                log(f"  {'':34} all {streams} upstream connections closed {out[f'{kind}_closed_s']:.1f} s "
                    "after their clients left" if done else f"  {'':34} upstream connections still open after 60 s")
            with PeakRss(child.pid) as rss:
                status = post_huge(port, post_mb)
            out["post"] = {"status": status, "rss_growth_mb": rss.growth_mb}
            log(f"POST of {post_mb} MB to /rest/ping.view without credentials: '{status}', "
                f"proxy RSS +{rss.growth_mb:.0f} MB")
            upstream.huge_bytes = answer_mb * MB
            sent_before = len(upstream.sent)
            with PeakRss(child.pid) as rss:
                started = time.perf_counter()
                answer = requests.get(f"{url}/rest/scrobble.view?{AUTH}&f=json", timeout=300)
                elapsed = time.perf_counter() - started
            upstream.huge_bytes = 0

            def scrobbles() -> list:
                return [s for s in upstream.sent[sent_before:] if "scrobble" in s.path]

            wait_for(lambda: bool(scrobbles()), 60)
            read = scrobbles()[0].bytes / MB if scrobbles() else float("nan")
            out["answer"] = {"status": answer.status_code, "rss_growth_mb": rss.growth_mb, "sent_mb": read}
            log(f"scrobble answered with {answer_mb} MB by the server: HTTP {answer.status_code} in {elapsed:.1f} s, "
                f"the server got {read:.0f} MB out, proxy RSS +{rss.growth_mb:.0f} MB")
        finally:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            upstream.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--post-mb", type=int, default=400)
    parser.add_argument("--answer-mb", type=int, default=800)
    parser.add_argument("--src", help="run the proxy from another source tree (e.g. an older commit's, for "
                                      "a before/after comparison)")
    parser.add_argument("--serve-child", nargs=2, metavar=("UPSTREAM", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(*args.serve_child)
        return
    measure(args.streams, args.post_mb, args.answer_mb, args.src)


if __name__ == "__main__":
    main()

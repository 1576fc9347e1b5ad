"""The playlist API under load: a synthetic library in SQLite (100k tracks by default), the HTTP app
served by waitress in a child process, then

* p50/p99 of the server time (X-Process-Time) of 30-track ``radio`` and ``path`` requests, one at a
  time (targets: p50 ≤ 20 ms, p99 ≤ 60 ms);
* N concurrent clients (default 50) posting radio requests for S seconds (default 30): requests/s,
  latency percentiles, and the error count (target: zero).

Only 127.0.0.1 is contacted; every loop is bounded in count and time.

    .venv/bin/python bench/api.py [--tracks 100000] [--requests 200] [--clients 50] [--seconds 30]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import run_clients  # noqa: E402
from playlists import write_database  # noqa: E402


def serve(db_path: str, port: int) -> None:
    """Child process: the API only (no watcher, no analysis), like `serve` builds it."""
    from waitress import create_server

    from playlistgen.app import App
    from playlistgen.config import Settings
    from playlistgen.core.playlists.service import PlaylistService
    from playlistgen.core.storage.db import Database
    from playlistgen.core.threads import single_threaded_blas

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" per request under load
    settings = Settings()
    settings.database.path = db_path
    settings.playlists.output_dir = str(Path(db_path).parent / "playlists")
    db = Database.from_settings(settings)
    service = PlaylistService(db, settings)
    single_threaded_blas()  # as PlaylistService.warm_up does in `serve`
    service.index.refresh()  # build before the first request
    app = App.for_api(settings, db, playlists=service).api
    create_server(app, host="127.0.0.1", port=port, threads=8, ident="playlistgen").run()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(ms: list[float]) -> str:
    return (f"p50 {statistics.median(ms):6.1f} ms  p95 {pct(ms, 0.95):6.1f} ms  "
            f"p99 {pct(ms, 0.99):6.1f} ms  (n={len(ms)})")


def sequential(url: str, bodies: list[dict]) -> tuple[list[float], list[float]]:
    server, client = [], []
    with requests.Session() as s:
        for body in bodies:
            started = time.perf_counter()
            r = s.post(url, json=body, timeout=30)
            client.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()
            server.append(float(r.headers["X-Process-Time"]) * 1000)
    return server, client


def concurrent(url: str, n_tracks: int, clients: int, seconds: float, seed: int = 0) -> dict:
    """``clients`` threads post 30-track radio requests for ``seconds`` (bounded in count too).
    Returns client latencies (ms), server times (ms, NaN when unknown), errors and elapsed s."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    server: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        rng = np.random.default_rng(seed + i)
        with requests.Session() as s:
            for _ in range(100_000):
                if time.monotonic() >= deadline:
                    break
                body = {"strategy": "radio", "seeds": [int(rng.integers(1, n_tracks + 1))], "size": 30}
                started = time.perf_counter()
                try:
                    r = s.post(url, json=body, timeout=30)
                    ok = r.status_code == 200
                    detail = f"HTTP {r.status_code}"
                    spent = float(r.headers.get("X-Process-Time", "nan")) * 1000
                except requests.RequestException as exc:
                    ok, detail, spent = False, type(exc).__name__, float("nan")
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
                    server.append(spent)
                    if not ok:
                        errors.append(detail)

    elapsed = run_clients(worker, clients, seconds)
    return {"latencies": latencies, "server": server, "errors": errors, "elapsed": elapsed}


def print_concurrent(result: dict, clients: int, seconds: float) -> None:
    latencies, errors = result["latencies"], result["errors"]
    print(f"  {clients} clients × {seconds:.0f} s: {len(latencies)} requests, "
          f"{len(latencies) / result['elapsed']:.0f} req/s, "
          f"errors {len(errors)}{' ' + str(sorted(set(errors))) if errors else ''}")
    if latencies:
        print(f"  client latency          {summary(latencies)}")
        print(f"  server time             {summary([v for v in result['server'] if v == v])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    print(f"# bench/api.py  tracks={args.tracks:,} requests={args.requests} clients={args.clients} "
          f"seconds={args.seconds:.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        write_database(db_path, args.tracks, np.random.default_rng(5))
        print(f"database written in {time.perf_counter() - started:.1f} s")
        from tests.conftest import free_port

        port = free_port()
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(db_path), str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            while time.monotonic() - started < 300:
                try:
                    if requests.get(base + "/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            print(f"server ready (index built) after {time.monotonic() - started:.1f} s")
            rng = np.random.default_rng(0)
            url = base + "/api/v1/playlists"
            seeds = rng.integers(1, args.tracks + 1, (args.requests, 2))
            sequential(url, [{"strategy": "radio", "seeds": [int(seeds[0, 0])], "size": 30}] * 5)  # warm-up
            for name, bodies in (
                    ("radio", [{"strategy": "radio", "seeds": [int(a)], "size": 30} for a, _ in seeds]),
                    ("path", [{"strategy": "path", "seeds": [int(a), int(b)], "size": 30} for a, b in seeds])):
                server, client = sequential(url, bodies)
                print(f"  {name:6} server time     {summary(server)}")
                print(f"  {name:6} client latency  {summary(client)}")
            print_concurrent(concurrent(url, args.tracks, args.clients, args.seconds), args.clients, args.seconds)
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()

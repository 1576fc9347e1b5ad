"""The daemon under hostile and heavy use (issue 10, defects 6 and 12): a real `playlistgen serve`
analysing a generated library on loopback, then

* **idle connections**: opens idle sockets in steps (half of them a request header that never
  ends, slowloris style) and after each step asks ``/health`` (15 s timeout): the most it
  withstands while ``/health`` still answers, and ``/health``'s latency then;
* **load**: N concurrent clients (default 50) for S seconds (default 30) while the daemon analyses,
  each cycling through /health, /api/v1/library/status, /metrics, /api/v1/tracks, a random
  playlist and /api/v1/performance/metrics: requests/s, latency p50/p99, errors (non-2xx or no
  answer), and the waitress warnings that reached the log (rate-limited lines).

Only 127.0.0.1 is contacted; every loop is bounded in count and time; sockets are closed at once.

    .venv/bin/python bench/hardening.py [--files 40] [--song-seconds 45] [--idle-max 2000] [--clients 50]
                                        [--seconds 30]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MachineLoad, cache_dir, percentile, run_clients  # noqa: E402

from playlistgen.api.server import CONNECTION_LIMIT, raise_open_file_limit  # noqa: E402

IDLE_STEPS = (100, 250, 500, 750, 900, 990, 1100, 1250, 1500, 2000, 3000)
ROUTES = (("GET", "/health"), ("GET", "/api/v1/library/status"), ("GET", "/metrics"),
          ("GET", "/api/v1/tracks?limit=20"), ("POST", "/api/v1/playlists"), ("GET", "/api/v1/performance/metrics"))


def make_library(folder: Path, files: int, seconds: float) -> None:
    """``files`` generated songs (cached between runs); copied by hard link into ``folder``."""
    from tests.helpers import make_song

    cache = cache_dir() / f"hardening-{int(seconds)}s"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        src = cache / f"song-{i:03d}.flac"
        if not src.exists():
            make_song(src, i, seconds)
        (folder / src.name).hardlink_to(src)


def health_ms(url: str, timeout: float = 15.0) -> float | None:
    started = time.perf_counter()
    try:
        ok = requests.get(url + "/health", timeout=timeout).status_code in (200, 503)
    except requests.RequestException:
        return None
    return (time.perf_counter() - started) * 1000 if ok else None


def idle_connections(port: int, url: str, most: int, log=print) -> list[tuple[int, float | None]]:  # type: ignore[no-untyped-def]
    """(open idle sockets, /health latency in ms or None) per step, up to the first failure."""
    idle: list[socket.socket] = []
    rows: list[tuple[int, float | None]] = []
    try:
        for step in (s for s in IDLE_STEPS if s <= most):
            while len(idle) < step:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                if len(idle) % 2:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
                idle.append(s)
            latency = health_ms(url)
            rows.append((step, latency))
            log(f"  {step:5d} idle connections: /health "
                  + (f"answered in {latency:.0f} ms" if latency is not None else "NO ANSWER within 15 s"))
            if latency is None:
                break
    finally:
        for s in idle:
            s.close()
    return rows


def load(url: str, clients: int, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    by_route: dict[str, list[float]] = {f"{m} {p.split('?')[0]}": [] for m, p in ROUTES}
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        with requests.Session() as session:
            for n in range(1_000_000):
                if time.monotonic() >= deadline:
                    break
                method, path = ROUTES[(i + n) % len(ROUTES)]
                started = time.perf_counter()
                try:
                    if method == "POST":
                        r = session.post(url + path, json={"strategy": "random", "size": 10, "random_seed": n},
                                         timeout=30)
                    else:
                        r = session.get(url + path, timeout=30)
                    error = None if r.status_code < 400 else f"{r.status_code} {method} {path}"
                except requests.RequestException as exc:
                    error = f"{type(exc).__name__} {method} {path}"
                spent = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(spent)
                    by_route[f"{method} {path.split('?')[0]}"].append(spent)
                    if error:
                        errors.append(error)

    elapsed = run_clients(client, clients, seconds)
    return {"latencies": latencies, "by_route": by_route, "errors": errors, "elapsed": elapsed}


def counts(url: str) -> dict:
    c = requests.get(url + "/api/v1/library/status", timeout=10).json()["counts"]
    return {k: c[k] for k in ("total", "analysed", "pending", "analysing", "failed") if k in c}


def _counts_text(c: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in c.items())


def measure(files: int, song_seconds: float, idle_max: int, clients: int, seconds: float,  # type: ignore[no-untyped-def]
            log=print) -> dict:
    """A real daemon analysing ``files`` generated songs: the idle connections it withstands, then
    ``clients`` concurrent clients for ``seconds`` while it analyses; every figure as a dict."""
    from tests.conftest import Daemon

    raise_open_file_limit(idle_max + 256)
    log(f"# bench/hardening.py  files={files}×{song_seconds:.0f}s idle-max={idle_max} "
        f"clients={clients} seconds={seconds:.0f}  (connection_limit {CONNECTION_LIMIT})")
    out: dict = {"files": files, "song_s": song_seconds, "idle_max": idle_max, "clients": clients,
                 "seconds": seconds, "connection_limit": CONNECTION_LIMIT}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_library(root / "library", files, song_seconds)
        daemon = Daemon(root, "--library", str(root / "library"), "--db", str(root / "bench.db"))
        try:
            out["ready_s"] = daemon.wait_ready(120)
            log(f"daemon ready after {out['ready_s']:.1f} s")
            log("idle connections (half of them an unfinished request header):")
            rows = idle_connections(daemon.port, daemon.url, idle_max, log)
            out["idle_steps"] = [{"idle": n, "health_ms": ms} for n, ms in rows]
            out["idle_held"] = max((n for n, ms in rows if ms is not None), default=0)
            out["idle_failed_at"] = next((n for n, ms in rows if ms is None), None)
            time.sleep(1)
            out["health_after_ms"] = health_ms(daemon.url)
            after = out["health_after_ms"]
            log(f"  withstood {out['idle_held']} idle connections with /health answering; after closing them "
                "/health " + (f"answers in {after:.0f} ms" if after is not None else "does NOT answer"))
            out["counts_before"] = counts(daemon.url)
            log(f"load while analysing ({_counts_text(out['counts_before'])}):")
            with MachineLoad() as machine:
                result = load(daemon.url, clients, seconds)
            out["counts_after"] = counts(daemon.url)
            lat, errors = result["latencies"], result["errors"]
            out["load"] = {"requests": len(lat), "rps": len(lat) / result["elapsed"], "p50_ms": statistics.median(lat),
                           "p99_ms": percentile(lat, 99), "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
                           "foreign_share": machine.foreign_share,
                           "by_route": {r: {"n": len(ms), "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 99)}
                                        for r, ms in sorted(result["by_route"].items()) if ms}}
            ld = out["load"]
            log(f"  {clients} clients × {seconds:.0f} s: {ld['requests']} requests, {ld['rps']:.0f} req/s, "
                f"p50 {ld['p50_ms']:.0f} ms, p99 {ld['p99_ms']:.0f} ms, errors {ld['errors']}"
                + (f" {ld['error_kinds']}" if errors else ""))
            for route, r in ld["by_route"].items():
                log(f"    {route:34} n={r['n']:5d}  p50 {r['p50_ms']:5.0f} ms  p99 {r['p99_ms']:5.0f} ms")
            log(f"  after the load: {_counts_text(out['counts_after'])}; other processes used "
                f"{machine.foreign_share:.0%} of the machine meanwhile")
        finally:
            daemon.stop()
        log_lines = daemon.log_path.read_text(errors="replace").splitlines()
    queue = [line for line in log_lines if "waitress.queue" in line]
    limited = [line for line in queue if "more like this" in line]
    out["queue_warning_lines"] = len(queue)
    out["queue_warnings_held_back"] = sum(int(line.split("[")[-1].split()[0]) for line in limited)
    log(f"  waitress.queue warnings in the log: {len(queue)} lines ({len(limited)} carrying a count of "
        f"{out['queue_warnings_held_back']} held back)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40, help="generated songs to analyse during the run")
    parser.add_argument("--song-seconds", type=float, default=45.0)
    parser.add_argument("--idle-max", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    measure(args.files, args.song_seconds, args.idle_max, args.clients, args.seconds)

if __name__ == "__main__":
    main()

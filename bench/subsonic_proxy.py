"""What the /rest proxy costs (issue 11): ``stream`` throughput through the proxy vs straight from
the server, and the latency of ``getSimilarSongs2`` / ``getSonicSimilarTracks`` at 100k tracks.

The upstream is a real supysonic (the tests' cached virtualenv, tests/subsonic_server.py) serving
one large generated WAV. The proxy is the real app (create_app + the waitress options of
``serve``) in a child process of its own, on a playlistgen database with ``--tracks`` synthetic
analysed tracks (bench/playlists.py's generator, cached between runs) each mapped to a server song
id in ``mediaserver_songs``; the credential check goes to supysonic once and is cached, as in
production. Everything is on loopback; every loop is bounded.

    .venv/bin/python bench/subsonic_proxy.py [--tracks 100000] [--stream-mb 64] [--runs 5] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import cache_dir  # noqa: E402
from playlists import write_database  # noqa: E402

from tests.subsonic_server import SubsonicServer, ensure_venv  # noqa: E402


def library_db(n: int) -> Path:
    """A cached database of ``n`` analysed tracks, each the server song 'so-<i>' (Child JSON stored)."""
    path = cache_dir() / f"proxy-{n}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink()
    started = time.perf_counter()
    cols = write_database(tmp, n, np.random.default_rng(11))
    from playlistgen.core.storage.db import Database

    db = Database(tmp, pool_min=1, pool_max=2)
    rows = [(f"so-{i}", i + 1, "path", f"{cols['artists'][i]}/LP/Song {i}.flac", cols["artists"][i], "LP",
             f"Song {i}", float(cols["duration"][i]), time.time(),
             json.dumps({"id": f"so-{i}", "parent": f"al-{i // 12}", "isDir": False, "title": f"Song {i}",
                         "album": "LP", "artist": cols["artists"][i], "duration": int(cols["duration"][i]),
                         "type": "music", "suffix": "flac", "path": f"{cols['artists'][i]}/LP/Song {i}.flac"}))
            for i in range(n)]
    db.write(lambda c: c.executemany(
        "INSERT INTO mediaserver_songs(server_id, track_id, method, path, artist, album, title, duration_s, "
        "seen_at, child) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows))
    db.close()
    tmp.rename(path)
    print(f"database: {n:,} tracks + server songs written in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def big_wav(folder: Path, megabytes: int) -> Path:
    import soundfile as sf

    path = folder / "Bench Artist" / "Bench Album" / "01 Long.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = megabytes * 1024 * 1024 // 4  # 16-bit stereo
    noise = np.random.default_rng(3).integers(-2000, 2000, (frames, 2), dtype=np.int16)
    sf.write(path, noise, 44100, subtype="PCM_16")
    return path


def serve_child(args: argparse.Namespace) -> None:
    """The proxy process: the real app on the waitress options `serve` uses."""
    from waitress import create_server

    from playlistgen.api.server import server_options
    from playlistgen.app import App
    from playlistgen.config import Settings
    from playlistgen.core.storage.db import Database
    from playlistgen.core.threads import single_threaded_blas

    single_threaded_blas()
    settings = Settings()
    settings.database.path = args.db
    settings.mediaserver.url, settings.mediaserver.user = args.upstream, "alice"
    settings.mediaserver.proxy = True
    db = Database(args.db, pool_min=1, pool_max=8)
    built = App.for_api(settings, db)
    app, services = built.api, built.services
    services.playlists.index.refresh()  # the catalog is loaded before the first request, as warm_up does
    server = create_server(app, host="127.0.0.1", port=args.port, **server_options(settings))
    print("ready", flush=True)
    server.run()


def throughput(url: str, params: dict, runs: int) -> list[float]:
    """MB/s of whole-file downloads."""
    out = []
    for _ in range(runs):
        started, size = time.perf_counter(), 0
        with requests.get(url, params=params, stream=True, timeout=120) as r:
            r.raise_for_status()
            for chunk in r.iter_content(1 << 20):
                size += len(chunk)
        out.append(size / (1 << 20) / (time.perf_counter() - started))
    return out


def latency(url: str, params: list[dict]) -> list[float]:
    out = []
    with requests.Session() as s:
        for p in params:
            started = time.perf_counter()
            r = s.get(url, params=p, timeout=60)
            assert r.status_code == 200 and r.json()["subsonic-response"]["status"] == "ok", r.text[:200]
            out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--stream-mb", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args)
        return
    measure(args.tracks, args.stream_mb, args.runs, args.queries)


def summary(values: list[float]) -> dict:
    v = sorted(values)
    return {"p50": v[len(v) // 2], "p95": v[min(len(v) - 1, int(len(v) * 0.95))], "max": v[-1], "n": len(v)}


def measure(tracks: int, stream_mb: int, runs: int, queries: int, log=print) -> dict:  # type: ignore[no-untyped-def]
    """The stream throughput direct vs through the proxy (interleaved runs) and the latency of
    forwarded and answered /rest calls at ``tracks`` tracks."""
    log(f"# bench/subsonic_proxy.py  tracks={tracks:,} stream={stream_mb} MB runs={runs} queries={queries}")
    started = time.perf_counter()
    db_path = library_db(tracks)
    out: dict = {"tracks": tracks, "stream_mb": stream_mb, "runs": runs, "queries": queries,
                 "library_s": time.perf_counter() - started}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wav = big_wav(root / "library", stream_mb)
        server = SubsonicServer(venv=ensure_venv(), workdir=root / "server", library=root / "library")
        server.configure()
        server.rescan()
        server.start()
        child = None
        try:
            db = shutil.copy(db_path, root / "proxy.db")
            port = free_port()
            child = subprocess.Popen([sys.executable, __file__, "--serve-child", "--db", str(db), "--upstream",
                                      server.url, "--port", str(port)], stdout=subprocess.PIPE, text=True)
            assert child.stdout is not None and child.stdout.readline().strip() == "ready", "the proxy did not start"
            proxy = f"http://127.0.0.1:{port}"
            auth = {"u": server.user, "p": server.password, "v": "1.12.0", "c": "bench"}
            songs = requests.get(f"{server.url}/rest/search3", params={**auth, "f": "json", "query": "",
                                                                       "songCount": 10}, timeout=10).json()
            song = songs["subsonic-response"]["searchResult3"]["song"][0]["id"]
            expected = wav.stat().st_size
            for base in (server.url, proxy):  # warm both (page cache, connections)
                assert len(requests.get(f"{base}/rest/stream", params={**auth, "id": song}, timeout=120).content) \
                    == expected
            direct, proxied = [], []
            for _ in range(runs):  # interleaved, so machine noise hits both alike
                direct += throughput(f"{server.url}/rest/stream", {**auth, "id": song}, 1)
                proxied += throughput(f"{proxy}/rest/stream", {**auth, "id": song}, 1)
            ratios = [p / d for d, p in zip(direct, proxied, strict=True)]
            out["stream"] = {"direct_mb_s": direct, "proxy_mb_s": proxied, "ratio": ratios}
            d, p = statistics.median(direct), statistics.median(proxied)
            log(f"stream {stream_mb} MB: direct {d:.0f} MB/s, through the proxy {p:.0f} MB/s "
                f"({p / d:.2f}x of direct; medians of {runs})")
            rng = np.random.default_rng(5)
            ids = [f"so-{i}" for i in rng.integers(0, tracks, queries)]
            latency(f"{proxy}/rest/getSimilarSongs2", [{**auth, "f": "json", "id": ids[0], "count": 50}])  # warm
            calls = {"ping (forwarded)": ("ping", [{**auth, "f": "json"}] * queries),
                     "getSimilarSongs2 (count 50)": ("getSimilarSongs2", [{**auth, "f": "json", "id": i,
                                                                           "count": 50} for i in ids]),
                     "getSonicSimilarTracks (count 10)": ("getSonicSimilarTracks", [{**auth, "f": "json", "id": i,
                                                                                     "count": 10} for i in ids])}
            out["latency_ms"] = {}
            log(f"at {tracks:,} tracks, ms over {queries} requests (HTTP, credentials cached):")
            for label, (method, params) in calls.items():
                row = out["latency_ms"][label] = summary(latency(f"{proxy}/rest/{method}", params))
                log(f"  {label:34} p50 {row['p50']:.1f}  p95 {row['p95']:.1f}  max {row['max']:.1f}")
        finally:
            if child is not None:
                child.terminate()
                child.wait(10)
            server.stop()
    return out

if __name__ == "__main__":
    main()

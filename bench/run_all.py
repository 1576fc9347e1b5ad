"""Run every benchmark in bench/ once on this machine and write docs/benchmarks.md (tables),
docs/bench/*.png (plots) and docs/bench/results.json (every number, with its runs).

    .venv/bin/python bench/run_all.py --quick        # `make bench`: about 10 minutes
    .venv/bin/python bench/run_all.py                # `make bench FULL=1`: more files and runs (~45 min)
    .venv/bin/python bench/run_all.py --render-only  # re-render the report from results.json
    .venv/bin/python bench/run_all.py --only hardening --merge   # re-run one section into results.json

Generated inputs (the dev corpus when it is missing, long files, the 100k-file tree, the
synthetic 100k-track library, the analysed quality library) are kept in the cache folder
($PLAYLISTGEN_BENCH_CACHE, default ~/.cache/playlistgen-bench), so a second run spends its time
measuring. Every figure is a median of several runs with its spread (min–max); ratios are taken
between figures measured side by side in the same run. Each section also records how much of the
machine other processes used while it ran: on a shared machine, read the figures with that.
Only 127.0.0.1 is contacted; every request loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: E402
from common import REPO, MachineLoad, cache_dir, durations, find_corpus, percentile, pick_files, stats  # noqa: E402

DOC = REPO / "docs" / "benchmarks.md"
ASSETS = REPO / "docs" / "bench"
RESULTS = ASSETS / "results.json"
MODELS = REPO / "models"

QUICK = {"cost_files": 3, "cost_max_s": 150, "rounds": 3,
         "kinds": ("musicextractor", "librosa", "fast", "balanced:onnx", "balanced:essentia", "balanced-msd:onnx",
                   "balanced-msdmtt:onnx"),
         "scale_files": 8, "pairs": 2, "attempts": 2, "lengths": [3, 10, 30], "rss_presets": ("balanced",),
         "rss_runs": 1, "drops": 3, "reconcile_runs": 3, "db_rows": 10000, "db_runs": 3, "api_requests": 60,
         "api_runs": 3, "api_clients": 8, "api_seconds": 5.0, "cache_tracks": 2000, "cache_requests": 5000,
         "cache_runs": 3, "tune": True, "sim_quick": True,
         "transition_sizes": [50, 500], "transition_runs": 7, "link_songs": 100_000, "link_runs": 2,
         "proxy_tracks": 10_000, "proxy_stream_mb": 32, "proxy_runs": 3, "proxy_queries": 50, "retag_files": 300,
         "hard_files": 300, "hard_idle_max": 2000, "hard_clients": 50, "hard_seconds": 10.0, "dask_files": 12,
         "dask_pairs": 3, "feedback_seeds": 3}
FULL = {"cost_files": 8, "cost_max_s": 330, "rounds": 3,
        "kinds": ("musicextractor", "librosa", "fast", "balanced:onnx", "balanced:essentia", "accurate",
                  "balanced-msd:onnx", "balanced-msdmtt:onnx"),
        "scale_files": 16, "pairs": 3, "attempts": 3, "lengths": [3, 10, 30, 60], "rss_presets": ("fast", "balanced"),
        "rss_runs": 3, "drops": 5, "reconcile_runs": 5, "db_rows": 20000, "db_runs": 5, "api_requests": 200,
        "api_runs": 3, "api_clients": 16, "api_seconds": 15.0, "cache_tracks": 5000, "cache_requests": 20000,
        "cache_runs": 5, "tune": True, "sim_quick": False,
        "transition_sizes": [50, 100, 200, 500, 1000], "transition_runs": 15, "link_songs": 100_000, "link_runs": 3,
        "proxy_tracks": 100_000, "proxy_stream_mb": 64, "proxy_runs": 5, "proxy_queries": 100, "retag_files": 1000,
        "hard_files": 600, "hard_idle_max": 3000, "hard_clients": 50, "hard_seconds": 30.0, "dask_files": 24,
        "dask_pairs": 4, "feedback_seeds": 5}


def log(*a: object) -> None:
    print(*a, flush=True)


# --- sections -------------------------------------------------------------------------------------

def machine(cfg: dict, corpus: Path) -> dict:
    import psutil

    def version(mod: str) -> str:
        try:
            from importlib.metadata import version as v

            return v(mod)
        except Exception:
            return "?"

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip())
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "os": platform.platform(terse=True),
            "commit": commit + ("+changes" if dirty else ""), "load_avg": os.getloadavg(),
            "versions": {m: version(m) for m in ("essentia-tensorflow", "onnxruntime", "librosa", "numpy", "apsw",
                                                 "waitress", "distributed")},
            "corpus_tracks": len(common.corpus_tracks(corpus))}


def analysis(cfg: dict, corpus: Path) -> dict:
    from costs import analysis_cost

    files = pick_files(corpus, cfg["cost_files"] + 1, max_s=cfg["cost_max_s"])
    lengths = durations(files)
    warmup = min(files, key=lambda f: lengths[f])
    files.remove(warmup)
    return analysis_cost(files, warmup, MODELS, cfg["kinds"], cfg["rounds"], log=log)


def scaling(cfg: dict, corpus: Path) -> dict:
    import scaling as sc

    files = pick_files(corpus, cfg["scale_files"])
    return sc.measure(files, MODELS, "balanced", cfg["pairs"], attempts=cfg["attempts"], log=log)


def rss(cfg: dict, corpus: Path) -> dict:
    from costs import rss_by_length

    source = pick_files(corpus, 1, min_s=150, max_s=330)[0]
    out = rss_by_length(source, cfg["lengths"], cfg["rss_presets"], MODELS, cfg["rss_runs"], log=log)
    out["source"] = Path(source).name
    return out


def latency(cfg: dict, corpus: Path) -> dict:
    import latency as lat

    return lat.measure(corpus, cfg["drops"], log=log)


def reconcile(cfg: dict, corpus: Path) -> dict:
    from reconcile import make_tree

    from playlistgen.config import LibrarySettings
    from playlistgen.core.library.reconcile import Library
    from playlistgen.core.storage.db import Database

    files = 100_000
    root = cache_dir() / "reconcile" / f"lib-{files}"
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    make_tree(root, files)
    tree_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", batch_size=256)
        library = Library(db, LibrarySettings(paths=[str(root)]), "bench")
        first = library.reconcile(trigger="bench")
        times = []
        for _ in range(cfg["reconcile_runs"]):
            report = library.reconcile(trigger="bench")
            assert report.queued == 0 and report.unchanged == files, report
            times.append(report.seconds)
        db.close()
    log(f"reconcile: {files:,} unchanged files in {np.median(times):.2f} s (first scan {first.seconds:.1f} s)")
    return {"files": files, "tree_s": tree_s, "first_scan_s": first.seconds, "unchanged_s": stats(times),
            "files_per_s": stats([files / t for t in times])}


def db_writes(cfg: dict, corpus: Path) -> dict:
    from db import checkout_us, insert_rate

    out: dict = {"rows": cfg["db_rows"], "batches": {}}
    for batch in (1, 64, 512):
        out["batches"][str(batch)] = stats([insert_rate(cfg["db_rows"], batch) for _ in range(cfg["db_runs"])])
        log(f"db: batch_size {batch}: {out['batches'][str(batch)]['median']:,.0f} rows/s")
    out["checkout_us"] = stats([checkout_us(20000) for _ in range(cfg["db_runs"])])
    return out


def _api_library(tracks: int) -> Path:
    from playlists import write_database

    from playlistgen.core.storage.migrate import latest_version

    path = cache_dir() / "api" / f"library-{tracks}-schema{latest_version()}.db"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("tmp-" + path.name)
        for p in path.parent.glob(tmp.name + "*"):
            p.unlink()
        log(f"api: writing a synthetic {tracks:,}-track library (once) …")
        write_database(tmp, tracks, np.random.default_rng(5))
        tmp.rename(path)
    return path


def _concurrent(url: str, tracks: int, clients: int, seconds: float) -> dict:
    from api import concurrent

    run = concurrent(url, tracks, clients, seconds, seed=100)
    latencies = run["latencies"]
    return {"requests": len(latencies), "rps": len(latencies) / run["elapsed"], "errors": len(run["errors"]),
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


def api(cfg: dict, corpus: Path) -> dict:
    import requests
    from api import sequential

    tracks = 100_000
    db_path = _api_library(tracks)
    port = common_free_port()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "library.db"
        shutil.copyfile(db_path, work)
        proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "api.py"), "--serve", str(work),
                                 str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            while time.monotonic() - started < 300:
                try:
                    if requests.get(base + "/health", timeout=1).ok:
                        break
                except requests.ConnectionError:
                    time.sleep(0.2)
            ready_s = time.monotonic() - started
            url = base + "/api/v1/playlists"
            rng = np.random.default_rng(0)
            sequential(url, [{"strategy": "radio", "seeds": [1], "size": 30}] * 5)  # warm-up
            out: dict = {"tracks": tracks, "ready_s": ready_s, "requests": cfg["api_requests"], "runs": cfg["api_runs"]}
            for name in ("radio", "path"):
                p50, p99, c50 = [], [], []
                for _ in range(cfg["api_runs"]):
                    seeds = rng.integers(1, tracks + 1, (cfg["api_requests"], 2))
                    bodies = [{"strategy": name, "seeds": [int(a)] if name == "radio" else [int(a), int(b)],
                               "size": 30} for a, b in seeds]
                    server, client = sequential(url, bodies)
                    p50.append(percentile(server, 50))
                    p99.append(percentile(server, 99))
                    c50.append(percentile(client, 50))
                out[name] = {"server_p50_ms": stats(p50), "server_p99_ms": stats(p99), "client_p50_ms": stats(c50)}
                log(f"api: {name} server p50 {np.median(p50):.1f} ms, p99 {np.median(p99):.1f} ms")
            runs = [_concurrent(url, tracks, cfg["api_clients"], cfg["api_seconds"]) for _ in range(cfg["api_runs"])]
            out["concurrent"] = {"clients": cfg["api_clients"], "seconds": cfg["api_seconds"],
                                 "rps": stats([r["rps"] for r in runs]), "p50_ms": stats([r["p50_ms"] for r in runs]),
                                 "p99_ms": stats([r["p99_ms"] for r in runs]),
                                 "errors": sum(r["errors"] for r in runs), "requests": sum(r["requests"] for r in runs)}
            log(f"api: {cfg['api_clients']} clients: {out['concurrent']['rps']['median']:.0f} req/s, "
                f"errors {out['concurrent']['errors']}")
        finally:
            proc.terminate()
            proc.wait(30)
    return out


def common_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cache(cfg: dict, corpus: Path) -> dict:
    from cache import per_track, workload

    from playlistgen.core.storage.cache import FeatureCache
    from playlistgen.core.storage.db import Database
    from playlistgen.core.storage.records import get_many_features
    from tests.feature_data import populate

    out: dict = {"tracks": cfg["cache_tracks"], "requests": cfg["cache_requests"], "zipf": 1.1, "configs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", pool_min=2, pool_max=8, batch_size=256)
        ids = populate(db, cfg["cache_tracks"])
        requests_ = workload(ids, cfg["cache_requests"], 1.1)
        out["distinct"] = len(set(requests_))
        get_many_features(db, None, ids)  # SQLite's page cache warm for every configuration alike
        configs = [("no cache", None, 0.0), ("lz4, 64 MB", "lz4", 64.0), ("zlib, 64 MB", "zlib", 64.0),
                   ("lz4, 0.25 MB (too small)", "lz4", 0.25)]
        for name, comp, size in configs:
            runs = [per_track(db, FeatureCache(size, 3600, comp) if comp else None, requests_)
                    for _ in range(cfg["cache_runs"])]
            out["configs"][name] = {"mean_us": stats([r["mean_us"] for r in runs]),
                                    "p95_us": stats([r["p95_us"] for r in runs]),
                                    "hit_rate": runs[0]["hit_rate"]}
        db.close()
    nocache = out["configs"]["no cache"]["mean_us"]["values"]
    cached = out["configs"]["lz4, 64 MB"]["mean_us"]["values"]
    out["speedup"] = stats([a / b for a, b in zip(nocache, cached, strict=True)])
    log(f"cache: hit rate {out['configs']['lz4, 64 MB']['hit_rate']:.1%}, reads {out['speedup']['median']:.1f}x faster")
    return out


def quality(cfg: dict, corpus: Path) -> dict:
    import quality as q

    return q.evaluate(corpus, MODELS, tune=cfg["tune"], log=log)


def similarity(cfg: dict, corpus: Path) -> dict:
    """The representation bench and the group weights with the projected embedding (issue 22)."""
    import similarity as sim
    import similarity_api as simapi
    import similarity_weights as sw

    from playlistgen.config import Settings

    out = sim.measure(corpus, MODELS.resolve(), quick=cfg["sim_quick"], log=log)
    p = Settings().playlists
    current = {"scalars": p.weight_scalars, "mfcc": p.weight_mfcc, "chroma": p.weight_chroma,
               "embedding": p.weight_embedding}
    out["weights"] = sw.measure(corpus, MODELS.resolve(), sim.Corpus(corpus, MODELS.resolve(), log), current, log)
    out["api"] = simapi.measure(corpus, log=log)   # the daemon's own answer, raw vs projected
    return out


def transitions(cfg: dict, corpus: Path) -> dict:
    import transitions as tr

    return tr.run(cfg["transition_sizes"], cfg["transition_runs"], log=log)


def ml_runtime(cfg: dict, corpus: Path) -> dict:
    import ml_runtime as mr

    return mr.compare(corpus, MODELS, log=log)


def retag(cfg: dict, corpus: Path) -> dict:
    import retag as rt

    work = cache_dir() / f"retag-{cfg['retag_files']}"   # the generated songs are kept between runs
    work.mkdir(parents=True, exist_ok=True)
    return rt.measure(cfg["retag_files"], 20.0, "fast", 2, work, log=log)


def mediaserver(cfg: dict, corpus: Path) -> dict:
    import mediaserver_link as ml

    return ml.measure(cfg["link_songs"], cfg["link_runs"], log=log)


def proxy(cfg: dict, corpus: Path) -> dict:
    import subsonic_proxy as sp

    return sp.measure(cfg["proxy_tracks"], cfg["proxy_stream_mb"], cfg["proxy_runs"], cfg["proxy_queries"], log=log)


def hardening(cfg: dict, corpus: Path) -> dict:
    import hardening as hd

    return hd.measure(cfg["hard_files"], 45.0, cfg["hard_idle_max"], cfg["hard_clients"], cfg["hard_seconds"], log=log)


def distributed(cfg: dict, corpus: Path) -> dict:
    """bench/distributed.py, loaded under another name: its file name is the Dask package's."""
    import importlib.util
    import logging

    bench = Path(__file__).resolve().parent
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != bench]
    try:
        import distributed as dask_distributed  # the Dask package, before bench/distributed.py can shadow it

        if not hasattr(dask_distributed, "Client"):
            raise RuntimeError(f"`import distributed` found {dask_distributed.__file__}, not the Dask package")
        spec = importlib.util.spec_from_file_location("bench_distributed", bench / "distributed.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    quiet = logging.getLogger("distributed")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return module.measure(pick_files(corpus, cfg["dask_files"]), MODELS, "balanced", cfg["dask_pairs"], log=log)
    finally:
        quiet.setLevel(level)


def feedback(cfg: dict, corpus: Path) -> dict:
    import feedback as fb

    return fb.measure(corpus, cfg["feedback_seeds"], log=log)


SECTIONS = {"machine": machine, "analysis": analysis, "scaling": scaling, "rss": rss, "latency": latency,
            "reconcile": reconcile, "db": db_writes, "api": api, "cache": cache, "quality": quality,
            "similarity": similarity,
            "transitions": transitions, "ml_runtime": ml_runtime, "retag": retag, "mediaserver": mediaserver,
            "proxy": proxy, "hardening": hardening, "distributed": distributed, "feedback": feedback}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer files and runs, no 60-min file (~10 min)")
    parser.add_argument("--corpus", help="dev corpus folder (default: $PLAYLISTGEN_CORPUS, ../corpus, or built)")
    parser.add_argument("--only", help="comma-separated sections (a partial report, for development)")
    parser.add_argument("--merge", action="store_true",
                        help="with --only: replace those sections in results.json and re-render the whole report")
    parser.add_argument("--render-only", action="store_true", help="re-render the report from results.json")
    args = parser.parse_args()
    import report

    if args.render_only:
        report.write(json.loads(RESULTS.read_text()), DOC, ASSETS)
        return
    cfg = QUICK if args.quick else FULL
    corpus = find_corpus(args.corpus)
    names = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    results: dict = {"mode": "quick" if args.quick else "full", "sections": {}}
    if args.merge:
        if not args.only or not RESULTS.exists():
            raise SystemExit("--merge needs --only and an existing " + str(RESULTS.relative_to(REPO)))
        results = json.loads(RESULTS.read_text())
        if results["mode"] != ("quick" if args.quick else "full"):
            raise SystemExit(f"--merge: {RESULTS.relative_to(REPO)} holds a {results['mode']} run; use the same mode")
    failed = []
    started = time.perf_counter()
    for name in names:
        log(f"\n== {name}")
        t0 = time.perf_counter()
        try:
            with MachineLoad() as load:
                value = SECTIONS[name](cfg, corpus)
        except (Exception, SystemExit) as exc:  # keep going: the report says which section failed
            traceback.print_exc()
            failed.append(name)
            value = {"error": f"{type(exc).__name__}: {exc}"}
            load = None
        value["_seconds"] = time.perf_counter() - t0
        value["_foreign_share"] = load.foreign_share if load else None
        results["sections"][name] = value
    if not args.merge:
        results["total_s"] = time.perf_counter() - started
    ASSETS.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1, default=float))
    report.write(results, DOC, ASSETS)
    log(f"\nwrote {DOC.relative_to(REPO)} and {ASSETS.relative_to(REPO)}/ in {results['total_s']:.0f} s")
    if failed:
        raise SystemExit(f"sections failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

"""FeatureCache figures on a realistic database: per-track feature reads (the API's access
pattern: a Zipf mix where popular tracks come back often) with and without the cache, per
compression, with a cache large enough for the working set and one that is far too small; then
whole-library reads (the similarity-index build) with and without it.

    .venv/bin/python bench/cache.py [--tracks 5000] [--requests 20000] [--zipf 1.1] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playlistgen.core.observe.metrics import percentile  # noqa: E402
from playlistgen.core.storage.cache import FeatureCache  # noqa: E402
from playlistgen.core.storage.db import Database  # noqa: E402
from playlistgen.core.storage.records import get_many_features, get_track_features  # noqa: E402
from tests.feature_data import populate  # noqa: E402


def workload(ids: list[int], n: int, s: float, seed: int = 7) -> list[int]:
    """``n`` track ids drawn from a Zipf distribution over a shuffled library."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(ids)
    ranks = np.arange(1, len(ids) + 1, dtype=np.float64)
    p = ranks ** -s
    return [int(order[i]) for i in rng.choice(len(ids), size=n, p=p / p.sum())]


def per_track(db: Database, cache: FeatureCache | None, requests: list[int]) -> dict:
    lat = []
    for tid in requests:
        t0 = time.perf_counter()
        get_track_features(db, cache, tid)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    out = {"mean_us": sum(lat) / len(lat) * 1e6, "p50_us": percentile(lat, 50) * 1e6,
           "p95_us": percentile(lat, 95) * 1e6, "hit_rate": None, "entry_b": None, "ratio": None, "evicted": None}
    if cache is not None:
        st = cache.stats()
        out.update(hit_rate=st["hit_rate"], entry_b=st["avg_entry_bytes"], ratio=st["compression_ratio"],
                   evicted=st["evictions"])
    return out


def bulk(db: Database, ids: list[int]) -> list[tuple[str, float]]:
    rows = []
    t0 = time.perf_counter()
    get_many_features(db, None, ids)
    rows.append(("get_many_features, no cache", time.perf_counter() - t0))
    cache = FeatureCache(256, 3600, "lz4")
    t0 = time.perf_counter()
    get_many_features(db, cache, ids)
    rows.append(("get_many_features, cold cache (lz4)", time.perf_counter() - t0))
    t0 = time.perf_counter()
    get_many_features(db, cache, ids)
    rows.append(("get_many_features, warm cache (lz4)", time.perf_counter() - t0))
    try:  # the playlists engineer's one-query catalog loader, when present
        from playlistgen.core.playlists.features import _load_rows

        t0 = time.perf_counter()
        db.read(_load_rows)
        rows.append(("playlists catalog bulk query (rows only)", time.perf_counter() - t0))
    except ImportError:
        pass
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", pool_min=2, pool_max=8, batch_size=256)
        t0 = time.perf_counter()
        ids = populate(db, args.tracks)
        size_mb = (Path(tmp) / "bench.db").stat().st_size / 2**20
        print(f"# bench/cache.py  tracks={args.tracks} (db {size_mb:.0f} MB, built in {time.perf_counter() - t0:.1f} s)"
              f"  requests={args.requests}  zipf s={args.zipf}")
        requests = workload(ids, args.requests, args.zipf)
        print(f"# distinct tracks requested: {len(set(requests))}")
        get_many_features(db, None, ids)  # warm SQLite's page cache for every configuration alike
        configs = [("no cache", None, 0.0)] + [(f"{c}, 64 MB", c, 64.0) for c in ("zlib", "lz4", "none")]
        configs += [(f"{c}, 0.25 MB (too small)", c, 0.25) for c in ("zlib", "lz4")]
        print(f"# each row: the run with the median mean latency of {args.runs} (fresh cache each run)")
        print(f"\n{'per-track reads':28s} {'hit rate':>8s} {'mean µs':>8s} {'p50 µs':>8s} {'p95 µs':>8s} "
              f"{'entry B':>8s} {'ratio':>6s} {'evicted':>8s}")
        for name, comp, size in configs:
            runs = sorted((per_track(db, FeatureCache(size, 3600, comp) if comp else None, requests)
                           for _ in range(args.runs)), key=lambda x: x["mean_us"])
            r = runs[len(runs) // 2]
            hr = f"{r['hit_rate']:.1%}" if r["hit_rate"] is not None else "-"
            evicted = "-" if r["evicted"] is None else r["evicted"]
            print(f"{name:28s} {hr:>8s} {r['mean_us']:8.1f} {r['p50_us']:8.1f} {r['p95_us']:8.1f} "
                  f"{r['entry_b'] or '-':>8} {r['ratio'] or '-':>6} {evicted:>8}")
        print(f"\n{'whole library':45s} {'seconds':>8s}")
        for name, seconds in bulk(db, ids):
            print(f"{name:45s} {seconds:8.3f}")
        db.close()


if __name__ == "__main__":
    main()

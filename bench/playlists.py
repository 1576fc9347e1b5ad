"""Playlist figures on a synthetic library: similarity-index build time and memory at 200k tracks,
p50/p95 latency of 30-track radio (and path, harmonic, similarity, mood) over the in-memory
catalog, then the same through PlaylistService on a real SQLite file (load time of the catalog
from the database, radio end to end including seed lookup and track objects).

    .venv/bin/python bench/playlists.py [--tracks 200000] [--queries 200] [--db-tracks 20000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playlistgen.config import Settings  # noqa: E402
from playlistgen.core.playlists.catalog import SCALARS, build_catalog  # noqa: E402
from playlistgen.core.playlists.diversity import Diversity  # noqa: E402
from playlistgen.core.playlists.registry import run  # noqa: E402
from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService  # noqa: E402
from playlistgen.core.storage.db import Database  # noqa: E402
from playlistgen.core.threads import single_threaded_blas  # noqa: E402

LABELS = ["rock", "pop", "electronic", "jazz", "chill", "dance", "ambient", "metal", "happy", "sad", "party",
          "Mellow", "acoustic", "House", "Hip-Hop", "folk", "instrumental", "soul", "punk", "blues"]
CODES = [f"{n}{letter}" for n in range(1, 13) for letter in "AB"]
WEIGHTS = {"scalars": 1.0, "mfcc": 1.0, "chroma": 0.5, "embedding": 2.0}


def synthetic_columns(n: int, rng: np.random.Generator, styles: int = 40) -> dict:
    """Columns shaped like an analysed library: tracks around ``styles`` centres, 10 % preset fast."""
    style = rng.integers(0, styles, n)
    centres = rng.normal(0, 1, (styles, 200)).astype(np.float32)
    emb = centres[style] + rng.normal(0, 0.6, (n, 200)).astype(np.float32)
    has_emb = rng.random(n) > 0.1
    style_bpm = rng.uniform(65, 160, styles)
    scalars = {name: rng.random(n).astype(np.float32) for name in SCALARS}
    scalars["bpm"] = (style_bpm[style] * rng.uniform(0.93, 1.07, n)).astype(np.float32)
    scalars["loudness_lufs"] = rng.uniform(-30, -6, n).astype(np.float32)
    scalars["spectral_centroid"] = rng.uniform(500, 4000, n).astype(np.float32)
    scalars["spectral_rolloff"] = rng.uniform(1000, 9000, n).astype(np.float32)
    tag_centres = rng.random((styles, len(LABELS))).astype(np.float32) ** 3
    tags = np.clip(tag_centres[style] + rng.normal(0, 0.05, (n, len(LABELS))), 0, 1).astype(np.float32)
    tags[~has_emb] = 0
    artists = [f"Artist {i}" for i in rng.integers(0, n // 8 + 1, n)]
    return {"style": style, "emb": emb, "has_emb": has_emb, "scalars": scalars, "tags": tags, "artists": artists,
            "mfcc": rng.normal(0, 1, (n, 26)).astype(np.float32), "chroma": rng.random((n, 12)).astype(np.float32),
            "camelot": [CODES[i] for i in rng.integers(0, 24, n)], "duration": rng.uniform(120, 420, n)}


def build(n: int, cols: dict):  # type: ignore[no-untyped-def]
    return build_catalog(
        key=("bench",), track_ids=np.arange(1, n + 1), weights=WEIGHTS,
        meta={"artist": cols["artists"], "album": [f"{a} LP" for a in cols["artists"]],
              "title": [f"Song {i}" for i in range(n)], "genre": [None] * n, "year": [2000] * n,
              "track_number": [1] * n, "duration_s": list(cols["duration"])},
        scalars=cols["scalars"],
        vectors={"mfcc": (cols["mfcc"], np.ones(n, bool)), "chroma": (cols["chroma"], np.ones(n, bool)),
                 "embedding": (cols["emb"], cols["has_emb"])},
        keys={"camelot": cols["camelot"], "key": ["C"] * n, "scale": ["minor" if c[-1] == "A" else "major"
                                                                     for c in cols["camelot"]]},
        tags=cols["tags"], tag_labels=LABELS)


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"p50 {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


def time_calls(fn, queries: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(queries):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def in_memory(n: int, queries: int) -> None:
    rng = np.random.default_rng(0)
    proc = psutil.Process()
    cols = synthetic_columns(n, rng)
    gc.collect()
    rss_before = proc.memory_info().rss
    started = time.perf_counter()
    cat = build(n, cols)
    build_s = time.perf_counter() - started
    del cols
    gc.collect()
    rss_after = proc.memory_info().rss
    print(f"catalog: {n:,} tracks × {cat.X.shape[1]} dims, build {build_s:.2f} s, "
          f"arrays {cat.memory_bytes() / 1e6:.0f} MB (X {cat.X.nbytes / 1e6:.0f} MB), "
          f"process RSS {rss_after / 1e6:.0f} MB (was {rss_before / 1e6:.0f} MB with the inputs)")
    seeds = rng.integers(0, n, queries * 2)
    rules = Diversity(3, 2, 0, True)
    cases = {
        "radio (1 seed)": lambda i: run(cat, "radio", seeds=[int(seeds[i])], size=30, rules=rules),
        "radio (3 seeds)": lambda i: run(cat, "radio", seeds=[int(s) for s in seeds[i:i + 3]], size=30, rules=rules),
        "similarity": lambda i: run(cat, "similarity", seeds=[int(seeds[i])], size=30, rules=rules),
        "path": lambda i: run(cat, "path", seeds=[int(seeds[i]), int(seeds[-i - 1])], size=30, rules=rules),
        "harmonic": lambda i: run(cat, "harmonic", seeds=[int(seeds[i])], size=30, rules=rules),
        "mood": lambda i: run(cat, "mood", size=30, params={"tags": ["chill"]}, rules=rules),
    }
    for name, fn in cases.items():
        count = queries if name.startswith(("radio", "similarity")) else max(queries // 4, 10)
        fn(0)  # warm-up
        print(f"  {name:16} {percentiles(time_calls(fn, count))}")
    started = time.perf_counter()
    run(cat, "clusters", size=30, params={"k": 8}, random_seed=0)
    print(f"  clusters k=8     first call {time.perf_counter() - started:.2f} s (k-means, then cached per snapshot)")


def write_database(path: Path, n: int, rng: np.random.Generator) -> dict:
    """A SQLite library of ``n`` synthetic analysed tracks (one done file each, 20 MSD-style tags)."""
    cols = synthetic_columns(n, rng)
    db = Database(path, pool_min=1, pool_max=4, batch_size=1)

    def insert(conn) -> None:  # type: ignore[no-untyped-def]
        conn.executemany("INSERT INTO tracks(id, fingerprint, artist, album, title, duration_s) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         [(i + 1, f"fp{i}", cols["artists"][i], "LP", f"Song {i}", float(cols["duration"][i]))
                          for i in range(n)])
        conn.executemany("INSERT INTO files(path, size, mtime_ns, fingerprint, status, track_id) "
                         "VALUES (?, 1, 1, ?, 'done', ?)",
                         [(f"/music/{i}.flac", f"fp{i}", i + 1) for i in range(n)])
        names = [*SCALARS, "mfcc_mean", "mfcc_std", "chroma", "embedding", "camelot"]
        conn.executemany(
            f"INSERT INTO features(track_id, analyzer_version, preset, {', '.join(names)}) "
            f"VALUES ({', '.join('?' * (len(names) + 3))})",
            [(i + 1, "bench", "balanced", *(float(cols["scalars"][s][i]) for s in SCALARS),
              cols["mfcc"][i, :13].tobytes(), cols["mfcc"][i, 13:].tobytes(), cols["chroma"][i].tobytes(),
              cols["emb"][i].tobytes() if cols["has_emb"][i] else None, cols["camelot"][i]) for i in range(n)])
        conn.executemany("INSERT INTO tags(track_id, source, label, probability) VALUES (?, 'msd', ?, ?)",
                         [(i + 1, label, float(cols["tags"][i, j])) for i in range(n) if cols["has_emb"][i]
                          for j, label in enumerate(LABELS)])

    db.write(insert)
    db.close()
    return cols


def with_database(n: int, queries: int) -> None:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_database(Path(tmp) / "bench.db", n, rng)
        print(f"database: {n:,} tracks written in {time.perf_counter() - started:.1f} s")
        db = Database(Path(tmp) / "bench.db", pool_min=1, pool_max=4)
        settings = Settings()
        service = PlaylistService(db, settings)
        started = time.perf_counter()
        service.index.refresh()
        print(f"  catalog load from SQLite  {time.perf_counter() - started:.2f} s")
        ids = rng.integers(1, n + 1, queries)
        def radio(i: int) -> dict:
            return service.generate(PlaylistRequest.of("radio", settings, seeds=[int(ids[i])], size=30))

        radio(0)
        samples = time_calls(radio, queries)
        print(f"  service radio (30 tracks) {percentiles(samples)}")
        db.close()


def main() -> None:
    single_threaded_blas()  # as `serve` runs it
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--db-tracks", type=int, default=20_000)
    args = parser.parse_args()
    print(f"# bench/playlists.py  tracks={args.tracks:,} queries={args.queries} db-tracks={args.db_tracks:,}")
    in_memory(args.tracks, args.queries)
    if args.db_tracks:
        with_database(args.db_tracks, args.queries)


if __name__ == "__main__":
    main()

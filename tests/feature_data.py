"""Analysed libraries without running the analyzer: realistic result dicts (every §6 field, a
200-d embedding, 50 MSD tags) stored through the real write path (files rows + JobQueue.complete).
Used by the cache/performance tests and by bench/cache.py."""

from __future__ import annotations

import numpy as np

from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.jobs import Job, JobQueue

MSD_LABELS = [f"tag{i:02d}" for i in range(50)]
CAMELOT_KEYS = [("A", "minor", "8A"), ("C", "major", "8B"), ("E", "minor", "9A"), ("G", "major", "9B"),
                ("D", "minor", "7A"), ("F", "major", "7B")]
VERSION = "essentia-1.0.0"


def fake_result(i: int, *, preset: str = "balanced", rng: np.random.Generator | None = None) -> dict:
    rng = rng or np.random.default_rng(i)
    key, scale, camelot = CAMELOT_KEYS[i % len(CAMELOT_KEYS)]
    probs = rng.random(50) ** 3
    return {
        "duration_s": 120.0 + (i % 200), "bpm": 70.0 + (i * 7) % 110, "bpm_confidence": 0.8,
        "key": key, "scale": scale, "key_strength": 0.7, "camelot": camelot,
        "loudness_lufs": -14.0 + rng.normal(), "loudness_range": 6.0, "dynamic_complexity": 3.0,
        "danceability": float(rng.random()), "energy": float(rng.random()), "spectral_centroid": 2000.0,
        "spectral_rolloff": 4000.0, "spectral_flatness": 0.1, "zcr": 0.05,
        "valence": float(rng.random()), "acousticness": float(rng.random()), "instrumentalness": float(rng.random()),
        "mfcc_mean": rng.normal(size=13).tolist(), "mfcc_std": rng.random(13).tolist(),
        "chroma": rng.random(12).tolist(),
        "embedding": rng.normal(size=200).tolist() if preset != "fast" else None,
        "tags": {"msd": dict(zip(MSD_LABELS, probs.tolist(), strict=True))} if preset != "fast" else {},
        "analyzer_version": VERSION, "preset": preset,
        "metadata": {"artist": f"Artist {i % 97}", "album": f"Album {i % 311}", "title": f"Song {i}",
                     "genre": ("jazz", "rock", "ambient")[i % 3], "year": 1980 + i % 40, "track_number": i % 12 + 1},
        "timings": {"decode_s": 0.05, "dsp_s": 0.2, "ml_s": 0.4}, "cpu_s": 0.7,
        "worker": {"pid": 1, "rss_mb": 300.0, "wall_s": 0.7, "cpu_s": 0.7},
    }


def populate(db: Database, n: int, *, start: int = 0, preset: str = "balanced", root: str = "/music") -> list[int]:
    """Add ``n`` analysed tracks; returns their track ids."""
    rows = db.write(lambda c: c.executemany(
        "INSERT INTO files(path, size, mtime_ns, fingerprint, status) VALUES (?, ?, ?, ?, 'analysing') "
        "RETURNING id, path, fingerprint",
        [(f"{root}/{i:06d}.flac", 1000 + i, i, f"fp{i:06d}") for i in range(start, start + n)]).fetchall())
    queue = JobQueue(db, VERSION)
    futures = [queue.complete(Job(fid, path, fp), AnalysisResult.from_dict(fake_result(start + k, preset=preset)))
               for k, (fid, path, fp) in enumerate(rows)]
    for f in futures:
        f.result()
    ids = db.query("SELECT track_id FROM files WHERE path >= ? AND path < ? ORDER BY path",
                   (f"{root}/{start:06d}", f"{root}/{start + n:06d}"))
    return [r[0] for r in ids]

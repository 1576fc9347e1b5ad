"""FeatureCache: the compressed byte bound, TTL expiry and the purge thread, stats, codecs, and
keys that make a stale entry impossible after a file change or a new analyzer version (real
SQLite, real write path)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.storage.cache import FeatureCache
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.jobs import Job, JobQueue
from playlistgen.core.storage.records import get_many_features, get_track_features
from playlistgen.errors import ConfigError
from tests.feature_data import VERSION, fake_result, populate


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def blob_value(i: int) -> dict:
    rng = np.random.default_rng(i)   # random floats: barely compressible, like real embeddings
    return {"id": i, "embedding": rng.normal(size=200).astype("<f4").tobytes()}


@pytest.mark.parametrize("compression", ["zlib", "lz4", "none"])
def test_compressed_size_bound_is_never_exceeded(compression: str) -> None:
    cache = FeatureCache(0, 3600, compression, max_bytes=20_000)
    for i in range(200):
        assert cache.put(("k", i), blob_value(i))
        stats = cache.stats()
        assert stats["size_bytes"] <= 20_000
    stats = cache.stats()
    assert stats["evictions"] > 0 and stats["entries"] == 200 - stats["evictions"]
    assert stats["size_bytes"] > 20_000 * 0.8    # and it is used, not left mostly empty
    # LRU: the newest entries survive, the oldest were evicted
    assert cache.get(("k", 199)) == blob_value(199)
    assert cache.get(("k", 0)) is None
    assert stats["compression"] == compression


def test_compression_counts_toward_the_bound() -> None:
    compressible = {"text": "la " * 5000}   # 15 kB raw, tiny compressed
    for name in ("zlib", "lz4"):
        cache = FeatureCache(0, 60, name, max_bytes=4096)
        assert cache.put("a", compressible) and cache.get("a") == compressible
        assert cache.stats()["size_bytes"] < 4096 < len(compressible["text"])
        assert cache.stats()["compression_ratio"] > 10
    raw = FeatureCache(0, 60, "none", max_bytes=4096)
    assert raw.put("a", compressible) is False        # does not fit uncompressed
    assert raw.stats()["too_large"] == 1 and raw.get("a") is None


def test_ttl_expiry_stats_and_clear() -> None:
    clock = Clock()
    cache = FeatureCache(1, 10, "lz4", timer=clock)
    cache.put("a", {"v": 1})
    assert cache.get("a") == {"v": 1}
    clock.t = 5
    cache.put("b", {"v": 2})
    clock.t = 10.5                                      # "a" expired, "b" has 4.5 s left
    assert cache.get("a") is None and cache.get("b") == {"v": 2}
    assert cache.purge_expired() == 1
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["expirations"], stats["entries"]) == (2, 1, 1, 1)
    assert stats["hit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    cleared = cache.clear()
    assert cleared["cleared_entries"] == 1 and cache.stats()["entries"] == 0 and cache.get("b") is None


def test_get_returns_a_private_copy() -> None:
    cache = FeatureCache(1, 60)
    cache.put("k", {"tags": {"rock": 0.5}})
    cache.get("k")["tags"]["rock"] = 1.0
    assert cache.get("k") == {"tags": {"rock": 0.5}}


def test_background_purge_thread_removes_expired_entries() -> None:
    cache = FeatureCache(1, 0.2, "zlib")
    cache.start_purger(interval_s=0.05)
    try:
        for i in range(10):
            cache.put(i, {"i": i})
        assert cache.stats()["purger_running"]
        deadline = time.monotonic() + 5
        while cache.stats()["entries"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.stats()["entries"] == 0 and cache.stats()["expirations"] == 10
    finally:
        cache.stop_purger()
    assert not cache.stats()["purger_running"]


def test_disabled_cache_and_missing_lz4(monkeypatch: pytest.MonkeyPatch) -> None:
    off = FeatureCache(0, 60)
    assert not off.enabled and off.put("a", 1) is False and off.get("a") is None
    assert off.stats()["misses"] == 1
    monkeypatch.setitem(sys.modules, "lz4", None)          # as if lz4 were not installed
    monkeypatch.setitem(sys.modules, "lz4.block", None)
    with pytest.raises(ConfigError, match="cache.compression.*lz4"):
        FeatureCache(1, 60, "lz4")


def test_track_features_hit_and_equal_to_database(database: Database) -> None:
    ids = populate(database, 30)
    cache = FeatureCache(8, 3600, "lz4")
    first = get_track_features(database, cache, ids[3])
    second = get_track_features(database, cache, ids[3])
    direct = get_track_features(database, None, ids[3])
    expected = fake_result(3)
    for record in (first, second, direct):
        assert record["title"] == "Song 3" and record["bpm"] == expected["bpm"]
        np.testing.assert_allclose(record["embedding"], expected["embedding"], rtol=1e-6)
        assert record["tags"]["msd"] == pytest.approx(expected["tags"]["msd"])
        assert record["path"] == "/music/000003.flac"
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1
    assert get_track_features(database, cache, 10**6) is None
    many = get_many_features(database, cache, ids)
    assert sorted(many) == sorted(ids) and cache.stats()["hits"] == 2


def test_changed_file_or_new_analyzer_version_is_never_served_stale(database: Database) -> None:
    ids = populate(database, 3)
    cache = FeatureCache(8, 3600)
    before = get_track_features(database, cache, ids[0])
    assert before["bpm"] == fake_result(0)["bpm"]
    queue = JobQueue(database, VERSION)

    # 1. the same track re-analysed with another preset: a new key
    (fid,) = database.query("SELECT id FROM files WHERE track_id = ?", (ids[0],))[0]
    database.write(lambda c: c.execute("UPDATE files SET status = 'analysing' WHERE id = ?", (fid,)))
    changed = fake_result(0, preset="accurate")
    changed["bpm"] = 99.5
    queue.complete(Job(fid, "/music/000000.flac", "fp000000"), AnalysisResult.from_dict(changed)).result()
    assert get_track_features(database, cache, ids[0])["bpm"] == 99.5

    # 2. a new analyzer version: the newest row wins, and asking for a version gets that version
    newer = fake_result(0)
    newer.update(analyzer_version="essentia-2.0.0", bpm=120.0)
    database.write(lambda c: c.execute("UPDATE files SET status = 'analysing' WHERE id = ?", (fid,)))
    JobQueue(database, "essentia-2.0.0").complete(Job(fid, "/music/000000.flac", "fp000000"),
                                                  AnalysisResult.from_dict(newer)).result()
    assert get_track_features(database, cache, ids[0])["bpm"] == 120.0
    assert get_track_features(database, cache, ids[0], analyzer_version=VERSION)["bpm"] == 99.5

    # 3. the file's content changed: new fingerprint, a new track; the path follows the file
    database.write(lambda c: c.execute(
        "UPDATE files SET status = 'analysing', fingerprint = 'fp-new' WHERE id = ?", (fid,)))
    edited = fake_result(0)
    edited["bpm"] = 140.0
    queue.complete(Job(fid, "/music/000000.flac", "fp-new"), AnalysisResult.from_dict(edited)).result()
    (new_track,) = database.query("SELECT track_id FROM files WHERE id = ?", (fid,))[0]
    assert new_track != ids[0]
    assert get_track_features(database, cache, new_track)["bpm"] == 140.0
    old = get_track_features(database, cache, ids[0])
    assert old["path"] is None          # no file points at the old content any more

    # 4. a moved file: the cached record is reused, the path is read fresh
    database.write(lambda c: c.execute("UPDATE files SET path = '/music/moved.flac' WHERE id = ?", (fid,)))
    hits = cache.stats()["hits"]
    assert get_track_features(database, cache, new_track)["path"] == "/music/moved.flac"
    assert cache.stats()["hits"] == hits + 1

"""The stored track record in one place: field names (the analysis contract, DESIGN §6: the
analyzer's field lists and the typed result derive from these), the float32 blob codec, the SQL
fragments for "a live track" and "its newest features row", and the per-track read paths
(:func:`get_many_features`, :func:`get_track_features`) that go through a cache
(:class:`playlistgen.core.storage.cache.FeatureCache`) when one is given.

SQL fragments assume the aliases ``t`` (tracks) and ``f`` (features).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .files import live

SCALAR_FEATURES = (
    "duration_s", "bpm", "bpm_confidence", "key", "scale", "key_strength", "camelot", "loudness_lufs",
    "loudness_range", "dynamic_complexity", "danceability", "energy", "spectral_centroid",
    "spectral_rolloff", "spectral_flatness", "zcr", "valence", "acousticness", "instrumentalness",
    "mixramp_start", "mixramp_end",   # strings: MPD fade hints (migration 0007; NULL before it)
)
VECTOR_FEATURES = ("mfcc_mean", "mfcc_std", "chroma", "embedding")
LABELS = "tags"    # {source: {label: probability}}, stored in the tags table
# What the library's "sounds like" projection is fitted from (migration 0008, core/similarity):
# the spread of the track's patch embeddings ([rows][dims], float16 blob: SPREAD_ROWS), how many
# patches the embedding averaged, and the MTT embedding mean (float32[200]) where the preset runs
# MTT. The spread is of the MSD embedding (200-d), or of MSD‖MTT (400-d) when embedding_mtt is set.
ADAPTATION_FEATURES = ("embedding_spread", "embedding_patches", "embedding_mtt")
FEATURES = (*SCALAR_FEATURES, *VECTOR_FEATURES, LABELS, *ADAPTATION_FEATURES)   # every analysed value per track
ML_FEATURES = ("embedding", "tags", "valence", "acousticness", "instrumentalness",
               *ADAPTATION_FEATURES)   # None without ML
EMBEDDING_DIMS = 200
SPREAD_ROWS = {EMBEDDING_DIMS: 12, 2 * EMBEDDING_DIMS: 6}   # dims → rows kept: ≤ 4800 bytes a track
# tracks columns read from the file's tags; OPTIONAL_METADATA came with later migrations (0005)
METADATA = ("artist", "album", "title", "genre", "year", "track_number")
OPTIONAL_METADATA = ("musicbrainz_trackid",)

# a track is live when at least one of its files is present and analysed
LIVE = f"EXISTS (SELECT 1 FROM files fl WHERE fl.track_id = t.id AND {live('fl')})"
# join condition: the newest features row of track t
NEWEST_FEATURES = "f.id = (SELECT max(id) FROM features WHERE track_id = t.id)"
# one current path of track t (paths change on moves, so they are never cached)
CURRENT_PATH = f"(SELECT fl.path FROM files fl WHERE fl.track_id = t.id AND {live('fl')} ORDER BY fl.id LIMIT 1)"
# a sub-select: the newest features row of every live track (columns of features)
LIVE_FEATURES = (f"SELECT f.* FROM tracks t JOIN features f ON {NEWEST_FEATURES} WHERE {LIVE}")

_IN_CHUNK = 500    # ids per IN (...) list, well under SQLite's variable limit


def to_blob(values: object) -> bytes | None:
    """A vector as little-endian float32 bytes (None stays None)."""
    if values is None:
        return None
    return np.asarray(values, dtype="<f4").tobytes()


def from_blob(blob: bytes | None) -> np.ndarray | None:
    """Little-endian float32 bytes → a read-only numpy view (None stays None)."""
    return None if blob is None else np.frombuffer(blob, dtype="<f4")


_HALF_MAX = 65504.0   # the largest finite float16


def half_values(matrix: object) -> list[list[float]]:
    """A matrix as rows of floats that are exactly float16 values, printed short: ``%.5g`` of a
    float16 reads back as the same float16, so JSON and the stored blob agree bit for bit."""
    half = np.clip(np.asarray(matrix, dtype=np.float64), -_HALF_MAX, _HALF_MAX).astype("<f2")
    return [[float(f"{v:.5g}") for v in row.tolist()] for row in half]


def to_half_blob(matrix: object) -> bytes | None:
    """Rows of a matrix as little-endian float16 bytes, row after row (None stays None)."""
    if matrix is None:
        return None
    return np.clip(np.asarray(matrix, dtype=np.float64), -_HALF_MAX, _HALF_MAX).astype("<f2").tobytes()


def spread_dims(embedding_mtt: object) -> int:
    """The width of a stored spread: MSD‖MTT (400) when the row has an MTT embedding, else MSD (200)."""
    return 2 * EMBEDDING_DIMS if embedding_mtt is not None else EMBEDDING_DIMS


def spread_from_blob(blob: bytes | None, dims: int) -> np.ndarray | None:
    """A stored spread → float32 [rows, dims] (0 rows: a one-patch track; None: not computed yet —
    an older row the background upgrade has not reached)."""
    if blob is None:
        return None
    return np.frombuffer(blob, dtype="<f2").reshape(-1, dims).astype(np.float32)


def library_state(db: Any) -> tuple:
    """A key that changes whenever analysed files, features, tags or track metadata change (one
    cheap query): caches of whole-library results are keyed by it."""
    return tuple(db.query(
        f"SELECT (SELECT count(*) FROM files WHERE {live()}), (SELECT max(updated_at) FROM files), "
        "(SELECT max(id) FROM features), (SELECT count(*) FROM features), (SELECT max(updated_at) FROM tracks)")[0])


# ----------------------------------------------------------------------------- read paths

def track_key(track_id: int, fingerprint: str, analyzer_version: str, preset: str) -> tuple:
    return ("track", int(track_id), fingerprint, analyzer_version, preset)


_FEATURE_COLUMNS = ("analyzer_version", "preset", *SCALAR_FEATURES, *VECTOR_FEATURES)
_TRACK_COLUMNS = ("id", "fingerprint", *METADATA)


def _keys_sql(n: int, version: str | None) -> str:
    # One row per track: the newest features row of the wanted analyzer version (any if None),
    # plus one current path (paths change on moves, so they are never cached).
    cond = "AND f2.analyzer_version = ?" if version else ""
    return (
        "SELECT t.id, t.fingerprint, f.analyzer_version, f.preset, f.id, "
        f"{CURRENT_PATH} "
        f"FROM tracks t JOIN features f ON f.id = (SELECT max(f2.id) FROM features f2 WHERE f2.track_id = t.id {cond}) "
        f"WHERE t.id IN ({','.join('?' * n)})"
    )


def _load_records(conn: Any, feature_ids: dict[int, int]) -> dict[int, dict]:
    """The heavy part: metadata, every feature column and all tags. ``feature_ids`` maps track id →
    the features row to read. Vectors stay little-endian float32 bytes here — that is what the
    cache stores (smaller and ~5× faster to unpickle than numpy arrays); :func:`_finish` makes the
    arrays for the caller."""
    out: dict[int, dict] = {}
    items = list(feature_ids.items())
    for start in range(0, len(items), _IN_CHUNK):
        part = items[start:start + _IN_CHUNK]
        marks = ",".join("?" * len(part))
        sql = (f"SELECT {', '.join('t.' + c for c in _TRACK_COLUMNS)}, {', '.join('f.' + c for c in _FEATURE_COLUMNS)}"
               f" FROM features f JOIN tracks t ON t.id = f.track_id WHERE f.id IN ({marks})")
        for row in conn.execute(sql, [fid for _, fid in part]):
            record = dict(zip(_TRACK_COLUMNS + _FEATURE_COLUMNS, row, strict=True))  # vectors stay bytes
            record["tags"] = {}
            out[record["id"]] = record
        for track_id, source, label, p in conn.execute(
                f"SELECT track_id, source, label, probability FROM tags WHERE track_id IN ({marks}) "
                "ORDER BY track_id, source, probability DESC", [tid for tid, _ in part]):
            if track_id in out:
                out[track_id]["tags"].setdefault(source, {})[label] = p
    return out


def _finish(record: dict, path: str | None) -> dict:
    out = dict(record)
    for name in VECTOR_FEATURES:
        out[name] = from_blob(out[name])   # read-only views: a caller cannot alter shared data
    out["path"] = path
    return out


def get_many_features(db: Any, cache: Any | None, track_ids: Iterable[int],
                      analyzer_version: str | None = None) -> dict[int, dict]:
    """Feature records for many tracks ({track_id: record}); tracks without features are absent.

    A record holds id, fingerprint, artist, album, title, genre, year, track_number, every scalar
    feature, ``mfcc_mean``/``mfcc_std``/``chroma``/``embedding`` as float32 numpy arrays (or None),
    ``tags`` {source: {label: probability}} (highest first), analyzer_version, preset and ``path``.
    Pass ``cache=None`` to read without caching.
    """
    ids = list(dict.fromkeys(int(i) for i in track_ids))
    if not ids:
        return {}

    def read(conn: Any) -> dict[int, dict]:
        keys: dict[int, tuple] = {}     # track id → (cache key, features row id, current path)
        for start in range(0, len(ids), _IN_CHUNK):
            part = ids[start:start + _IN_CHUNK]
            params = [analyzer_version, *part] if analyzer_version else part
            for tid, fp, version, preset, fid, path in conn.execute(_keys_sql(len(part), analyzer_version), params):
                keys[tid] = (track_key(tid, fp, version, preset), fid, path)
        found: dict[int, dict] = {}
        missing: dict[int, int] = {}
        for tid, (key, fid, _) in keys.items():
            record = cache.get(key) if cache is not None else None
            if record is None:
                missing[tid] = fid
            else:
                found[tid] = record
        if missing:
            loaded = _load_records(conn, missing)
            if cache is not None:
                for tid, record in loaded.items():
                    cache.put(keys[tid][0], record)
            found.update(loaded)
        return {tid: _finish(record, keys[tid][2]) for tid, record in found.items()}

    return db.read(read)


def get_track_features(db: Any, cache: Any | None, track_id: int,
                       analyzer_version: str | None = None) -> dict | None:
    """One track's feature record (see :func:`get_many_features`), or None when it has none."""
    return get_many_features(db, cache, [track_id], analyzer_version).get(int(track_id))


def get_adaptation(db: Any, track_ids: Iterable[int]) -> dict[int, dict]:
    """What the "sounds like" projection is fitted from, per track (newest features row; never
    cached — read in bulk by the fit and by `export`): {track_id: {"embedding_spread": float32
    [rows, dims] or None (not computed yet), "embedding_patches": int or None, "embedding_mtt":
    float32[200] or None}}. Tracks without features are absent."""
    ids = list(dict.fromkeys(int(i) for i in track_ids))

    def read(conn: Any) -> dict[int, dict]:
        out: dict[int, dict] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            part = ids[start:start + _IN_CHUNK]
            for tid, spread, patches, mtt in conn.execute(
                    "SELECT t.id, f.embedding_spread, f.embedding_patches, f.embedding_mtt FROM tracks t "
                    f"JOIN features f ON {NEWEST_FEATURES} WHERE t.id IN ({','.join('?' * len(part))})", part):
                out[tid] = {"embedding_spread": spread_from_blob(spread, spread_dims(mtt)),
                            "embedding_patches": patches, "embedding_mtt": from_blob(mtt)}
        return out

    return db.read(read) if ids else {}

"""Read the catalog from SQLite: every *live* track (at least one file with status 'done'), its
newest features row and its tags. Files that went missing or failed never reach the catalog, and
the final track lookup (``tracks.track_objects``) checks liveness again, so a file that vanished
since the last rebuild is not returned either."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import apsw
import numpy as np

from ..similarity.space import Space, select
from ..storage.db import Database
from ..storage.records import LIVE, METADATA, NEWEST_FEATURES, VECTOR_FEATURES
from .catalog import SCALARS, VECTOR_DIMS, Catalog, build_catalog

# chooses the embedding space once the rows are read: (tracks with an embedding, all of them with MTT)
SpaceChooser = Callable[[int, bool], Space]

log = logging.getLogger(__name__)


def _stack(blobs: list[bytes | None], dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Blobs of float32[dims] → (n, dims) array and a presence mask; wrong-sized blobs count as absent."""
    has = np.array([b is not None and len(b) == dims * 4 for b in blobs], dtype=bool)
    out = np.zeros((len(blobs), dims), dtype=np.float32)
    if has.any():
        joined = b"".join(b for b, ok in zip(blobs, has, strict=True) if ok)
        out[has] = np.frombuffer(joined, dtype="<f4").reshape(-1, dims)
    return out, has


def _load_rows(conn: apsw.Connection) -> tuple[list[tuple], list[tuple[str, list[tuple]]]]:
    columns = ["t.id", *(f"t.{m}" for m in METADATA), "coalesce(f.duration_s, t.duration_s)",
               *(f"f.{s}" for s in SCALARS), "f.key", "f.scale", "f.camelot", *(f"f.{b}" for b in VECTOR_FEATURES),
               "f.embedding_mtt"]
    rows = conn.execute(
        f"SELECT {', '.join(columns)} FROM tracks t "
        f"JOIN features f ON {NEWEST_FEATURES} "
        f"WHERE {LIVE} ORDER BY t.id").fetchall()
    # all tags, one label at a time (numeric pairs convert to numpy fast); rows of tracks that are
    # not live are dropped when matched against the track ids
    labels = [r[0] for r in conn.execute("SELECT DISTINCT label FROM tags")]
    tags = [(label, conn.execute("SELECT track_id, probability FROM tags WHERE label = ?", (label,)).fetchall())
            for label in labels]
    return rows, tags


def space_chooser(db: Database, mode: str = "auto", min_tracks: int = 30) -> SpaceChooser:
    """The projection choice of core/similarity for this database and settings."""
    return lambda embedded, all_mtt: select(db, mode=mode, min_tracks=min_tracks, embedded=embedded,
                                            all_mtt=all_mtt)


def load_catalog(db: Database, key: tuple, weights: dict[str, float], metric: str = "euclidean",
                 choose: SpaceChooser | None = None) -> Catalog:
    """One consistent read (a single read transaction) turned into a Catalog; ``choose`` picks
    the projection of the embedding (default: the library's, as ``similarity.*`` defaults say)."""

    def read(conn: apsw.Connection) -> tuple[list[tuple], list[tuple[str, list[tuple]]]]:
        with conn:  # one snapshot for both queries
            return _load_rows(conn)

    rows, tag_rows = db.read(read)
    return catalog_from_rows(rows, tag_rows, key, weights, metric, choose or space_chooser(db))


def catalog_from_rows(rows: list[tuple], tag_rows: list[tuple[str, list[tuple]]], key: tuple, weights: dict[str, float],
                      metric: str = "euclidean", choose: SpaceChooser | None = None) -> Catalog:
    """``choose(embedded, all_mtt)`` gives the embedding's space (None: the raw embedding)."""
    n = len(rows)
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else \
        [()] * (2 + len(METADATA) + len(SCALARS) + 3 + len(VECTOR_FEATURES) + 1)
    track_ids = np.array(cols[0], dtype=np.int64)
    meta = {name: list(cols[1 + i]) for i, name in enumerate(METADATA)}
    meta["duration_s"] = list(cols[1 + len(METADATA)])
    base = 2 + len(METADATA)
    scalars = {name: np.array(cols[base + i], dtype=np.float32) for i, name in enumerate(SCALARS)}  # None → NaN
    base += len(SCALARS)
    keys = {"key": list(cols[base]), "scale": list(cols[base + 1]), "camelot": list(cols[base + 2])}
    base += 3
    mfcc_mean, has_mean = _stack(list(cols[base]), 13)
    mfcc_std, has_std = _stack(list(cols[base + 1]), 13)
    vectors = {"mfcc": (np.hstack([mfcc_mean, mfcc_std]), has_mean & has_std),
               "chroma": _stack(list(cols[base + 2]), VECTOR_DIMS["chroma"]),
               "embedding": _stack(list(cols[base + 3]), VECTOR_DIMS["embedding"])}
    embedding, has = vectors["embedding"]
    mtt, has_mtt = _stack(list(cols[base + 4]), VECTOR_DIMS["embedding"])
    space = choose(int(has.sum()), bool(has.any() and has_mtt[has].all())) if choose else Space(None, "not chosen")
    vectors["embedding"] = space.vectors(embedding, has, mtt, has_mtt)
    # one column per label, case-insensitively (MSD "Mellow" and a lower-case MTT label are one tag)
    column: dict[str, int] = {}
    tag_labels: list[str] = []
    for label in sorted({label for label, _ in tag_rows}, key=str.casefold):
        if label.casefold() not in column:
            column[label.casefold()] = len(tag_labels)
            tag_labels.append(label)
    tags = np.zeros((n, len(tag_labels)), dtype=np.float32)
    for label, pairs in tag_rows:
        if not pairs or not n:
            continue
        data = np.array(pairs, dtype=np.float64)
        data = data[np.argsort(data[:, 1], kind="stable")]  # msd and mtt may both have it: the max is written last
        ids = data[:, 0].astype(np.int64)
        pos = np.minimum(np.searchsorted(track_ids, ids), n - 1)
        ok = track_ids[pos] == ids
        col = column[label.casefold()]
        tags[pos[ok], col] = np.maximum(tags[pos[ok], col], data[ok, 1])
    # a projected embedding keeps its columns' relative scale (that is what the fit learnt)
    catalog = build_catalog(key=key, track_ids=track_ids, meta=meta, scalars=scalars, vectors=vectors, keys=keys,
                            tags=tags, tag_labels=tag_labels, weights=weights, metric=metric,
                            isotropic={"embedding"} if space.projection is not None else set())
    catalog.space = space
    log.debug("catalog: %d tracks, %d tag labels, embedding: %s", n, len(tag_labels), space.describe())
    return catalog

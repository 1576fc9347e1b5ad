"""The ``similarity_projections`` table (migration 0008): fitted projections with their
representation, algorithm version and the number of tracks they saw. The newest few per
representation are kept (an older one helps to compare after a refit); the newest of the current
``VERSION`` is the one used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .lda import Projection

log = logging.getLogger(__name__)

VERSION = 1          # the fit's algorithm: track-identity LDA, shrinkage 0.1, all dimensions kept
KEEP = 3             # projections kept per representation
REPRESENTATIONS = ("msd", "msd+mtt")


@dataclass(frozen=True)
class StoredProjection:
    id: int                 # row id; the shipped projection has id 0
    representation: str     # 'msd' or 'msd+mtt'
    source: str             # 'library' or 'shipped'
    tracks: int
    created_at: float
    projection: Projection
    fit_s: float | None = None   # seconds the fit took (only known right after fitting)

    @property
    def key(self) -> tuple:
        """What the catalog's cache key holds: a refit (a new row) changes it."""
        return (self.source, self.id, self.representation)

    def describe(self) -> str:
        if self.source == "shipped":
            return f"shipped projection ({self.representation}, fitted on {self.tracks} freely licensed tracks)"
        return f"library fit of {self.tracks} tracks ({self.representation})"


def _blob(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype="<f4").tobytes()


def save(db: Any, representation: str, projection: Projection, *, source: str = "library") -> int:
    """Store a fitted projection (float32), drop all but the newest ``KEEP`` of its representation
    and source; the new row's id."""
    if representation not in REPRESENTATIONS:
        raise ValueError(f"unknown representation {representation!r}")
    dims_in, dims_out = projection.matrix.shape

    def write(conn: Any) -> int:
        new_id = conn.execute(
            "INSERT INTO similarity_projections(representation, version, source, tracks, dims_in, dims_out, "
            "center, matrix) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (representation, VERSION, source, int(projection.tracks), dims_in, dims_out,
             _blob(projection.center), _blob(projection.matrix))).fetchall()[0][0]
        conn.execute(
            "DELETE FROM similarity_projections WHERE representation = ? AND source = ? AND id NOT IN "
            "(SELECT id FROM similarity_projections WHERE representation = ? AND source = ? "
            " ORDER BY id DESC LIMIT ?)", (representation, source, representation, source, KEEP))
        return int(new_id)

    return db.write(write)


def newest(db: Any, representation: str, *, source: str = "library") -> StoredProjection | None:
    """The newest valid stored projection of the current version (a damaged row is skipped for
    the one before it), or None."""
    rows = db.query(
        "SELECT id, tracks, dims_in, dims_out, center, matrix, created_at FROM similarity_projections "
        "WHERE representation = ? AND source = ? AND version = ? ORDER BY id DESC LIMIT ?",
        (representation, source, VERSION, KEEP))
    for pid, tracks, dims_in, dims_out, center, matrix, created in rows:
        if len(center) != 4 * dims_in or len(matrix) != 4 * dims_in * dims_out:
            log.warning("similarity projection %d is damaged (sizes do not match); ignored", pid)
            continue
        projection = Projection(center=np.frombuffer(center, dtype="<f4").astype(np.float64),
                                matrix=np.frombuffer(matrix, dtype="<f4").reshape(dims_in, dims_out)
                                .astype(np.float64), eigenvalues=np.zeros(0), tracks=int(tracks))
        return StoredProjection(int(pid), representation, source, int(tracks), float(created), projection)
    return None


def newest_id(db: Any) -> int:
    """A cheap stamp of the table (0 when empty): it changes whenever a projection is stored."""
    return int(db.query("SELECT coalesce(max(id), 0) FROM similarity_projections")[0][0])


def fitted_on(db: Any, representation: str) -> int | None:
    """How many tracks the newest library fit of ``representation`` saw (None: never fitted)."""
    rows = db.query("SELECT tracks FROM similarity_projections WHERE representation = ? AND source = 'library' "
                    "AND version = ? ORDER BY id DESC LIMIT 1", (representation, VERSION))
    return int(rows[0][0]) if rows else None

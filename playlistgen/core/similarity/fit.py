"""Fitting the library's projection from what the analysis stored: each live track's embedding
mean and its patch-embedding spread (``features.embedding_spread``, float16 [rows, dims] with
``spread.T @ spread`` = the track's patch covariance). One read pass in batches, accumulating the
moments as it goes (O(d²) memory, whatever the library's size), then one eigenproblem.

Representations: ``msd`` is the 200-d MSD-MusiCNN mean; every track with an embedding has it (a
track analysed with MTT as well stores a 400-d spread whose first 200 columns are the MSD part:
the top-left block of its covariance). ``msd+mtt`` is the MSD mean followed by the MTT mean, for
tracks whose preset runs MTT."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..storage.files import live
from ..storage.records import LIVE, NEWEST_FEATURES
from . import store
from .lda import Moments, fit_moments
from .store import StoredProjection

log = logging.getLogger(__name__)

MSD_DIMS = 200
DIMS = {"msd": MSD_DIMS, "msd+mtt": 2 * MSD_DIMS}
BATCH = 2000        # tracks per accumulation step

_WITH_SPREAD = (f"SELECT f.embedding, f.embedding_mtt, f.embedding_spread FROM tracks t "
                f"JOIN features f ON {NEWEST_FEATURES} WHERE {LIVE} "
                "AND f.embedding IS NOT NULL AND length(f.embedding_spread) > 0")
_COUNTS = (f"SELECT count(f.embedding), count(f.embedding_mtt), "
           "sum(f.embedding IS NOT NULL AND length(f.embedding_spread) > 0), "
           "sum(f.embedding_mtt IS NOT NULL AND length(f.embedding_spread) > 0) "
           f"FROM tracks t JOIN features f ON {NEWEST_FEATURES} WHERE {LIVE}")


# a live track's newest row with an MSD embedding and no MTT one (an analysis older than MTT in
# balanced, or preset-less imports); the partial index features_mtt_missing holds the candidates
_MTT_MISSING = ("SELECT EXISTS (SELECT 1 FROM features f WHERE f.embedding IS NOT NULL AND f.embedding_mtt IS NULL "
                "AND f.id = (SELECT max(x.id) FROM features x WHERE x.track_id = f.track_id) "
                f"AND EXISTS (SELECT 1 FROM files fl WHERE fl.track_id = f.track_id AND {live('fl')}))")


class NotEnoughTracks(ValueError):
    """Fewer tracks with spreads than a fit needs."""


@dataclass(frozen=True)
class Counts:
    embedded: int        # live tracks with an MSD embedding
    mtt: int             # ... with an MTT embedding as well
    spread: int          # ... with an embedding and a stored spread (an msd fit can use them; an
                         #     empty blob, a one-patch track, has none: the fit skips it too)
    mtt_spread: int      # ... with MTT and a spread (an msd+mtt fit can use them)

    def usable(self, representation: str) -> int:
        return self.spread if representation == "msd" else self.mtt_spread


def counts(db: Any) -> Counts:
    """How many live tracks each representation could be fitted on (one query)."""
    row = db.query(_COUNTS)[0]
    return Counts(*(int(v or 0) for v in row))


def mtt_missing(db: Any) -> bool:
    """Whether some embedded live track lacks the MTT embedding (then no catalog can use an
    ``msd+mtt`` projection). Part of the index key: the background upgrade filling the last
    track's MTT changes no row count, yet changes the space — one rebuild, when it flips."""
    return bool(db.query(_MTT_MISSING)[0][0])


def _track(embedding: bytes, mtt: bytes | None, spread: bytes, representation: str
           ) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean [d], spread [r, d]) of one row in the representation, or None when it has no such
    vector or its blobs have unexpected sizes (skipped, not guessed)."""
    mean = np.frombuffer(embedding, dtype="<f4")
    if mean.size != MSD_DIMS:
        return None
    width = 2 * MSD_DIMS if mtt is not None else MSD_DIMS   # an MTT preset stores the joint spread
    values = np.frombuffer(spread, dtype="<f2")
    if values.size == 0 or values.size % width:
        return None
    rows = values.reshape(-1, width)
    if representation == "msd":
        return mean, rows[:, :MSD_DIMS]
    if mtt is None or width != 2 * MSD_DIMS:
        return None
    extra = np.frombuffer(mtt, dtype="<f4")
    if extra.size != MSD_DIMS:
        return None
    return np.concatenate([mean, extra]), rows


def accumulate(db: Any, representation: str) -> Moments:
    """Read every live track with a spread and accumulate its moments, ``BATCH`` tracks at a time."""
    moments = Moments(DIMS[representation])

    def read(conn: Any) -> None:
        means: list[np.ndarray] = []
        spreads: list[np.ndarray] = []
        with conn:   # one snapshot
            for embedding, mtt, spread in conn.execute(_WITH_SPREAD):
                track = _track(embedding, mtt, spread, representation)
                if track is None:
                    continue
                means.append(track[0])
                spreads.append(track[1])
                if len(means) >= BATCH:
                    moments.add(np.stack(means), spreads)
                    means.clear()
                    spreads.clear()
        if means:
            moments.add(np.stack(means), spreads)

    db.read(read)
    return moments


def fit_library(db: Any, representation: str = "msd", *, min_tracks: int = 2, save: bool = True
                ) -> StoredProjection:
    """Fit the library's projection now and (``save``) store it; :class:`NotEnoughTracks` below
    ``min_tracks`` tracks with spreads."""
    started = time.perf_counter()
    moments = accumulate(db, representation)
    if moments.tracks < max(min_tracks, 2):
        raise NotEnoughTracks(f"{moments.tracks} tracks have a stored patch-embedding spread for "
                              f"{representation}; a library fit needs at least {max(min_tracks, 2)}")
    projection = fit_moments(moments)
    seconds = time.perf_counter() - started
    new_id = store.save(db, representation, projection) if save else 0
    log.info("similarity: fitted the %s projection on %d tracks in %.2f s", representation, moments.tracks, seconds)
    return StoredProjection(new_id, representation, "library", moments.tracks, time.time(), projection, fit_s=seconds)

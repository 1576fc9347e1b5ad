"""The one way a track's "sounds like" vector is made: which projection applies (the library's
own fit, the shipped one, or none) and the projected vectors. The catalog (core/playlists) calls
:func:`select` then :meth:`Space.vectors`; nothing else reads ``features.embedding`` for
similarity.

Rule (one vector space per catalog, so every distance compares like with like):

* the library's own fit when it saw at least ``min_tracks`` tracks: ``msd+mtt`` when every track
  with an embedding also has the MTT one (preset balanced or accurate) and that fit exists, else
  ``msd``;
* else a shipped projection (fitted on freely licensed music, package data): ``msd+mtt`` when
  every embedded track has MTT, ``msd`` otherwise (older rows without MTT: until the background
  upgrade fills it);
* none — ``similarity.projection: off``, no shipped file, or no track with an embedding: the raw
  MusiCNN mean, as before the projection existed (reported as such).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from . import store
from .fit import DIMS
from .lda import Projection
from .store import StoredProjection

log = logging.getLogger(__name__)

SHIPPED = {"msd": "msd.npz", "msd+mtt": "msd_mtt.npz"}   # representation → file in core/similarity/shipped/


@functools.cache
def shipped(representation: str = "msd") -> StoredProjection | None:
    """The projection shipped with the package for small libraries, or None (read once)."""
    name = SHIPPED.get(representation)
    if name is None:
        return None
    try:
        with resources.files(__package__).joinpath("shipped", name).open("rb") as fh:
            data = np.load(fh)
            center, matrix, tracks = data["center"], data["matrix"], int(data["tracks"])
    except (FileNotFoundError, OSError, KeyError, ValueError) as exc:
        log.warning("shipped similarity projection %s not readable (%s); small libraries use the raw embedding",
                    name, exc)
        return None
    projection = Projection(center=center.astype(np.float64), matrix=matrix.astype(np.float64),
                            eigenvalues=np.zeros(0), tracks=tracks)
    return StoredProjection(0, representation, "shipped", tracks, 0.0, projection)


@dataclass(frozen=True)
class Space:
    """What the catalog's embedding group holds."""

    projection: StoredProjection | None
    reason: str = ""          # why there is no projection (empty when there is one)

    @property
    def key(self) -> tuple:
        return self.projection.key if self.projection is not None else ("raw",)

    @property
    def representation(self) -> str:
        return self.projection.representation if self.projection is not None else "msd"

    def describe(self) -> str:
        if self.projection is not None:
            return self.projection.describe()
        return f"none: raw MusiCNN embedding ({self.reason})"

    def to_dict(self) -> dict:
        p = self.projection
        return {"in_use": self.describe(), "source": p.source if p else "none",
                "representation": p.representation if p else None, "tracks": p.tracks if p else 0,
                "id": p.id if p else None, "reason": self.reason or None}

    def vectors(self, embedding: np.ndarray, has: np.ndarray, mtt: np.ndarray | None = None,
                has_mtt: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Track vectors for similarity: raw MSD means [n, 200] (and MTT means) with their
        presence masks → (vectors [n, k] float32, presence). Tracks without an embedding stay
        without (a zero row, absent)."""
        if self.projection is None:
            return embedding, has
        if self.representation == "msd+mtt":
            if mtt is None or has_mtt is None:
                raise ValueError("the msd+mtt projection needs the MTT embeddings")
            joined = np.hstack([embedding, mtt])
        else:
            joined = embedding
        out = np.zeros((len(joined), self.projection.projection.matrix.shape[1]), dtype=np.float32)
        if has.any():
            out[has] = self.projection.projection.apply(joined[has])
        return out, has


def select(db: Any, *, mode: str = "auto", min_tracks: int = 30, embedded: int = 1,
           all_mtt: bool = False) -> Space:
    """The space a catalog of ``embedded`` tracks with an embedding uses (``all_mtt``: every one
    of them has the MTT embedding too). See the module's rule."""
    if mode == "off":
        return Space(None, "similarity.projection is off")
    if embedded == 0:
        return Space(None, "no track has a MusiCNN embedding (preset fast analyses without the models)")
    if all_mtt:
        joint = store.newest(db, "msd+mtt")
        if joint is not None and joint.tracks >= min_tracks:
            return Space(joint)
    own = store.newest(db, "msd")
    if own is not None and own.tracks >= min_tracks:
        return Space(own)
    for representation in ("msd+mtt", "msd") if all_mtt else ("msd",):
        fallback = shipped(representation)
        if fallback is not None and fallback.projection.matrix.shape[0] == DIMS[representation]:
            return Space(fallback)
    return Space(None, "no library fit yet and no shipped projection")

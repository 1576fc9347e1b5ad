"""The "track identity" projection: a linear discriminant analysis with one class per track.

Each track's patch embeddings scatter around the track's mean (within-track scatter: how a song
varies over its own length); the track means scatter around the library's mean (between-track
scatter: how songs differ). The projection keeps the directions in which tracks differ much more
than a track differs from itself, so distances after it weigh what tells songs apart in *this*
library — learnt from the music alone, with no labels. The within-track scatter is shrunk towards
a scaled identity (``shrinkage``) so that directions few patches span stay well conditioned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_SHRINKAGE = 0.1


@dataclass(frozen=True)
class Projection:
    center: np.ndarray       # [d] the library's mean track vector
    matrix: np.ndarray       # [d, k] projection, columns ordered by discriminative power
    eigenvalues: np.ndarray  # [k] between/within ratio of each column
    tracks: int              # how many tracks the fit saw

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """[n, d] track vectors → [n, k] projected vectors (float32)."""
        return ((np.asarray(vectors, dtype=np.float64) - self.center) @ self.matrix).astype(np.float32)


class Moments:
    """What a fit needs, accumulated track by track in O(d²) memory: the count, the sum and the
    sum of outer products of the track means, and the sum of the tracks' patch covariances
    (``spread.T @ spread``). 200,000 tracks never sit in memory at once."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.tracks = 0
        self.mean_sum = np.zeros(dims)
        self.outer_sum = np.zeros((dims, dims))
        self.within_sum = np.zeros((dims, dims))

    def add(self, means: np.ndarray, spreads: np.ndarray | list[np.ndarray]) -> None:
        """A batch: means [m, d] and each track's spread [r_i, d] (a list, or one [m, r, d] array).
        The batch's products run in float32 (the spreads are stored as float16; twice as fast as
        float64 at 200k tracks) and are summed into float64."""
        means = np.asarray(means, dtype=np.float32).reshape(-1, self.dims)
        self.tracks += len(means)
        self.mean_sum += means.sum(axis=0, dtype=np.float64)
        self.outer_sum += means.T @ means
        # Σ_i S_iᵀ S_i is one product over the stacked rows of every spread
        rows = np.concatenate([np.asarray(s, dtype=np.float32).reshape(-1, self.dims) for s in spreads]) \
            if len(spreads) else np.zeros((0, self.dims), dtype=np.float32)
        self.within_sum += rows.T @ rows

    def center(self) -> np.ndarray:
        return self.mean_sum / max(self.tracks, 1)

    def between(self) -> np.ndarray:
        """The (biased) covariance of the track means."""
        c = self.center()
        return self.outer_sum / max(self.tracks, 1) - np.outer(c, c)

    def within(self) -> np.ndarray:
        """The mean within-track covariance."""
        return self.within_sum / max(self.tracks, 1)


def fit_projection(means: np.ndarray, within: np.ndarray, shrinkage: float = DEFAULT_SHRINKAGE,
                   dims: int | None = None) -> Projection:
    """Fit from the track means [n, d] and the library's mean within-track covariance [d, d]
    (the average over tracks of each track's patch-embedding covariance)."""
    means = np.asarray(means, dtype=np.float64)
    n, d = means.shape
    if n < 2:
        raise ValueError("a projection needs at least two tracks")
    return _solve(means.mean(axis=0), np.cov(means, rowvar=False, bias=True), within, n, shrinkage, dims)


def fit_moments(moments: Moments, shrinkage: float = DEFAULT_SHRINKAGE, dims: int | None = None) -> Projection:
    """The same fit from accumulated :class:`Moments`."""
    if moments.tracks < 2:
        raise ValueError("a projection needs at least two tracks")
    return _solve(moments.center(), moments.between(), moments.within(), moments.tracks, shrinkage, dims)


def _solve(center: np.ndarray, between: np.ndarray, within: np.ndarray, n: int, shrinkage: float,
           dims: int | None) -> Projection:
    d = len(center)
    within = np.asarray(within, dtype=np.float64)
    scale = float(np.trace(within)) / d or 1.0
    within = (1.0 - shrinkage) * within + shrinkage * scale * np.eye(d)
    # generalised symmetric eigenproblem  between v = λ within v  via within's Cholesky factor
    lower = np.linalg.cholesky(within)
    inv_lower = np.linalg.inv(lower)
    values, vectors = np.linalg.eigh(inv_lower @ between @ inv_lower.T)
    order = np.argsort(values)[::-1][: dims or d]
    matrix = inv_lower.T @ vectors[:, order]
    return Projection(center=center, matrix=matrix, eigenvalues=values[order], tracks=n)


def within_covariance(spreads: list[np.ndarray]) -> np.ndarray:
    """The mean within-track covariance from per-track spreads ([r_i, d] with
    spread.T @ spread = that track's patch covariance)."""
    if not spreads:
        raise ValueError("no track spreads to fit from")
    d = spreads[0].shape[1]
    total = np.zeros((d, d))
    for spread in spreads:
        s = np.asarray(spread, dtype=np.float64)
        total += s.T @ s
    return total / len(spreads)


def spread_of(patches: np.ndarray, rows: int) -> np.ndarray:
    """A track's patch embeddings [p, d] → its spread [≤rows, d]: the largest principal axes of
    the centred patches, scaled so that spread.T @ spread is their (biased) covariance — exact
    when p <= rows + 1, the best rank-``rows`` approximation otherwise."""
    patches = np.asarray(patches, dtype=np.float64)
    p = len(patches)
    if p < 2:
        return np.zeros((0, patches.shape[1]), dtype=np.float32)
    centred = patches - patches.mean(axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    keep = min(rows, len(singular))
    return (singular[:keep, None] * axes[:keep] / np.sqrt(p)).astype(np.float32)

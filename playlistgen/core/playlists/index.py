"""Exact similarity search over the catalog's float32 matrix, and the manager that keeps the
catalog in step with the library.

Distance between a query q and a track x compares only the feature groups both have
(``c_g = present_x,g · present_q,g``); with the weighted blocks stored in X::

    euclidean:  d² = (Σ c_g |x_g|² + Σ c_g |q_g|² − 2 x·q) / Σ c_g w_g²
    cosine:     d  = 1 − x·q / sqrt(Σ c_g |x_g|² · Σ c_g |q_g|²)

x·q only sums shared groups by itself (a missing block is zero), and the other sums are small
(n × 4) products with the per-group squared norms, so one query costs one pass over X (a
matrix-vector product; several queries are one matrix-matrix product). Dividing by the shared
weight keeps distances comparable between tracks with and without an embedding. At 200k tracks
X is ~200 MB and a query takes a few tens of milliseconds on one core.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from .catalog import Catalog

log = logging.getLogger(__name__)


def query_of(cat: Catalog, rows: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Query vectors and group masks for catalog rows: (m, D) float32, (m, G) float32."""
    rows = np.asarray(rows, dtype=np.int64)
    return cat.X[rows], cat.present[rows]


def centroid(cat: Catalog, rows: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of rows, per group over the rows that have that group: (1, D), (1, G)."""
    X, present = query_of(cat, rows)
    q = np.zeros((1, cat.X.shape[1]), dtype=np.float32)
    mask = np.zeros((1, present.shape[1]), dtype=np.float32)
    for g, sl in enumerate(cat.slices.values()):
        have = present[:, g] > 0
        if have.any():
            q[0, sl] = X[have, sl].mean(axis=0)
            mask[0, g] = 1.0
    return q, mask


Subset = tuple[np.ndarray, np.ndarray, np.ndarray]


def gather(cat: Catalog, rows: np.ndarray) -> Subset:
    """The rows' (X, sqnorm, present), copied once for repeated searches within a candidate pool."""
    return cat.X[rows], cat.sqnorm[rows], cat.present[rows]


def distances(cat: Catalog, Q: np.ndarray, qmask: np.ndarray, rows: np.ndarray | None = None,
              subset: Subset | None = None) -> np.ndarray:
    """(m, n) distances from each query to every catalog row (or to ``rows``, or to a gathered
    ``subset``). Rows sharing no group with a query are at +inf."""
    Q = np.array(Q, dtype=np.float32, ndmin=2)  # a copy: absent blocks are zeroed below
    qmask = np.array(qmask, dtype=np.float32, ndmin=2)
    if subset is not None:
        X, sqn, pres = subset
    elif rows is None:
        X, sqn, pres = cat.X, cat.sqnorm, cat.present
    else:
        X, sqn, pres = gather(cat, rows)
    if X.shape[0] == 0:
        return np.zeros((Q.shape[0], 0), dtype=np.float32)
    # a query's block that is absent must not count: zero it (it already is for catalog rows)
    qsq = np.zeros_like(qmask)
    for g, sl in enumerate(cat.slices.values()):
        Q[:, sl] *= qmask[:, g:g + 1]
        qsq[:, g] = np.einsum("ij,ij->i", Q[:, sl], Q[:, sl])
    # one matrix-vector product per query: for a few queries faster than one thin matrix product
    dots = np.stack([X @ q for q in Q]) if Q.shape[0] <= 8 else (X @ Q.T).T  # (m, n)
    sq_x = qmask @ sqn.T                                # Σ_g c_g |x_g|² (sqn is 0 where x lacks g)
    sq_q = qsq @ pres.T                                 # Σ_g c_g |q_g|²
    with np.errstate(divide="ignore", invalid="ignore"):
        if cat.metric == "cosine":
            d = 1.0 - dots / np.sqrt(sq_x * sq_q)
        else:
            shared = (qmask * (cat.weights ** 2)) @ pres.T  # Σ_g c_g w_g²
            d = np.sqrt(np.maximum(sq_x + sq_q - 2.0 * dots, 0.0) / shared)
    return np.where(np.isfinite(d), d, np.inf).astype(np.float32, copy=False)


def top_k(scores: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` smallest scores (among ``allowed``), sorted ascending."""
    if allowed is not None:
        scores = np.where(allowed, scores, np.inf)
    finite = int(np.isfinite(scores).sum())
    k = min(k, finite)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    return part[np.argsort(scores[part], kind="stable")]


def nearest(cat: Catalog, row: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows closest to ``row`` (itself excluded): (rows, distances)."""
    Q, mask = query_of(cat, [row])
    d = distances(cat, Q, mask)[0]
    d[row] = np.inf
    found = top_k(d, k, allowed)
    return found, d[found]


class IndexManager:
    """Holds the current catalog; rebuilds it when the library changed.

    ``state()`` is a cheap query returning a key that changes whenever live tracks, their
    features or tags change; it runs at most every ``check_s`` seconds (not per request). The
    first build is synchronous; later rebuilds run on a background thread while requests keep
    using the previous catalog (an analysis run changes the key every few seconds; rebuilding
    for each request would cost more than the playlists)."""

    def __init__(self, load: Callable[[tuple], Catalog], state: Callable[[], tuple], *, check_s: float = 5.0,
                 min_rebuild_s: float = 10.0) -> None:
        self._load = load
        self._state = state
        self._check_s = check_s
        self._min_rebuild_s = min_rebuild_s
        self._catalog: Catalog | None = None
        self._checked_at = 0.0
        self._built_at = 0.0
        self._lock = threading.Lock()          # guards the fields below
        self._build_lock = threading.Lock()    # one build at a time
        self._thread: threading.Thread | None = None
        self.builds = 0
        self.last_error: str | None = None

    def current(self) -> Catalog:
        """The catalog to answer a request with (building it first if there is none)."""
        now = time.monotonic()
        with self._lock:
            catalog = self._catalog
            fresh = catalog is not None and now - self._checked_at < self._check_s
        if fresh:
            return catalog  # type: ignore[return-value]
        key = self._state()
        with self._lock:
            self._checked_at = now
            catalog = self._catalog
        if catalog is not None and catalog.key == key:
            return catalog
        if catalog is None:
            return self._build(key)
        if now - self._built_at >= max(self._min_rebuild_s, 10 * catalog.built_s):
            self._rebuild_in_background(key)
        return catalog

    def peek(self) -> Catalog | None:
        """The current catalog if one was built, without checking or building."""
        with self._lock:
            return self._catalog

    def warm(self) -> None:
        """Build the first catalog on a background thread (at start-up: a 200k library takes
        seconds to load; a request arriving meanwhile waits for this build instead of starting one)."""
        if self._catalog is None:
            self._rebuild_in_background(None)

    def refresh(self) -> Catalog:
        """Rebuild now if the library changed (tests, the CLI)."""
        key = self._state()
        with self._lock:
            catalog = self._catalog
        if catalog is not None and catalog.key == key:
            return catalog
        return self._build(key)

    def _build(self, key: tuple) -> Catalog:
        with self._build_lock:
            with self._lock:
                if self._catalog is not None and self._catalog.key == key:
                    return self._catalog
            started = time.perf_counter()
            catalog = self._load(key)
            catalog.built_s = time.perf_counter() - started
            with self._lock:
                self._catalog = catalog
                self._built_at = time.monotonic()
                self.builds += 1
            log.info("similarity index: %d tracks, %.1f MB, built in %.2f s", catalog.size,
                     catalog.memory_bytes() / 1e6, catalog.built_s)
            return catalog

    def _rebuild_in_background(self, key: tuple | None) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return

            def run() -> None:
                try:
                    self._build(key if key is not None else self._state())
                    self.last_error = None
                except Exception as exc:  # keep serving the old catalog; retried at the next check
                    self.last_error = str(exc)
                    log.exception("similarity index rebuild failed")

            self._thread = threading.Thread(target=run, name="index-rebuild", daemon=True)
            self._thread.start()

    def stats(self) -> dict:
        with self._lock:
            cat = self._catalog
        return {"tracks": cat.size if cat else 0, "memory_mb": round(cat.memory_bytes() / 1e6, 1) if cat else 0,
                "build_s": round(cat.built_s, 3) if cat else None, "builds": self.builds,
                "last_error": self.last_error}

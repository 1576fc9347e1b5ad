"""Transition-aware ordering: the cost of going from one track to the next, and the orders
``smooth`` (an open travelling-salesman path) and ``energy_arc`` (warm-up, peak, cool-down).

Pure numpy over the chosen tracks' features, no catalog or database: ``TrackFeatures`` holds the
per-track values, ``cost_matrix`` turns them into an (n, n) symmetric matrix of costs in 0..1,
and ``order_indices`` returns a permutation. The cost of a transition is the weighted mean
(weights ``playlists.transition_weights``) of five parts, each scaled to 0..1:

==========  ========================================================================================
camelot     (steps / 6) ** 1.5 on the Camelot wheel (``music.camelot_distance``: same key 0, ±1 or the
            relative major/minor 1 → 0.07, two steps 0.19, a tritone away 1)
tempo       |log2 ratio| folded for half/double time (``music.tempo_ratio_distance``) / 0.3: a 6 %
            change costs 0.28, 12 % 0.55, 3:2 and worse 1; 140 after 70 BPM costs 0
loudness    |Δ LUFS| / 10, at most 1
energy      |Δ energy| / 0.5, at most 1
embedding   cosine distance of the MusiCNN embeddings (of the other feature groups when a track
            has none), at most 1
==========  ========================================================================================

An unknown value (no key, no tempo) costs 0.5 for its part: neither rewarded nor forbidden.

``smooth`` solves an open path with a fixed prefix (the seeds the user asked to start with; a
free start when there is none, via a zero-cost dummy node): nearest-neighbour construction, then
2-opt (segment reversal) and Or-opt (moving runs of 1-3 tracks, either way round) until no move
improves or a round limit is reached. Each move is evaluated for all positions at once with
numpy, so 500 tracks take tens of milliseconds (``bench/transitions.py``). Lists longer than
``WINDOW`` tracks are ordered window by window, each window starting where the previous ended.

After ordering, ``gaps.restore_gaps`` restores the artist/album gaps of the diversity rules
(they depend on positions, which ordering changes) over the whole list: a track that would break a
gap is replaced by the cheapest fitting one (``smooth``) or the next fitting one in energy order
(``energy_arc``), stepping back where a choice leaves no room; a gap the chosen tracks cannot keep
is relaxed only as far as the selection relaxed it, with a note.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..music import camelot_distance, tempo_ratio_distance
from .gaps import restore_gaps
from .names import UnknownNameError

if TYPE_CHECKING:
    from .catalog import Catalog

log = logging.getLogger(__name__)

ORDERS = ("as_is", "smooth", "energy_arc")
PARTS = ("camelot", "tempo", "loudness", "energy", "embedding")
DEFAULT_WEIGHTS = {"camelot": 1.0, "tempo": 1.0, "loudness": 0.5, "energy": 0.5, "embedding": 1.0}
UNKNOWN_COST = 0.5
TEMPO_SCALE = 0.3      # |log2 ratio| at which the tempo part reaches 1
LUFS_SCALE = 10.0      # LU
ENERGY_SCALE = 0.5
WINDOW = 600           # longest list solved as one path (the matrix is WINDOW² floats)
MAX_ROUNDS = 12


@dataclass
class TrackFeatures:
    """Per-track values of the tracks to order (all arrays of length n, NaN / -1 = unknown)."""

    camelot: np.ndarray          # int, 0..23, -1 unknown
    bpm: np.ndarray              # float
    loudness: np.ndarray         # LUFS
    energy: np.ndarray           # 0..1
    vectors: np.ndarray | None = None   # (n, d) embedding-like vectors for the embedding part
    has_vector: np.ndarray | None = None

    def __len__(self) -> int:
        return int(np.asarray(self.camelot).shape[0])

    def take(self, idx: np.ndarray) -> TrackFeatures:
        return TrackFeatures(self.camelot[idx], self.bpm[idx], self.loudness[idx], self.energy[idx],
                             None if self.vectors is None else self.vectors[idx],
                             None if self.has_vector is None else self.has_vector[idx])


def merged_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The configured weights over the defaults (a config may set only some of them)."""
    out = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name in out:
            out[name] = float(value)
    return out


def _parts(f: TrackFeatures, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Each part of the cost between tracks ``i`` and ``j`` (broadcastable index arrays: a column
    and a row give the matrix, two vectors give the pairs), in 0..1."""
    cam = np.asarray(f.camelot, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        steps = np.asarray(camelot_distance(cam[i], cam[j]), dtype=np.float64)
    bpm = np.asarray(f.bpm, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.asarray(tempo_ratio_distance(bpm[i], bpm[j]), dtype=np.float64)
    parts = {"camelot": np.where(np.isnan(steps), UNKNOWN_COST, (np.minimum(steps, 6.0) / 6.0) ** 1.5),
             "tempo": np.where(np.isnan(ratio), UNKNOWN_COST, np.minimum(ratio / TEMPO_SCALE, 1.0))}
    for name, values, scale in (("loudness", f.loudness, LUFS_SCALE), ("energy", f.energy, ENERGY_SCALE)):
        v = np.asarray(values, dtype=np.float64)
        d = np.minimum(np.abs(v[i] - v[j]) / scale, 1.0)
        parts[name] = np.where(np.isnan(d), UNKNOWN_COST, d)
    shape = np.broadcast_shapes(np.shape(i), np.shape(j))
    if f.vectors is None or f.vectors.shape[0] == 0:
        parts["embedding"] = np.full(shape, UNKNOWN_COST)
    else:
        V = np.asarray(f.vectors, dtype=np.float64)
        norm = np.linalg.norm(V, axis=1)
        has = norm > 1e-12
        if f.has_vector is not None:
            has &= np.asarray(f.has_vector, dtype=bool)
        U = V / np.where(has, norm, 1.0)[:, None]
        if np.ndim(i) == 2 and np.ndim(j) == 2:      # the matrix: one product
            dots = U[np.ravel(i)] @ U[np.ravel(j)].T
        else:
            dots = np.einsum("ij,ij->i", U[i], U[j])
        parts["embedding"] = np.where(has[i] & has[j], np.clip(1.0 - dots, 0.0, 1.0), UNKNOWN_COST)
    return parts


def _weighted(parts: dict[str, np.ndarray], weights: Mapping[str, float] | None) -> np.ndarray:
    w = merged_weights(weights)
    total = sum(w.values())
    if total <= 0:
        return np.zeros_like(parts["camelot"])
    return np.asarray(sum(w[name] * parts[name] for name in PARTS if w[name] > 0), dtype=np.float64) / total


def part_matrices(f: TrackFeatures) -> dict[str, np.ndarray]:
    """Each part of the cost as an (n, n) matrix in 0..1."""
    idx = np.arange(len(f))
    parts = _parts(f, idx[:, None], idx[None, :])
    for m in parts.values():
        np.fill_diagonal(m, 0.0)
    return parts


def cost_matrix(f: TrackFeatures, weights: Mapping[str, float] | None = None) -> np.ndarray:
    """(n, n) transition costs, the weighted mean of the parts (0 = seamless, 1 = a hard cut)."""
    return _weighted(part_matrices(f), weights)


def pair_costs(f: TrackFeatures, a: np.ndarray, b: np.ndarray,
               weights: Mapping[str, float] | None = None) -> np.ndarray:
    """The cost of each transition a[k] → b[k] (no matrix: for long lists)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.shape[0] == 0:
        return np.zeros(0)
    return _weighted(_parts(f, a, b), weights)


# --- the path solver ------------------------------------------------------------------------------------

def _greedy(C: np.ndarray, fixed: int) -> np.ndarray:
    n = C.shape[0]
    order = list(range(fixed))
    free = np.ones(n, dtype=bool)
    free[:fixed] = False
    current = fixed - 1
    for _ in range(n - fixed):
        row = np.where(free, C[current], np.inf)
        current = int(np.argmin(row))
        free[current] = False
        order.append(current)
    return np.array(order, dtype=np.int64)


def _two_opt(C: np.ndarray, p: np.ndarray, fixed: int) -> bool:
    """One sweep of segment reversals p[i..j] (i ≥ fixed); True if anything improved."""
    n = p.shape[0]
    improved = False
    for i in range(max(fixed, 1), n - 1):
        a, b = p[i - 1], p[i]
        seg = p[i + 1:]                                  # candidate ends j = i+1 .. n-1
        edge_prev = C[a, b]
        delta = C[a, seg] - edge_prev
        # the edge after j: (p[j], p[j+1]) becomes (b, p[j+1]); none after the last track
        delta[:-1] += C[b, p[i + 2:]] - C[seg[:-1], p[i + 2:]]
        k = int(np.argmin(delta))
        if delta[k] < -1e-12:
            j = i + 1 + k
            p[i:j + 1] = p[i:j + 1][::-1].copy()
            improved = True
    return improved


def _or_opt(C: np.ndarray, p: np.ndarray, fixed: int) -> bool:
    """One sweep moving runs of 1-3 tracks (forwards or reversed) to their best place; True if
    anything improved. Insertion after every position is evaluated at once from the edge costs."""
    n = p.shape[0]
    improved = False
    first = max(fixed, 1)
    edges = C[p[:-1], p[1:]]
    moves = 4 * n * n     # each move gains; the bound only guards against a matrix that is not symmetric
    for length in (1, 2, 3):
        i = first
        while i + length <= n and moves > 0:
            s0, s1 = p[i], p[i + length - 1]
            prev = p[i - 1]
            nxt = p[i + length] if i + length < n else -1
            gain = C[prev, s0] + (C[s1, nxt] - C[prev, nxt] if nxt >= 0 else 0.0)
            to0, to1 = C[s0, p], C[s1, p]            # C is symmetric
            fwd = to0.copy()                         # insert after p[k]: p[k] → s0 … s1 → p[k+1]
            fwd[:-1] += to1[1:] - edges
            rev = to1.copy()                         # reversed: p[k] → s1 … s0 → p[k+1]
            rev[:-1] += to0[1:] - edges
            best = np.minimum(fwd, rev)
            best[:first - 1] = np.inf                # never before the fixed prefix
            best[i - 1:i + length] = np.inf          # where it is, and inside itself
            k = int(np.argmin(best))
            if best[k] - gain < -1e-12:
                piece = p[i:i + length].copy() if fwd[k] <= rev[k] else p[i:i + length][::-1].copy()
                if k < i:
                    p[k + 1 + length:i + length] = p[k + 1:i].copy()
                    p[k + 1:k + 1 + length] = piece
                else:
                    p[i:k + 1 - length] = p[i + length:k + 1].copy()
                    p[k + 1 - length:k + 1] = piece
                edges = C[p[:-1], p[1:]]
                improved = True
                moves -= 1
                continue  # another run now starts at i: look at it too
            i += 1
    return improved


def solve_path(C: np.ndarray, fixed: int = 1, max_rounds: int = MAX_ROUNDS) -> np.ndarray:
    """A short open path through every node of C. The first ``fixed`` nodes (in index order) stay
    in front; ``fixed=0`` lets the path start anywhere. Returns a permutation of range(n).
    Nearest neighbour, then 2-opt to convergence and an Or-opt sweep, repeated while a round
    still gains more than 0.1 %."""
    n = C.shape[0]
    if fixed == 0:
        if n <= 1:
            return np.arange(n)
        D = np.zeros((n + 1, n + 1))
        D[1:, 1:] = C
        return solve_path(D, 1, max_rounds)[1:] - 1
    if n - fixed <= 1:
        return np.arange(n)
    return improve(C, _greedy(C, fixed), fixed, max_rounds)


def improve(C: np.ndarray, p: np.ndarray, fixed: int = 1, max_rounds: int = MAX_ROUNDS) -> np.ndarray:
    """2-opt and Or-opt on the path ``p`` (changed in place and returned); never worse than ``p``."""
    p = np.asarray(p, dtype=np.int64)
    if p.shape[0] - max(fixed, 1) <= 1:
        return p
    n = p.shape[0]
    total = float(path_cost(C, p).sum())
    for _ in range(max_rounds):
        for _ in range(n):
            if not _two_opt(C, p, fixed):
                break
        if not _or_opt(C, p, fixed):
            break
        now = float(path_cost(C, p).sum())
        if total - now < 1e-3 * total:
            break
        total = now
    return p


def path_cost(C: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The cost of each transition of ``order`` (length n-1)."""
    order = np.asarray(order, dtype=np.int64)
    return C[order[:-1], order[1:]] if order.shape[0] > 1 else np.zeros(0)


class Costs:
    """Transition costs of a list of tracks: the whole matrix when the list is short, sub-matrices
    built on demand when it is long (10,000 tracks would need 800 MB at once)."""

    def __init__(self, features: TrackFeatures, weights: Mapping[str, float] | None = None,
                 penalty: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.features = features
        self.weights = merged_weights(weights)
        self.penalty = penalty   # idx → extra (len, len) cost the solver sees (not reported by steps)
        self.full = cost_matrix(features, self.weights) if len(features) <= WINDOW else None

    def sub(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        C = self.full[np.ix_(idx, idx)] if self.full is not None else cost_matrix(self.features.take(idx), self.weights)
        return C + self.penalty(idx) if self.penalty is not None else C

    def row(self, i: int, js: np.ndarray) -> np.ndarray:
        """The cost from track ``i`` to each of ``js`` (what the gap repair compares)."""
        js = np.asarray(js, dtype=np.int64)
        if self.full is not None:
            return self.full[i, js]
        return pair_costs(self.features, np.full(js.shape[0], i, dtype=np.int64), js, self.weights)

    def steps(self, order: np.ndarray) -> np.ndarray:
        """The cost of each transition along ``order``."""
        order = np.asarray(order, dtype=np.int64)
        if self.full is not None:
            return path_cost(self.full, order)
        return pair_costs(self.features, order[:-1], order[1:], self.weights)


def arc_blocks(energy: np.ndarray, free: np.ndarray) -> list[np.ndarray]:
    """Warm-up, peak, cool-down: the free tracks sorted by energy are dealt alternately to a
    rising and a falling half (the most energetic meet in the middle, both halves span the same
    range), then cut into blocks of about √n tracks of similar energy."""
    e = np.asarray(energy, dtype=np.float64)[free]
    e = np.where(np.isfinite(e), e, np.nanmedian(e) if np.isfinite(e).any() else 0.5)
    ranked = free[np.argsort(e, kind="stable")]
    arc = np.concatenate([ranked[0::2], ranked[1::2][::-1]])
    size = max(3, int(round(np.sqrt(max(arc.shape[0], 1)))))
    return [arc[s:s + size] for s in range(0, arc.shape[0], size)]


def order(mode: str, costs: Costs, *, fixed: int = 1, energy: np.ndarray | None = None,
          artist: np.ndarray | None = None, album: np.ndarray | None = None, artist_gap: int = 0,
          album_gap: int = 0, notes: list[str] | None = None) -> np.ndarray:
    """The permutation of range(n) for ``mode`` (as_is, smooth, energy_arc). The first ``fixed``
    tracks stay in front (0: any start). Tracks are placed block by block — ``smooth``: windows
    of the list as given (one window up to ``WINDOW`` tracks), ``energy_arc``: the energy blocks
    of ``arc_blocks`` — each block solved as a path continuing from the last track placed. Then
    the artist/album gaps are restored over the whole list (``gaps.restore_gaps``; the given
    order is the selection's, which shows the gaps the tracks allow); a gap relaxed is described
    in ``notes``."""
    n = len(costs.features)
    fixed = max(0, min(fixed, n))
    if mode not in ORDERS:
        raise ValueError(f"unknown order {mode!r}")
    if mode == "as_is" or n - fixed <= 1:
        return np.arange(n)
    free = np.arange(fixed, n)
    if mode == "smooth":
        blocks = [free[s:s + WINDOW - 1] for s in range(0, free.shape[0], WINDOW - 1)]
    else:
        blocks = arc_blocks(energy if energy is not None else np.full(n, np.nan), free)
    out: list[int] = list(range(fixed))
    for block in blocks:
        tail = np.array(out[-1:], dtype=np.int64)
        idx = np.concatenate([tail, block])
        p = solve_path(costs.sub(idx), tail.shape[0])
        out.extend(int(x) for x in idx[p[tail.shape[0]:]])
    perm = np.array(out, dtype=np.int64)
    if artist is None or album is None or (artist_gap <= 0 and album_gap <= 0):
        return perm
    restored = restore_gaps(perm, artist, album, artist_gap, album_gap, fixed=fixed, cost=costs.row,
                            prefer="cost" if mode == "smooth" else "order")
    if notes is not None:
        notes.extend(restored.notes(f"order {mode}"))
    return restored.order


def parse_order(value: Any, default: str) -> str:
    """A request's ``order`` (None: the strategy's default); unknown names get a "did you mean"."""
    if value is None:
        return default
    if not isinstance(value, str) or value not in ORDERS:
        raise UnknownNameError("order", str(value), ORDERS)
    return value


def with_transition_costs(objects: list[dict], ids: list[int], costs: list[float]) -> None:
    """Give each track object its ``transition_cost`` from the previous track of the playlist
    (None for the first; objects of missing files may have been dropped, so matched by id)."""
    by_id = {track_id: (costs[i - 1] if i > 0 and i - 1 < len(costs) else None) for i, track_id in enumerate(ids)}
    for obj in objects:
        obj["transition_cost"] = by_id.get(obj["id"])


def summary(costs: np.ndarray) -> dict[str, float | None]:
    """Mean and worst transition cost, rounded for a response."""
    if costs.shape[0] == 0:
        return {"mean": None, "worst": None}
    return {"mean": round(float(costs.mean()), 4), "worst": round(float(costs.max()), 4)}


# --- on catalog rows ------------------------------------------------------------------------------------

def catalog_features(cat: Catalog, rows: np.ndarray | list[int]) -> TrackFeatures:
    """The values of catalog rows the costs need. The embedding part compares MusiCNN embeddings
    when every track has one, else the other feature groups (timbre, tonality, scalars)."""
    rows = np.asarray(rows, dtype=np.int64)
    emb = cat.slices["embedding"]
    has_emb = cat.present[rows, list(cat.slices).index("embedding")] > 0
    if has_emb.all():
        vectors, has = cat.X[rows, emb], has_emb
    else:
        vectors, has = cat.X[rows, :emb.start], np.ones(rows.shape[0], dtype=bool)
    return TrackFeatures(camelot=cat.camelot[rows].astype(np.int64), bpm=cat.num["bpm"][rows].astype(np.float64),
                         loudness=cat.num["loudness_lufs"][rows].astype(np.float64),
                         energy=cat.num["energy"][rows].astype(np.float64), vectors=vectors, has_vector=has)


def arrange(cat: Catalog, rows: list[int], mode: str, *, weights: Mapping[str, float] | None = None, fixed: int = 0,
            artist_gap: int = 0, album_gap: int = 0, penalty: Callable[[np.ndarray], np.ndarray] | None = None
            ) -> tuple[list[int], np.ndarray, list[str]]:
    """Catalog rows in ``mode`` order, the cost of each transition of the result (n-1), and notes
    on any diversity gap the order had to relax."""
    arr = np.asarray(rows, dtype=np.int64)
    if arr.shape[0] == 0:
        return [], np.zeros(0), []
    f = catalog_features(cat, arr)
    if mode == "as_is" or arr.shape[0] <= 1:
        steps = pair_costs(f, np.arange(arr.shape[0] - 1), np.arange(1, arr.shape[0]), weights)
        return [int(r) for r in arr], steps, []
    costs = Costs(f, weights, penalty)
    notes: list[str] = []
    perm = order(mode, costs, fixed=fixed, energy=f.energy, artist=cat.artist[arr], album=cat.album[arr],
                 artist_gap=artist_gap, album_gap=album_gap, notes=notes)
    return [int(r) for r in arr[perm]], costs.steps(perm), notes

"""Neighbour measures of the representation bench, per query so that two representations can be
compared pair by pair: precision@10 by source label (with and without the artist filter),
10-occurrence counts (hubness), and the paired bootstrap of a difference.

A query's 10 nearest neighbours are searched among the candidate rows (itself excluded; with the
artist filter, also every candidate by the query's artist where it is known). Hubness is the
skewness of N10 — how many of the queries' lists each candidate appears in — and its maximum.

Paired bootstrap: the queries are resampled with replacement (the same resample for both
representations) and the difference of the means recomputed; the 95 % interval is the 2.5–97.5
percentiles of B such differences. For hubness the resampled queries' lists are recounted. With
~100 queries from 5 sources the intervals are wide, and they describe *these* queries: queries of
one source are not independent draws of music, so an interval that excludes 0 says the difference
is not noise of the query sample, not that it generalises to another library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K = 10
BOOTSTRAP = 2000


def cosine_distances(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norm > 0, norm, 1.0)
    return 1.0 - v @ v.T


def euclidean_distances(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    sq = np.einsum("ij,ij->i", v, v)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * v @ v.T, 0.0))


@dataclass
class Scores:
    """Per-query figures of one representation (aligned with ``queries``)."""

    queries: np.ndarray          # row indices of the queries
    p10: np.ndarray              # per query, same-label share of its 10-NN
    p10_artist: np.ndarray       # the same with the artist filter
    lists: list[np.ndarray]      # each query's 10-NN rows (no artist filter): for hubness
    n: int                       # rows in the space (occurrence counts are over these)

    def summary(self) -> dict:
        counts = occurrences(self.lists, self.n)
        return {"p10": float(self.p10.mean()), "p10_artist": float(self.p10_artist.mean()),
                "hubness": skewness(counts[self.candidates()]), "max_n10": int(counts.max()),
                "queries": int(len(self.queries))}

    def candidates(self) -> np.ndarray:
        return np.unique(np.concatenate([self.queries, *self.lists])) if self.lists else self.queries


def knn(D: np.ndarray, query: int, candidates: np.ndarray, artists: np.ndarray, artist_filter: bool) -> np.ndarray:
    d = D[query, candidates].copy()
    d[candidates == query] = np.inf
    if artist_filter and artists[query] >= 0:
        d[artists[candidates] == artists[query]] = np.inf
    order = np.argsort(d, kind="stable")[:K]
    return candidates[order[np.isfinite(d[order])]]


def score(D: np.ndarray, queries: np.ndarray, candidates: np.ndarray, labels: np.ndarray,
          artists: np.ndarray) -> Scores:
    """Neighbour scores of ``queries`` in the distance matrix ``D`` (over all rows)."""
    p, pa, lists = [], [], []
    for q in queries:
        plain = knn(D, q, candidates, artists, False)
        filt = knn(D, q, candidates, artists, True)
        p.append(np.mean(labels[plain] == labels[q]) if len(plain) else 0.0)
        pa.append(np.mean(labels[filt] == labels[q]) if len(filt) else 0.0)
        lists.append(plain)
    return Scores(np.asarray(queries), np.array(p), np.array(pa), lists, D.shape[0])


def random_scores(queries: np.ndarray, candidates: np.ndarray, labels: np.ndarray, artists: np.ndarray,
                  draws: int = 20, seed: int = 5) -> Scores:
    """Random 10-NN lists; per-query precision averaged over ``draws`` (lists of the first draw)."""
    rng = np.random.default_rng(seed)
    p = np.zeros(len(queries))
    pa = np.zeros(len(queries))
    lists: list[np.ndarray] = []
    for draw in range(draws):
        for i, q in enumerate(queries):
            pool = candidates[candidates != q]
            plain = rng.choice(pool, size=min(K, len(pool)), replace=False)
            ok = pool[~((artists[q] >= 0) & (artists[pool] == artists[q]))]
            filt = rng.choice(ok, size=min(K, len(ok)), replace=False)
            p[i] += np.mean(labels[plain] == labels[q]) / draws
            pa[i] += np.mean(labels[filt] == labels[q]) / draws if len(filt) else 0.0
            if draw == 0:
                lists.append(plain)
    return Scores(np.asarray(queries), p, pa, lists, len(labels))


def occurrences(lists: list[np.ndarray], n: int) -> np.ndarray:
    counts = np.zeros(n)
    for lst in lists:
        counts[lst] += 1
    return counts


def skewness(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.float64)
    sd = v.std()
    return float(np.mean((v - v.mean()) ** 3) / sd ** 3) if sd > 0 else 0.0


def paired_interval(a: np.ndarray, b: np.ndarray, boot: int = BOOTSTRAP, seed: int = 1) -> dict:
    """Mean of b − a and its paired-bootstrap 95 % interval (a, b per query, same order)."""
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(boot, len(diff)))
    means = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"diff": float(diff.mean()), "lo": float(lo), "hi": float(hi)}


def hubness_interval(a: Scores, b: Scores, boot: int = 500, seed: int = 1) -> dict:
    """Difference of N10 skewness (b − a) with a paired bootstrap over the queries."""
    rng = np.random.default_rng(seed)
    cand = np.union1d(a.candidates(), b.candidates())

    def skew_of(s: Scores, pick: np.ndarray) -> float:
        counts = np.zeros(s.n)
        for i in pick:
            counts[s.lists[i]] += 1
        return skewness(counts[cand])

    base = skew_of(b, np.arange(len(b.lists))) - skew_of(a, np.arange(len(a.lists)))
    diffs = []
    for _ in range(boot):
        pick = rng.integers(0, len(a.lists), size=len(a.lists))
        diffs.append(skew_of(b, pick) - skew_of(a, pick))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"diff": float(base), "lo": float(lo), "hi": float(hi)}


def compare(today: Scores, other: Scores) -> dict:
    """``other`` against ``today`` (same queries, same order): the three paired intervals."""
    if not np.array_equal(today.queries, other.queries):
        raise ValueError("paired comparison needs the same queries in the same order")
    return {"p10": paired_interval(today.p10, other.p10),
            "p10_artist": paired_interval(today.p10_artist, other.p10_artist),
            "hubness": hubness_interval(today, other)}

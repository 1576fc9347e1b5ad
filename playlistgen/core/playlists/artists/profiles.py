"""An artist's sound: a trimmed mean of its tracks' rows of the catalog matrix.

Artists are grouped by ``diversity.normalise_artist`` — case, accents, "feat. X" and a leading
"The" do not make another artist — and each group of the catalog (scalars, mfcc, chroma,
embedding; whatever the catalog holds, e.g. a library-adaptive projection of the embedding) is
averaged over the tracks that have it. Robust: an artist with at least ``TRIM_FROM`` tracks
leaves out its ``TRIM_SHARE`` tracks farthest from its plain mean (the intro, the remix, the
live bonus track), so a few odd tracks do not move its sound. Few tracks are not hidden: every
profile keeps its track count, and ``confidence`` = tracks / (tracks + ``PRIOR_TRACKS``) says
how much the profile can be trusted (1 track: 0.33, 4: 0.67, 18: 0.9).

Profiles live in the catalog's per-snapshot cache (``Catalog.cache``): built once per catalog
key, in chunks of rows (no copy of the whole matrix), about a second at 200k tracks
(``bench/artist_similarity.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog
from ..diversity import normalise_artist

log = logging.getLogger(__name__)

TRIM_FROM = 5          # artists with at least this many tracks are trimmed ...
TRIM_SHARE = 0.2       # ... by this share of their tracks farthest from their mean
PRIOR_TRACKS = 2.0     # confidence = tracks / (tracks + PRIOR_TRACKS)
CHUNK_ROWS = 16384     # rows per pass: bounds the temporary arrays at 200k tracks
CACHE_KEY = "artist_profiles"


@dataclass
class ArtistProfiles:
    """One row per artist; ``X``/``sqnorm``/``present`` have the catalog's columns and groups,
    so ``index.distances(cat, ..., subset=profiles.subset())`` compares them like tracks."""

    names: list[str]          # display name: the spelling most of its tracks carry
    keys: list[str]           # normalise_artist of the name
    of_row: np.ndarray        # int32 (n,): the artist of each catalog row, -1 for none
    tracks: np.ndarray        # int32 (A,): live analysed tracks per artist
    used: np.ndarray          # int32 (A,): tracks in the profile after trimming
    X: np.ndarray             # float32 (A, D)
    present: np.ndarray       # float32 (A, G)
    sqnorm: np.ndarray        # float32 (A, G)
    by_key: dict[str, int]

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def confidence(self) -> np.ndarray:
        return self.tracks / (self.tracks + PRIOR_TRACKS)

    def subset(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.X, self.sqnorm, self.present

    def code(self, name: str) -> int | None:
        """The artist a name stands for (any case, accents, "feat." or "The" variant)."""
        return self.by_key.get(normalise_artist(name)) if name else None

    def rows(self, code: int) -> np.ndarray:
        return np.flatnonzero(self.of_row == code)


def profiles_of(cat: Catalog) -> ArtistProfiles:
    """The catalog's artist profiles, built on first use and kept with the catalog snapshot."""
    cached = cat.cache.get(CACHE_KEY)
    if cached is None:
        cached = cat.cache[CACHE_KEY] = build_profiles(cat)
    return cached


def _artist_codes(cat: Catalog) -> tuple[np.ndarray, list[str], list[str]]:
    """Profile code per row; display names and keys. The catalog's artist codes fold case only:
    spellings that normalise alike are merged here, the most common one names the artist."""
    counts = np.bincount(cat.artist[cat.artist >= 0], minlength=len(cat.artist_names))
    by_key: dict[str, int] = {}
    keys: list[str] = []
    best: list[tuple[int, str]] = []
    to_profile = np.full(len(cat.artist_names) + 1, -1, dtype=np.int32)   # last slot: row without artist
    for code, name in enumerate(cat.artist_names):
        key = normalise_artist(name)
        if not key:
            continue
        profile = by_key.get(key)
        if profile is None:
            profile = by_key[key] = len(keys)
            keys.append(key)
            best.append((-1, name))
        if int(counts[code]) > best[profile][0]:
            best[profile] = (int(counts[code]), name)
        to_profile[code] = profile
    return to_profile[cat.artist], [name for _, name in best], keys


def _group_sums(cat: Catalog, of_row: np.ndarray, weight: np.ndarray, n_artists: int) -> tuple[np.ndarray, np.ndarray]:
    """Σ weight·X and Σ weight·present per artist, chunk by chunk (sorted, then reduceat)."""
    sums = np.zeros((n_artists, cat.X.shape[1]), dtype=np.float64)
    have = np.zeros((n_artists, cat.present.shape[1]), dtype=np.float64)
    for start in range(0, cat.size, CHUNK_ROWS):
        codes = of_row[start:start + CHUNK_ROWS]
        w = weight[start:start + CHUNK_ROWS]
        keep = np.flatnonzero((codes >= 0) & (w > 0))
        if keep.size == 0:
            continue
        keep = keep[np.argsort(codes[keep], kind="stable")]
        sorted_codes = codes[keep]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        rows = keep + start
        wk = w[keep][:, None]
        sums[sorted_codes[starts]] += np.add.reduceat(cat.X[rows] * wk, starts, axis=0)
        have[sorted_codes[starts]] += np.add.reduceat(cat.present[rows] * wk, starts, axis=0)
    return sums, have


def _means(cat: Catalog, sums: np.ndarray, have: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.zeros(sums.shape, dtype=np.float32)
    for g, sl in enumerate(cat.slices.values()):
        n = have[:, g:g + 1]
        X[:, sl] = np.divide(sums[:, sl], n, out=np.zeros_like(sums[:, sl]), where=n > 0)
    return X, (have > 0).astype(np.float32)


def _spread(cat: Catalog, of_row: np.ndarray, X: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Squared distance of every row to its artist's mean, over the groups both have (inf: no artist)."""
    out = np.full(cat.size, np.inf, dtype=np.float64)
    for start in range(0, cat.size, CHUNK_ROWS):
        codes = of_row[start:start + CHUNK_ROWS]
        idx = np.flatnonzero(codes >= 0)
        if idx.size == 0:
            continue
        rows = idx + start
        shared = cat.present[rows] * present[codes[idx]]
        total = np.zeros(idx.size, dtype=np.float64)
        for g, sl in enumerate(cat.slices.values()):
            diff = (cat.X[rows, sl] - X[codes[idx], sl]) * shared[:, g:g + 1]
            total += np.einsum("ij,ij->i", diff, diff)
        out[rows] = total
    return out


def _trim_weights(of_row: np.ndarray, spread: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """1 for rows kept in their artist's profile, 0 for the farthest TRIM_SHARE of big artists."""
    weight = (of_row >= 0).astype(np.float32)
    drop = np.where(tracks >= TRIM_FROM, np.floor(tracks * TRIM_SHARE), 0).astype(np.int64)
    if not drop.any():
        return weight
    candidates = np.flatnonzero((of_row >= 0) & (drop[np.maximum(of_row, 0)] > 0))
    order = candidates[np.lexsort((-spread[candidates], of_row[candidates]))]   # per artist, farthest first
    codes = of_row[order]
    first = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    rank = np.arange(order.size) - np.repeat(first, np.diff(np.r_[first, order.size]))
    weight[order[rank < drop[codes]]] = 0.0
    return weight


def build_profiles(cat: Catalog) -> ArtistProfiles:
    of_row, names, keys = _artist_codes(cat) if cat.size else (np.zeros(0, np.int32), [], [])
    n_artists = len(names)
    tracks = np.bincount(of_row[of_row >= 0], minlength=n_artists).astype(np.int32)
    ones = (of_row >= 0).astype(np.float32)
    X, present = _means(cat, *_group_sums(cat, of_row, ones, n_artists))
    weight = _trim_weights(of_row, _spread(cat, of_row, X, present), tracks)
    if (weight < ones).any():
        X, present = _means(cat, *_group_sums(cat, of_row, weight, n_artists))
    sqnorm = np.zeros(present.shape, dtype=np.float32)
    for g, sl in enumerate(cat.slices.values()):
        sqnorm[:, g] = np.einsum("ij,ij->i", X[:, sl], X[:, sl])
    used = np.bincount(of_row[weight > 0], minlength=n_artists).astype(np.int32)
    log.debug("artist profiles: %d artists over %d tracks", n_artists, cat.size)
    return ArtistProfiles(names=names, keys=keys, of_row=of_row, tracks=tracks, used=used, X=X, present=present,
                          sqnorm=sqnorm, by_key={k: i for i, k in enumerate(keys)})

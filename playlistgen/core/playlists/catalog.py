"""The in-memory catalog: every live track as rows of numpy arrays, and the weighted feature matrix.

Feature space (one float32 row per track, four groups):

=========  ====  ==========================================================================
group      dims  content
=========  ====  ==========================================================================
scalars    14    log2(bpm), energy, danceability, loudness (LUFS), loudness range, dynamic
                 complexity, log spectral centroid/rolloff, flatness, zcr, valence,
                 acousticness, instrumentalness, key strength
mfcc       26    MFCC means and standard deviations (timbre)
chroma     12    pitch-class profile, normalised to sum 1 (tonality)
embedding  200   MusiCNN embedding (NULL for preset ``fast``), projected by the library's
                 fit (core/similarity/space: the one place that decides; 400 for msd+mtt)
=========  ====  ==========================================================================

Every dimension is standardised over the library (z-score); a missing scalar takes the mean.
A projected embedding is centred and divided by one common scale instead (``isotropic``): a
per-column z-score would undo what the fit learnt, the columns' relative weight.
Each group is divided by sqrt(dims), so every group has about the same expected squared norm,
and multiplied by its weight (``playlists.weight_*``): the weights say how much each group
counts, independent of how many dimensions it has. A track without a group (no embedding with
preset fast) has that block all zero and a 0 in ``present``; distances only compare groups both
tracks have (see ``index.distances``), so such tracks still take part with what they have.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..music import camelot_index, pitch_class
from .diversity import song_key

log = logging.getLogger(__name__)

GROUPS = ("scalars", "mfcc", "chroma", "embedding")
SCALARS = ("bpm", "energy", "danceability", "loudness_lufs", "loudness_range", "dynamic_complexity",
           "spectral_centroid", "spectral_rolloff", "spectral_flatness", "zcr", "valence", "acousticness",
           "instrumentalness", "key_strength")
_LOG_SCALARS = {"bpm", "spectral_centroid", "spectral_rolloff"}  # ratio-like: compare on a log scale
VECTOR_DIMS = {"mfcc": 26, "chroma": 12, "embedding": 200}

def factorize(values: list[Any], fold: bool = True) -> tuple[np.ndarray, list[str]]:
    """Integer code per value (-1 for empty), and the first spelling of each code."""
    codes = np.full(len(values), -1, dtype=np.int32)
    index: dict[str, int] = {}
    names: list[str] = []
    for i, value in enumerate(values):
        if value is None or value == "":
            continue
        text = str(value)
        k = text.casefold().strip() if fold else text
        code = index.get(k)
        if code is None:
            code = index[k] = len(names)
            names.append(text)
        codes[i] = code
    return codes, names


@dataclass
class Catalog:
    """Every live track. Row ``i`` of every array is the track ``track_ids[i]`` (sorted ids)."""

    key: tuple
    track_ids: np.ndarray                  # int64 (n,)
    X: np.ndarray                          # float32 (n, D): weighted, standardised groups
    slices: dict[str, slice]               # group name → columns of X
    weights: np.ndarray                    # float32 (G,)
    present: np.ndarray                    # float32 (n, G): 1 where the track has the group
    sqnorm: np.ndarray                     # float32 (n, G): squared norm of each weighted block
    metric: str
    num: dict[str, np.ndarray]             # float32 (n,) each, NaN = unknown: bpm, energy, ...
    camelot: np.ndarray                    # int8 (n,) 0..23, -1 unknown
    key_pc: np.ndarray                     # int8 (n,) pitch class, -1 unknown
    scale: np.ndarray                      # int8 (n,) 1 major, 0 minor, -1 unknown
    artist: np.ndarray                     # int32 codes
    artist_names: list[str]
    album: np.ndarray                      # int32 codes of (artist, album)
    album_names: list[str]
    genre: np.ndarray
    genre_names: list[str]
    song: np.ndarray                       # int32 codes of normalised artist + title
    track_number: np.ndarray               # int32, -1 unknown
    tags: np.ndarray                       # float16 (n, L) probabilities (max over sources)
    tag_labels: list[str]
    built_s: float = 0.0
    space: Any = None                      # core.similarity.space.Space of the embedding group
    cache: dict = field(default_factory=dict)  # derived results (k-means) for this snapshot

    @property
    def size(self) -> int:
        return int(self.track_ids.shape[0])

    def rows_of(self, track_ids: list[int] | np.ndarray) -> np.ndarray:
        """Catalog rows of the given ids; -1 where the track is not in the catalog."""
        ids = np.asarray(track_ids, dtype=np.int64)
        pos = np.searchsorted(self.track_ids, ids)
        pos = np.clip(pos, 0, max(self.size - 1, 0))
        found = (self.size > 0) & (self.track_ids[pos] == ids) if self.size else np.zeros(ids.shape, bool)
        return np.where(found, pos, -1)

    def group_block(self, name: str) -> np.ndarray:
        return self.X[:, self.slices[name]]

    def tag_index(self, label: str) -> int | None:
        folded = label.casefold()
        for i, known in enumerate(self.tag_labels):
            if known.casefold() == folded:
                return i
        return None

    def memory_bytes(self) -> int:
        arrays = [self.X, self.present, self.sqnorm, self.tags, self.track_ids, *self.num.values()]
        return int(sum(a.nbytes for a in arrays))


def _standardise_into(out: np.ndarray, values: np.ndarray, present: np.ndarray, factor: float,
                      isotropic: bool = False) -> None:
    """Write ``factor`` × z-score of each column (over rows that have the group) into ``out``;
    NaN (a missing scalar) becomes 0, the mean. ``isotropic``: every column divided by one scale,
    the root mean column variance, so the block has the same expected squared norm as a z-scored
    one. Works in float32 to keep 200k-row builds small."""
    out[...] = 0.0
    if not present.any():
        return
    rows = values[present] if not present.all() else values
    finite = bool(np.isfinite(rows).all())  # vectors always are: skip the slower NaN-aware passes
    with warnings.catch_warnings():  # a column with no value at all (e.g. bpm of clips) is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = (rows.mean(axis=0, dtype=np.float64) if finite
                else np.nan_to_num(np.nanmean(rows, axis=0, dtype=np.float64)))
        std = rows.std(axis=0, dtype=np.float64) if finite else np.nanstd(rows, axis=0, dtype=np.float64)
    if isotropic:
        std = np.full_like(std, np.sqrt(np.mean(np.square(std))))
    std = np.where(np.isfinite(std) & (std > 1e-9), std, 1.0)
    z = (rows - mean.astype(np.float32)) * (factor / std).astype(np.float32)
    if not finite:
        z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
    if present.all():
        out[...] = z
    else:
        out[present] = z


def build_catalog(*, key: tuple, track_ids: np.ndarray, meta: dict[str, list], scalars: dict[str, np.ndarray],
                  vectors: dict[str, tuple[np.ndarray, np.ndarray]], keys: dict[str, list],
                  tags: np.ndarray, tag_labels: list[str], weights: dict[str, float],
                  metric: str = "euclidean", isotropic: set[str] | frozenset[str] = frozenset()) -> Catalog:
    """Pure construction from column arrays (the loader in ``features.py`` reads them from SQLite).

    ``vectors`` maps mfcc/chroma/embedding to (values (n, d) float32, present (n,) bool);
    ``keys`` has lists ``key``, ``scale``, ``camelot``; ``meta`` has artist, album, title, genre,
    year, track_number, duration_s. Groups in ``isotropic`` are scaled by one common factor (see
    ``_standardise_into``)."""
    n = int(track_ids.shape[0])
    raw = np.empty((n, len(SCALARS)), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(SCALARS):
            col = scalars[name].astype(np.float32)
            raw[:, j] = np.where(col > 0, np.log2(np.where(col > 0, col, 1.0)), np.nan) \
                if name in _LOG_SCALARS else col
    groups: list[tuple[str, np.ndarray, np.ndarray]] = [("scalars", raw, ~np.all(np.isnan(raw), axis=1))]
    for name in ("mfcc", "chroma", "embedding"):
        values, has = vectors[name]
        values = values.astype(np.float32, copy=False)
        if name == "chroma":
            total = values.sum(axis=1, keepdims=True)
            values = np.divide(values, total, out=np.zeros_like(values), where=total > 1e-12)
        groups.append((name, values, has.astype(bool)))
    w = np.array([weights.get(g, 1.0) for g in GROUPS], dtype=np.float32)
    slices: dict[str, slice] = {}
    start = 0
    for g, values, _ in groups:
        slices[g] = slice(start, start + values.shape[1])
        start += values.shape[1]
    X = np.empty((n, start), dtype=np.float32)
    for i, (g, values, has) in enumerate(groups):
        _standardise_into(X[:, slices[g]], values, has, float(w[i] / np.sqrt(values.shape[1])), g in isotropic)
    present = np.column_stack([has for _, _, has in groups]).astype(np.float32).reshape(n, len(GROUPS))
    sqnorm = np.zeros((n, len(GROUPS)), dtype=np.float32)
    for i, g in enumerate(GROUPS):
        block = X[:, slices[g]]
        sqnorm[:, i] = np.einsum("ij,ij->i", block, block)
    artist, artist_names = factorize(meta["artist"])
    album_keys = [f"{a or ''}\x1f{b}" if b else None for a, b in zip(meta["artist"], meta["album"], strict=True)]
    album, album_names_raw = factorize(album_keys)
    album_names = [name.split("\x1f", 1)[1] for name in album_names_raw]
    genre, genre_names = factorize(meta["genre"])
    song, _ = factorize([song_key(a, t) for a, t in zip(meta["artist"], meta["title"], strict=True)], fold=False)
    num = {name: scalars[name].astype(np.float32) for name in SCALARS}
    num["duration_s"] = np.array([np.nan if v is None else v for v in meta["duration_s"]], dtype=np.float32)
    num["year"] = np.array([np.nan if v is None else v for v in meta["year"]], dtype=np.float32)
    camelot = np.array([camelot_index(c) for c in keys["camelot"]], dtype=np.int8)
    key_pc = np.array([-1 if not k else (pitch_class(k) if pitch_class(k) is not None else -1)
                       for k in keys["key"]], dtype=np.int8)
    scale = np.array([{"major": 1, "minor": 0}.get((s or "").lower(), -1) for s in keys["scale"]], dtype=np.int8)
    track_number = np.array([-1 if v is None else int(v) for v in meta["track_number"]], dtype=np.int32)
    return Catalog(key=key, track_ids=track_ids.astype(np.int64), X=X, slices=slices, weights=w,
                   present=present, sqnorm=sqnorm, metric=metric, num=num,
                   camelot=camelot, key_pc=key_pc, scale=scale, artist=artist, artist_names=artist_names,
                   album=album, album_names=album_names, genre=genre, genre_names=genre_names, song=song,
                   track_number=track_number, tags=tags.astype(np.float16), tag_labels=list(tag_labels))

"""Similar artists by sound: the distance between two artists' profiles (``profiles.py``),
measured like the distance between two tracks (``index.distances``: the catalog's metric and
group weights, only groups both have).

* ``similarity`` = 1 − d / d_max, d_max the distance to the artist that sounds least like the
  asked one: 1 = the same sound, 0 = the most different artist of the library;
* ``confidence`` = tracks / (tracks + 2) of the similar artist: a profile of one or two tracks is
  a guess about the artist's sound;
* ``score`` = similarity × (0.75 + 0.25 × confidence) orders the answer: an artist with one
  track must sound clearly closer to rank above one with many (at most a 17 % handicap).

The asked artist itself (every case/"feat."/"The" variant of its name) is never in the answer.
``ArtistSimilarity`` keeps the per-artist scores of the current catalog in a cachetools LRU cache
keyed by the catalog key, so asking again (an artist page opened twice, the radio after the
info) costs a lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from ....errors import NotFoundError
from ....suggest import suggestions
from ..catalog import Catalog
from ..index import distances, top_k
from .profiles import ArtistProfiles, profiles_of

RARE_WEIGHT = 0.25     # the share of the score that depends on confidence
CACHE_ARTISTS = 256    # score rows kept (one float32 per artist each)


@dataclass(frozen=True)
class SimilarArtist:
    code: int
    name: str
    tracks: int
    similarity: float     # 0..1
    confidence: float     # 0..1
    score: float          # ranks the answer

    def to_dict(self) -> dict:
        return {"name": self.name, "tracks": self.tracks, "score": self.score, "similarity": self.similarity,
                "confidence": self.confidence}


class UnknownArtistError(NotFoundError):
    """An artist name (or id) that matches no analysed artist (404, with "did you mean")."""

    code = "artist_not_found"

    def __init__(self, name: str, options: list[str], *, hint: str | None = None) -> None:
        self.candidates = suggestions(name, options)
        if hint is None:
            hint = ("did you mean " + " or ".join(f"'{c}'" for c in self.candidates) + "?") if self.candidates \
                else "artist names as tagged; list them with GET /api/v1/tracks?artist=..."
        super().__init__(f"no analysed artist '{name}'", hint=hint)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "did_you_mean": self.candidates}


def resolve(profiles: ArtistProfiles, name: str) -> int:
    code = profiles.code(name)
    if code is None:
        raise UnknownArtistError(name, profiles.names)
    return code


def scores(cat: Catalog, profiles: ArtistProfiles, code: int) -> tuple[np.ndarray, np.ndarray]:
    """(score, similarity) of every artist against ``code``; -inf/0 for itself and for artists
    sharing no feature group with it."""
    d = distances(cat, profiles.X[code][None, :], profiles.present[code][None, :],
                  subset=profiles.subset())[0].astype(np.float64)
    d[code] = np.inf
    finite = np.isfinite(d)
    d_max = float(d[finite].max()) if finite.any() else 0.0
    similarity = np.where(finite, 1.0 - d / d_max, 0.0) if d_max > 0 else finite.astype(np.float64)
    similarity = np.clip(similarity, 0.0, 1.0)
    score = similarity * (1.0 - RARE_WEIGHT + RARE_WEIGHT * profiles.confidence)
    return np.where(finite, score, -np.inf), similarity


def rank(profiles: ArtistProfiles, score: np.ndarray, similarity: np.ndarray, count: int,
         allowed: np.ndarray | None = None) -> list[SimilarArtist]:
    """The ``count`` best-scored artists (among ``allowed``, a bool per artist)."""
    ok = np.isfinite(score) if allowed is None else np.isfinite(score) & allowed
    best = top_k(-score, count, ok)
    conf = profiles.confidence
    return [SimilarArtist(int(a), profiles.names[a], int(profiles.tracks[a]), round(float(similarity[a]), 4),
                          round(float(conf[a]), 4), round(float(score[a]), 4)) for a in best]


def artists_with_rows(profiles: ArtistProfiles, rows: np.ndarray) -> np.ndarray:
    """Bool per artist: at least one of its tracks is among ``rows`` (a bool per catalog row)."""
    codes = profiles.of_row[rows & (profiles.of_row >= 0)]
    out = np.zeros(profiles.size, dtype=bool)
    out[codes] = True
    return out


class ArtistSimilarity:
    """Similar artists over the current catalog (``catalog()``, e.g. ``PlaylistService.catalog``).
    Thread-safe; built once by the App."""

    def __init__(self, catalog: Callable[[], Catalog], *, cache_size: int = CACHE_ARTISTS) -> None:
        self._catalog = catalog
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._scores: LRUCache = LRUCache(maxsize=cache_size)

    def current(self) -> tuple[Catalog, ArtistProfiles]:
        cat = self._catalog()
        if "artist_profiles" not in cat.cache:
            with self._build_lock:   # one build per catalog, however many requests wait for it
                return cat, profiles_of(cat)
        return cat, profiles_of(cat)

    def scores(self, cat: Catalog, profiles: ArtistProfiles, code: int) -> tuple[np.ndarray, np.ndarray]:
        key = (cat.key, id(profiles), code)
        with self._lock:
            hit = self._scores.get(key)
        if hit is None:
            hit = scores(cat, profiles, code)
            with self._lock:
                self._scores[key] = hit
        return hit

    def similar(self, cat: Catalog, profiles: ArtistProfiles, code: int, count: int,
                allowed: np.ndarray | None = None) -> list[SimilarArtist]:
        return rank(profiles, *self.scores(cat, profiles, code), count, allowed)

"""Request ``filters`` → a boolean mask over the catalog (pure numpy).

Ranges are two-element lists ``[low, high]`` (either may be null for an open end) or one number
(exact). Names are a string or a list of strings (any of them matches). Examples::

    {"bpm": [90, 130], "energy": [0.6, 1], "key": "8A", "tags": ["chill"], "duration_s": [120, 420],
     "genre": "jazz", "year": [1990, 1999], "scale": "minor", "artist": ["Air", "Moby"]}

``genre`` matches the genre tag of the file (case-insensitive, part of the name) or, for files
without one, the ML tag of that name; ``key`` takes a Camelot code ("8A"), a key with scale
("A minor", "Am", "F# major") or a key name alone ("A").
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ...errors import BadRequestError
from ..music import camelot_index, pitch_class
from .catalog import Catalog
from .names import UnknownNameError, resolve_tags

RANGES = {  # filter name → catalog numeric column
    "bpm": "bpm", "energy": "energy", "danceability": "danceability", "loudness": "loudness_lufs",
    "loudness_lufs": "loudness_lufs", "duration_s": "duration_s", "duration": "duration_s", "year": "year",
    "valence": "valence", "acousticness": "acousticness", "instrumentalness": "instrumentalness",
}
NAMES = ("key", "camelot", "scale", "genre", "artist", "album", "tags", "tag_min")
FILTER_NAMES = tuple(RANGES) + NAMES
_KEY_RE = re.compile(r"^\s*([A-Ga-g][#♯b♭]?)\s*(m|min|minor|maj|major)?\s*$", re.IGNORECASE)


def _range(name: str, value: Any) -> tuple[float, float]:
    if isinstance(value, bool):
        raise BadRequestError(f"filter '{name}' must be a number or a [low, high] list, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in value):
        low = -np.inf if value[0] is None else float(value[0])
        high = np.inf if value[1] is None else float(value[1])
        if low > high:
            raise BadRequestError(f"filter '{name}': low {low:g} is above high {high:g}",
                                  hint="write ranges as [low, high]")
        return low, high
    raise BadRequestError(f"filter '{name}' must be a number or a [low, high] list, got {value!r}",
                          hint=f'e.g. "{name}": [90, 130]')


def _names(name: str, value: Any) -> list[str]:
    if isinstance(value, str) and value.strip():
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return list(value)
    raise BadRequestError(f"filter '{name}' must be a name or a list of names, got {value!r}")


def _match_names(kind: str, wanted: list[str], codes: np.ndarray, names: list[str]) -> np.ndarray:
    """Rows whose name equals (case-insensitively) or contains one of ``wanted``."""
    folded = [n.casefold() for n in names]
    hit: set[int] = set()
    for word in wanted:
        w = word.casefold().strip()
        exact = [i for i, n in enumerate(folded) if n == w]
        found = exact or [i for i, n in enumerate(folded) if w in n]
        if not found:
            raise UnknownNameError(kind, word, names)
        hit.update(found)
    return np.isin(codes, np.fromiter(hit, dtype=np.int32))


def parse_key(text: str) -> tuple[str, int | tuple[int, int | None]]:
    """'8A' → ('camelot', code); 'A minor' → ('key', (9, 0)); 'A' → ('key', (9, None))."""
    code = camelot_index(text)
    if code >= 0:
        return "camelot", code
    m = _KEY_RE.match(text)
    if m:
        pc = pitch_class(m.group(1)[0].upper() + m.group(1)[1:])
        if pc is not None:
            mode = (m.group(2) or "").lower()
            scale = None if not mode else (0 if mode.startswith("m") and mode not in ("maj", "major") else 1)
            if m.group(2) == "M":  # "AM" reads as A major only when written that way on purpose
                scale = 1
            return "key", (pc, scale)
    raise BadRequestError(f"'{text}' is not a key",
                          hint="use a Camelot code (8A), a key and scale (A minor) or a key (A)")


def key_mask(cat: Catalog, texts: list[str]) -> np.ndarray:
    mask = np.zeros(cat.size, dtype=bool)
    for text in texts:
        kind, value = parse_key(text)
        if kind == "camelot":
            mask |= cat.camelot == value
        else:
            pc, scale = value  # type: ignore[misc]
            m = cat.key_pc == pc
            if scale is not None:
                m &= cat.scale == scale
            mask |= m
    return mask


def tags_mask(cat: Catalog, words: list[str], minimum: float) -> np.ndarray:
    """Rows where every requested tag (or one of its alias members) reaches ``minimum``."""
    mask = np.ones(cat.size, dtype=bool)
    for columns in resolve_tags(words, cat.tag_labels):
        mask &= cat.tags[:, columns].max(axis=1).astype(np.float32) >= minimum
    return mask


def filter_mask(cat: Catalog, filters: dict[str, Any] | None, tag_min: float) -> np.ndarray:
    """The rows that pass every filter. Unknown filter names get a "did you mean"."""
    mask = np.ones(cat.size, dtype=bool)
    if not filters:
        return mask
    if not isinstance(filters, dict):
        raise BadRequestError("'filters' must be an object", hint='e.g. {"bpm": [90, 130], "tags": ["chill"]}')
    for name in filters:
        if name not in FILTER_NAMES:
            raise UnknownNameError("filter", str(name), FILTER_NAMES)
    minimum = filters.get("tag_min", tag_min)
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not 0 <= minimum <= 1:
        raise BadRequestError(f"filter 'tag_min' must be a number from 0 to 1, got {minimum!r}")
    for name, value in filters.items():
        if value is None or name == "tag_min":
            continue
        if name in RANGES:
            low, high = _range(name, value)
            col = cat.num[RANGES[name]]
            with np.errstate(invalid="ignore"):
                mask &= (col >= low) & (col <= high)
        elif name in ("key", "camelot"):
            mask &= key_mask(cat, _names(name, value))
        elif name == "scale":
            scales = {s.casefold() for s in _names(name, value)}
            bad = scales - {"major", "minor"}
            if bad:
                raise UnknownNameError("scale", bad.pop(), ["major", "minor"])
            mask &= np.isin(cat.scale, [1 if s == "major" else 0 for s in scales])
        elif name == "genre":
            mask &= _genre_mask(cat, _names(name, value), float(minimum))
        elif name == "artist":
            mask &= _match_names("artist", _names(name, value), cat.artist, cat.artist_names)
        elif name == "album":
            mask &= _match_names("album", _names(name, value), cat.album, cat.album_names)
        elif name == "tags":
            mask &= tags_mask(cat, _names(name, value), float(minimum))
    return mask


def _genre_mask(cat: Catalog, words: list[str], minimum: float) -> np.ndarray:
    """File genre tag contains the word, or (for files without a genre) the ML tag of that name."""
    folded = [n.casefold() for n in cat.genre_names]
    tag_cols = {label.casefold(): i for i, label in enumerate(cat.tag_labels)}
    mask = np.zeros(cat.size, dtype=bool)
    for word in words:
        w = word.casefold().strip()
        codes = [i for i, n in enumerate(folded) if w in n]
        found = bool(codes)
        if codes:
            mask |= np.isin(cat.genre, codes)
        if w in tag_cols:
            found = True
            mask |= (cat.genre < 0) & (cat.tags[:, tag_cols[w]].astype(np.float32) >= minimum)
        if not found:
            raise UnknownNameError("genre", word, [*cat.genre_names, *cat.tag_labels])
    return mask

"""Exclusions: tracks that automatic playlists leave out — audiobooks, podcasts, DJ sets,
Christmas music in radio.

Rules (``playlists.exclude`` in the config, and ``"exclude": {...}`` in a request, same shape)::

    paths:            globs matched against the file's absolute path, case-insensitively, where
                      * also matches "/" (e.g. "*.m4b", "*/Podcasts/*")
    folders:          folders whose files are left out (relative ones are taken inside every
                      library.paths entry)
    genres:           words matched against the file's genre tag (case-insensitive, part of the
                      name: "christmas" matches "Christmas Music")
    tags:             {ML label: minimum probability}, e.g. {"Christmas": 0.5}
    max_duration_min: tracks longer than this many minutes (0 = no limit; default 20: DJ sets,
                      audiobook chapters, live recordings of a whole concert)

The configured rules apply to every strategy unless the request says ``"include_excluded": true``;
the request's own ``exclude`` rules are added to them (its ``max_duration_min`` replaces the
configured one). Seeds the user names are never excluded. Pure functions over the catalog plus
the live file paths (read only when a path or folder rule exists).
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import BadRequestError
from ..storage.files import live_files
from .catalog import Catalog
from .index import distances, query_of
from .names import UnknownNameError

log = logging.getLogger(__name__)

RULE_NAMES = ("paths", "folders", "genres", "tags", "max_duration_min")


@dataclass(frozen=True)
class ExcludeRules:
    paths: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    genres: tuple[str, ...] = ()
    tags: tuple[tuple[str, float], ...] = ()
    max_duration_min: float = 0.0

    @property
    def empty(self) -> bool:
        return not (self.paths or self.folders or self.genres or self.tags or self.max_duration_min > 0)

    @property
    def needs_paths(self) -> bool:
        return bool(self.paths or self.folders)

    def plus(self, other: ExcludeRules, other_duration: bool) -> ExcludeRules:
        """Both rule sets; ``other``'s duration limit wins when it set one."""
        def union(a: tuple, b: tuple) -> tuple:
            return tuple(dict.fromkeys((*a, *b)))
        return ExcludeRules(union(self.paths, other.paths), union(self.folders, other.folders),
                            union(self.genres, other.genres), union(self.tags, other.tags),
                            other.max_duration_min if other_duration else self.max_duration_min)

    def to_dict(self) -> dict[str, Any]:
        return {"paths": list(self.paths), "folders": list(self.folders), "genres": list(self.genres),
                "tags": dict(self.tags), "max_duration_min": self.max_duration_min}


def _strings(where: str, value: Any) -> tuple[str, ...]:
    """A list of non-blank strings, one string alone, or null (none)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise BadRequestError(f"'{where}' must be a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


def parse_rules(raw: Any, where: str = "exclude") -> ExcludeRules:
    """Validate a rules object (config section or request field)."""
    if raw is None:
        return ExcludeRules()
    if not isinstance(raw, Mapping):
        raise BadRequestError(f"'{where}' must be an object",
                              hint='e.g. {"genres": ["christmas"], "max_duration_min": 15, "paths": ["*/Podcasts/*"]}')
    for key in raw:
        if key not in RULE_NAMES:
            raise UnknownNameError(f"{where} rule", str(key), RULE_NAMES)
    tags = {} if raw.get("tags") is None else raw["tags"]   # null: no rule; false or 0 are not rules
    if not isinstance(tags, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
            for k, v in tags.items()):
        raise BadRequestError(f"'{where}.tags' must map ML labels to a probability from 0 to 1",
                              hint='e.g. {"tags": {"Christmas": 0.5}}')
    minutes = 0 if raw.get("max_duration_min") is None else raw["max_duration_min"]
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or minutes < 0:
        raise BadRequestError(f"'{where}.max_duration_min' must be a number of minutes (0 = no limit), got {minutes!r}")
    return ExcludeRules(paths=_strings(f"{where}.paths", raw.get("paths")),
                        folders=_strings(f"{where}.folders", raw.get("folders")),
                        genres=_strings(f"{where}.genres", raw.get("genres")),
                        tags=tuple((k, float(v)) for k, v in tags.items()), max_duration_min=float(minutes))


def effective_rules(configured: ExcludeRules, request: Any, include_excluded: bool) -> ExcludeRules:
    """What a request excludes: the configured rules (unless ``include_excluded``) plus its own."""
    own = parse_rules(request) if request is not None else ExcludeRules()
    base = ExcludeRules() if include_excluded else configured
    return base.plus(own, other_duration=isinstance(request, Mapping) and "max_duration_min" in request)


def _folder_prefixes(folders: Iterable[str], roots: Iterable[str]) -> list[str]:
    out = []
    for folder in folders:
        bases = [folder] if os.path.isabs(folder) else [os.path.join(r, folder) for r in roots]
        out.extend(os.path.normcase(os.path.abspath(b)).rstrip(os.sep) + os.sep for b in bases)
    return out


def path_excluded(path: str, globs: Iterable[str], prefixes: Iterable[str]) -> bool:
    """A file path caught by a glob (case-insensitive) or inside one of the folder prefixes."""
    folded = path.casefold()
    if any(fnmatch.fnmatchcase(folded, g.casefold()) for g in globs):
        return True
    norm = os.path.normcase(os.path.abspath(path))
    return any(norm.startswith(p) for p in prefixes)


def excluded_mask(cat: Catalog, rules: ExcludeRules, *, paths: Callable[[], Iterable[tuple[int, str]]] | None = None,
                  roots: Iterable[str] = (), strict: bool = True) -> np.ndarray:
    """Bool per catalog row: excluded by ``rules``. ``paths()`` yields (track id, path) of live
    files (called only for path/folder rules). ``strict``: an ML label the library does not know
    is an error (a request); otherwise it is skipped with a warning (the config: a library
    analysed with preset fast has no tags)."""
    mask = np.zeros(cat.size, dtype=bool)
    if rules.empty or cat.size == 0:
        return mask
    if rules.max_duration_min > 0:
        with np.errstate(invalid="ignore"):
            mask |= cat.num["duration_s"] > rules.max_duration_min * 60
    if rules.genres:
        words = [g.casefold() for g in rules.genres]
        codes = [i for i, name in enumerate(cat.genre_names) if any(w in name.casefold() for w in words)]
        if codes:
            mask |= np.isin(cat.genre, codes)
    for label, minimum in rules.tags:
        column = cat.tag_index(label)
        if column is None:
            if strict:
                raise UnknownNameError("ML tag", label, cat.tag_labels)
            log.warning("playlists.exclude.tags: the library has no ML tag '%s' (skipped)", label)
            continue
        mask |= cat.tags[:, column].astype(np.float32) >= minimum
    if rules.needs_paths and paths is not None:
        prefixes = _folder_prefixes(rules.folders, roots)
        hit = {track_id for track_id, path in paths() if path_excluded(path, rules.paths, prefixes)}
        if hit:
            rows = cat.rows_of(np.fromiter(hit, dtype=np.int64))
            mask[rows[rows >= 0]] = True
    return mask


class Exclusions:
    """The configured rules and a small cache of masks per (catalog snapshot, rules): path rules
    read every live file path, which at 200k files is worth doing once per library change."""

    def __init__(self, db: Any, configured: Any, roots: Iterable[str], cache_size: int = 8) -> None:
        import threading

        from cachetools import LRUCache

        self.db = db
        self.configured = parse_rules(configured, "playlists.exclude")
        self.roots = [str(r) for r in roots]
        self._cache: LRUCache = LRUCache(maxsize=cache_size)
        self._lock = threading.Lock()

    def _paths(self) -> list[tuple[int, str]]:
        return [(track_id, path) for path, track_id in live_files(self.db)]

    def mask(self, cat: Catalog, rules: ExcludeRules, strict: bool = True) -> np.ndarray:
        key = (cat.key, cat.size, rules)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            found = excluded_mask(cat, rules, paths=self._paths, roots=self.roots, strict=strict)
            with self._lock:
                self._cache[key] = found
        return found

    def for_request(self, cat: Catalog, request_rules: Any, include_excluded: bool) -> np.ndarray | None:
        """The mask for a playlist request (None when nothing is excluded)."""
        rules = effective_rules(self.configured, request_rules, include_excluded)
        if rules.empty:
            return None
        return self.mask(cat, rules, strict=request_rules is not None and rules != self.configured)

    def count(self, cat: Catalog) -> int:
        """How many tracks the configured rules leave out."""
        return 0 if self.configured.empty else int(self.mask(cat, self.configured, strict=False).sum())


def feedback_masks(cat: Catalog, skipped: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Bool per catalog row for the listener's recent skips (``feedback.events.Skipped``): the
    skipped tracks, and their ``feedback.neighbours`` closest tracks in the "sounds like" space
    the playlists rank by (the skipped ones themselves not among them). None when nothing applies."""
    if not skipped or cat.size == 0:
        return None
    rows = cat.rows_of(np.asarray(skipped.track_ids(), dtype=np.int64))
    rows = rows[rows >= 0]
    if rows.size == 0:
        return None
    hit = np.zeros(cat.size, dtype=bool)
    hit[rows] = True
    near = np.zeros(cat.size, dtype=bool)
    k = min(int(skipped.rules.neighbours), cat.size - 1)
    if k > 0:
        for start in range(0, rows.size, 256):   # bounded memory: 256 × n distances at a time
            part = rows[start:start + 256]
            d = distances(cat, *query_of(cat, part)).astype(np.float64)
            d[:, hit] = np.inf
            nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
            near[nearest[np.isfinite(np.take_along_axis(d, nearest, axis=1))]] = True
    return hit, near & ~hit

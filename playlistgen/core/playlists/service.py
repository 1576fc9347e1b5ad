"""What the HTTP API and the CLI call: validate a playlist request, run the strategy on the
current catalog, look the tracks up (live only), save and render. Built once in the entry point;
the catalog is loaded lazily on first use and rebuilt when the library changes."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...config import Settings
from ...errors import BadRequestError
from ..storage.db import Database
from ..storage.records import library_state
from ..threads import single_threaded_blas
from . import store, tracks
from .catalog import Catalog
from .diversity import Diversity
from .exclusions import Exclusions, parse_rules
from .export import PathOptions
from .features import load_catalog
from .for_you import load_history
from .index import IndexManager, nearest
from .names import UnknownNameError, UnknownTrackError
from .registry import STRATEGIES, make_picker, run
from .strategies import Strategy, coerce_params
from .transitions import parse_order, with_transition_costs

log = logging.getLogger(__name__)

MAX_SIZE = 10000
MAX_DURATION_MIN = 10000
REQUEST_KEYS = ("strategy", "seeds", "size", "duration_min", "filters", "diversity", "save", "name", "params",
                "random_seed", "order", "exclude", "include_excluded")
DIVERSITY_KEYS = ("artist_gap", "album_gap", "max_per_artist", "dedupe")


@dataclass
class PlaylistRequest:
    strategy: Strategy
    seeds: list[Any]
    size: int
    duration_s: float | None
    filters: dict
    diversity: Diversity
    diversity_explicit: bool
    params: dict
    save: bool = False
    name: str | None = None
    random_seed: int | None = None
    raw: dict = field(default_factory=dict)
    order: str = "smooth"            # transitions.ORDERS
    exclude: dict | None = None      # request-level exclusion rules (exclusions.parse_rules)
    include_excluded: bool = False   # ignore playlists.exclude

    def normalised(self) -> dict:
        out = {"strategy": self.strategy.name, "seeds": self.seeds, "size": self.size, "filters": self.filters,
               "diversity": self.diversity.__dict__, "params": self.params}
        if self.duration_s is not None:
            out["duration_min"] = self.duration_s / 60
        if self.random_seed is not None:
            out["random_seed"] = self.random_seed
        out["order"] = self.order
        if self.exclude is not None:
            out["exclude"] = self.exclude
        if self.include_excluded:
            out["include_excluded"] = True
        return out


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError(f"'{name}' must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_request(body: Any, settings: Settings) -> PlaylistRequest:
    """Check a POST /api/v1/playlists body; unknown names get a "did you mean"."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object",
                              hint='e.g. {"strategy": "radio", "seeds": ["Artist - Title"]}')
    name = body.get("strategy")
    if name is None or name == "":
        raise BadRequestError("'strategy' is required", hint="see GET /api/v1/playlists/strategies")
    if not isinstance(name, str):
        raise BadRequestError(f"'strategy' must be a string, got {name!r}",
                              hint='a strategy name such as "radio"; see GET /api/v1/playlists/strategies')
    if name not in STRATEGIES:
        raise UnknownNameError("strategy", name, STRATEGIES)
    strategy = STRATEGIES[name]
    param_names = [p.name for p in strategy.params]
    for key in body:
        if key not in REQUEST_KEYS and key not in param_names:
            raise UnknownNameError("request field", key, [*REQUEST_KEYS, *param_names])
    raw_params = body.get("params") or {}
    if not isinstance(raw_params, dict):
        raise BadRequestError("'params' must be an object")
    raw_params = {**{k: body[k] for k in param_names if k in body}, **raw_params}
    seeds = body.get("seeds") or []
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if len(seeds) < strategy.min_seeds or strategy.max_seeds is not None and len(seeds) > strategy.max_seeds:
        raise BadRequestError(f"strategy '{name}' takes {strategy.to_dict()['seeds']} seed(s), got {len(seeds)}",
                              hint='seeds are track ids or "Artist - Title"')
    p = settings.playlists
    default_size = MAX_SIZE if name == "all" else p.default_size
    duration_s = None
    if body.get("duration_min") is not None:
        minutes = body["duration_min"]
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= MAX_DURATION_MIN:
            raise BadRequestError(f"'duration_min' must be a number of minutes from 1 to {MAX_DURATION_MIN}")
        duration_s = float(minutes) * 60
        default_size = MAX_SIZE
    size = _int("size", body["size"], 1, MAX_SIZE) if body.get("size") is not None else default_size
    rules = Diversity(p.artist_gap, p.album_gap, p.max_per_artist, p.dedupe)
    div = body.get("diversity")
    explicit = div is not None
    if div is False:
        rules = Diversity.off()
    elif isinstance(div, dict):
        for key, value in div.items():
            if key not in DIVERSITY_KEYS:
                raise UnknownNameError("diversity setting", key, DIVERSITY_KEYS)
            if key == "dedupe":
                if not isinstance(value, bool):
                    raise BadRequestError("'diversity.dedupe' must be true or false")
            else:
                _int(f"diversity.{key}", value, 0, 1000)
            setattr(rules, key, value)
    elif div is not None and div is not True:
        raise BadRequestError("'diversity' must be an object, true or false",
                              hint='e.g. {"artist_gap": 3, "album_gap": 2, "max_per_artist": 2, "dedupe": true}')
    filters = body.get("filters") or {}
    if not isinstance(filters, dict):
        raise BadRequestError("'filters' must be an object", hint='e.g. {"bpm": [90, 130]}')
    if name == "mood" and not raw_params.get("tags") and filters.get("tags"):
        # DESIGN §5 puts tags in filters: mood ranks by them (match/min_probability apply) instead
        # of only filtering by them
        raw_params["tags"] = filters["tags"]
        if raw_params.get("min_probability") is None and filters.get("tag_min") is not None:
            raw_params["min_probability"] = filters["tag_min"]
        filters = {k: v for k, v in filters.items() if k != "tags"}
    random_seed = body.get("random_seed")
    if random_seed is not None:
        random_seed = _int("random_seed", random_seed, 0, 2**63 - 1)
    save = body.get("save", False)
    if not isinstance(save, bool):
        raise BadRequestError("'save' must be true or false")
    title = body.get("name")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise BadRequestError("'name' must be a non-empty string")
    params = coerce_params(strategy, raw_params)
    include_excluded = body.get("include_excluded", False)
    if not isinstance(include_excluded, bool):
        raise BadRequestError("'include_excluded' must be true or false")
    exclude = body.get("exclude")
    if exclude is not None:
        exclude = parse_rules(exclude).to_dict()
    return PlaylistRequest(strategy, seeds, size, duration_s, filters, rules, explicit, params, save, title,
                           random_seed, body, parse_order(body.get("order"), strategy.default_order(params)),
                           exclude, include_excluded)


def library_index(db: Database, settings: Settings, metrics: Any = None, *,
                  min_rebuild_s: float = 10.0) -> IndexManager:
    """The similarity index of the library: catalogs loaded with the configured weights, rebuilt
    when the library state changes (see IndexManager)."""
    p = settings.playlists
    weights = {"scalars": p.weight_scalars, "mfcc": p.weight_mfcc, "chroma": p.weight_chroma,
               "embedding": p.weight_embedding}

    def load(key: tuple) -> Catalog:
        started = time.perf_counter()
        catalog = load_catalog(db, key, weights, p.metric)
        if metrics is not None:
            metrics.observe("index_build", time.perf_counter() - started, tracks=catalog.size)
        return catalog

    return IndexManager(load, lambda: library_state(db), check_s=p.index_check_s, min_rebuild_s=min_rebuild_s)


class PlaylistService:
    def __init__(self, db: Database, settings: Settings, *, index: IndexManager | None = None,
                 cache: Any = None, metrics: Any = None) -> None:
        self.db = db
        self.settings = settings
        self.cache = cache      # core.cache.FeatureCache for per-track feature reads (get_track_features)
        self.metrics = metrics  # core.metrics.Metrics: times playlist_build
        # hooks wired by the entry point (e.g. the media-server push): on_saved(meta) may add notes
        # to the saved playlist's meta; before_delete(playlist_id) runs before its rows go
        self.on_saved: list[Any] = []
        self.before_delete: list[Any] = []
        self.index = index if index is not None else library_index(db, settings, metrics)
        self.exclusions = Exclusions(db, settings.playlists.exclude, settings.library.paths)
        self.path_options = PathOptions.from_settings(settings)   # path_map / relative_paths of exports

    def warm_up(self) -> None:
        """Called by `serve` once the daemon runs: one BLAS thread per request thread, and the
        catalog loading in the background."""
        single_threaded_blas()
        self.index.warm()

    @property
    def tag_min(self) -> float:
        return self.settings.playlists.tag_min_probability

    def catalog(self) -> Catalog:
        return self.index.current()

    def rows_of(self, track_ids: list[int]) -> tuple[Catalog, np.ndarray]:
        """Catalog rows of live tracks; a track analysed since the last build triggers a rebuild."""
        cat = self.catalog()
        rows = cat.rows_of(track_ids)
        if (rows < 0).any():
            cat = self.index.refresh()
            rows = cat.rows_of(track_ids)
        for track_id, row in zip(track_ids, rows, strict=True):
            if row < 0:
                raise UnknownTrackError(f"id {track_id} (it has no analysis)")
        return cat, rows

    # --- tracks ----------------------------------------------------------------------------------
    def search(self, **kwargs: Any) -> dict:
        return tracks.search(self.db, tag_min=self.tag_min, **kwargs)

    def track(self, track_id: int) -> dict:
        return tracks.track_detail(self.db, track_id, self.cache)

    def similar(self, track_id: int, n: int) -> dict:
        seed = tracks.track_objects(self.db, [track_id])
        if not seed:
            raise UnknownTrackError(f"id {track_id}")
        cat, rows = self.rows_of([track_id])
        row = int(rows[0])
        found, dist = nearest(cat, row, n * 3 + 10)
        # other versions of the seed song and duplicate versions among the results are skipped
        picker = make_picker(cat, Diversity(0, 0, 0, True), n + 1)  # + the seed itself
        picker.force(row)
        picker.fill(found)
        distance = {int(r): float(d) for r, d in zip(found, dist, strict=True)}
        ids = [int(cat.track_ids[r]) for r in picker.rows[1:]]
        objects = tracks.track_objects(self.db, ids)
        by_row = {int(cat.track_ids[r]): distance[r] for r in picker.rows[1:]}
        for obj in objects:
            obj["distance"] = round(by_row[obj["id"]], 4)
        return {"track": seed[0], "similar": objects, "metric": cat.metric}

    # --- playlists -------------------------------------------------------------------------------
    def generate(self, body: Any) -> dict:
        """A playlist response {"playlist": {...}, "tracks": [...]} (saved when ``save`` is true)."""
        started = time.perf_counter()
        req = parse_request(body, self.settings)
        seed_ids = [tracks.resolve_seed(self.db, s) for s in req.seeds]
        cat, seed_rows = self.rows_of(seed_ids) if seed_ids else (self.catalog(), np.zeros(0, dtype=np.int64))
        ctx = run(cat, req.strategy, seeds=[int(r) for r in seed_rows], size=req.size, duration_s=req.duration_s,
                  params=req.params, filters=req.filters, rules=req.diversity, tag_min=self.tag_min,
                  random_seed=req.random_seed, diversity_explicit=req.diversity_explicit,
                  history=load_history(self.db) if req.strategy.uses_history else None, order=req.order,
                  transition_weights=self.settings.playlists.transition_weights,
                  excluded=self.exclusions.for_request(cat, req.exclude, req.include_excluded))
        picker = ctx.picker
        ids = [int(cat.track_ids[r]) for r in picker.rows]
        objects = tracks.track_objects(self.db, ids)
        with_transition_costs(objects, ids, ctx.transition_costs)
        if len(objects) < len(ids):
            ctx.notes.append(f"{len(ids) - len(objects)} track(s) left out: their files went missing")
        notes = list(dict.fromkeys(ctx.notes))
        meta = {"id": None, "name": req.name or ctx.name or req.strategy.name, "strategy": req.strategy.name,
                "size": len(objects), "duration_s": round(sum(t["duration_s"] or 0 for t in objects), 1),
                "params": req.normalised(), "notes": notes, **ctx.info,
                "generated_ms": round((time.perf_counter() - started) * 1000, 2)}
        body_out = {"playlist": meta, "tracks": objects}
        if req.save:
            body_out["playlist"] = store.save_playlist(self.db, self.settings.playlists.output_dir, body_out,
                                                       paths=self.path_options)
            for hook in self.on_saved:
                hook(body_out["playlist"])
        log.debug("playlist %s: %d tracks in %.1f ms", req.strategy.name, len(objects), meta["generated_ms"])
        if self.metrics is not None:
            self.metrics.observe("playlist_build", meta["generated_ms"] / 1000, strategy=req.strategy.name,
                                 seeds=len(req.seeds), size=len(objects))
        return body_out

    def strategies(self) -> list[dict]:
        return [s.to_dict() for s in STRATEGIES.values()]

    def list_playlists(self, limit: int = 50, offset: int = 0) -> dict:
        return store.list_playlists(self.db, limit, offset)

    def get_playlist(self, playlist_id: int) -> dict:
        return store.get_playlist(self.db, playlist_id)

    def delete_playlist(self, playlist_id: int) -> dict:
        store.get_playlist_name(self.db, playlist_id)  # NotFoundError before any hook runs
        for hook in self.before_delete:
            hook(playlist_id)
        return store.delete_playlist(self.db, playlist_id)

    def stats(self) -> dict:
        return self.index.stats()

    def excluded_count(self) -> int | None:
        """Tracks that playlists.exclude leaves out of automatic playlists (None until the
        similarity index is first built: the status endpoint never waits for it)."""
        cat = self.index.peek()
        return None if cat is None else self.exclusions.count(cat)

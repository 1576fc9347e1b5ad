"""The one way to make a playlist. A ``PlaylistRequest`` is built either from an HTTP, CLI or
config body by ``PlaylistRequest.parse`` (which checks every field) or in Python by
``PlaylistRequest.of`` (typed values, defaults from the settings); ``PlaylistService.generate``
runs it on the current catalog, looks the tracks up (live only), saves and reports, and
``PlaylistService.pick`` is the same run for callers that want catalog rows (the sonic search).
Built once in the entry point; the catalog is loaded lazily on first use and rebuilt when the
library changes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...config import Settings
from ...errors import BadRequestError
from ..feedback.events import FeedbackStore
from ..feedback.rules import FeedbackRules
from ..similarity.fit import mtt_missing
from ..similarity.store import newest_id
from ..storage.db import Database
from ..storage.records import library_state
from ..threads import single_threaded_blas
from . import store, tracks
from .catalog import Catalog
from .diversity import Diversity
from .exclusions import Exclusions, feedback_masks, parse_rules
from .export import PathOptions
from .features import load_catalog, space_chooser
from .for_you import load_history
from .index import IndexManager, nearest
from .names import UnknownNameError, UnknownTrackError
from .registry import STRATEGIES, make_picker, run
from .strategies import Context, Strategy, coerce_params
from .transitions import parse_order, with_transition_costs

log = logging.getLogger(__name__)

MAX_SIZE = 10000
MAX_DURATION_MIN = 10000
REQUEST_KEYS = ("strategy", "seeds", "size", "duration_min", "filters", "diversity", "save", "name", "params",
                "random_seed", "order", "exclude", "include_excluded")
DIVERSITY_KEYS = ("artist_gap", "album_gap", "max_per_artist", "dedupe")


@dataclass(frozen=True)
class PlaylistRequest:
    """One playlist to make, every field typed and complete (see ``parse`` and ``of``)."""

    strategy: Strategy
    seeds: list[Any]                 # track ids or "Artist - Title", resolved when the playlist is made
    size: int
    duration_s: float | None
    filters: dict
    diversity: Diversity
    diversity_explicit: bool         # the request set the rules (strategies without diversity then use them)
    params: dict                     # the strategy's parameters, defaults filled in
    save: bool = False
    name: str | None = None
    random_seed: int | None = None
    order: str = "smooth"            # transitions.ORDERS
    exclude: dict | None = None      # request-level exclusion rules (exclusions.parse_rules)
    include_excluded: bool = False   # ignore playlists.exclude
    # from Python only (no request body has them):
    after: tuple[int, ...] = ()      # track ids the playlist continues (e.g. MPD's queue), oldest first
    restrict: Callable[[Catalog], np.ndarray] | None = None   # catalog rows allowed (e.g. the media server's)
    listener: str | None = None      # whose skips count (core/feedback): None = MPD and the linked user
    forgive: tuple[int, ...] = ()    # track ids whose recent skips this playlist overlooks (MPD radio's soft skips)

    @classmethod
    def parse(cls, body: Any, settings: Settings) -> PlaylistRequest:
        """Check a POST /api/v1/playlists body (also the CLI's and a scheduled mix's): every field
        checked and coerced once; unknown names get a "did you mean"."""
        return _parse(body, settings)

    @classmethod
    def of(cls, strategy: str, settings: Settings, *, seeds: Sequence[int | str] = (), size: int | None = None,
           duration_s: float | None = None, params: dict[str, Any] | None = None, filters: dict | None = None,
           diversity: Diversity | None = None, order: str | None = None, random_seed: int | None = None,
           name: str | None = None, save: bool = False, exclude: dict | None = None,
           include_excluded: bool = False, after: Sequence[int] = (),
           restrict: Callable[[Catalog], np.ndarray] | None = None, listener: str | None = None,
           forgive: Sequence[int] = ()) -> PlaylistRequest:
        """A request from Python values, which are trusted (outside input goes through ``parse``):
        unless given, the strategy's parameter defaults, the configured diversity rules and size
        (``default_size``) and the strategy's order."""
        s = STRATEGIES[strategy]
        full = s.with_defaults(params)
        rules = Diversity.configured(settings.playlists) if diversity is None else diversity
        return cls(s, list(seeds), default_size(strategy, duration_s, settings) if size is None else size,
                   duration_s, dict(filters or {}), rules, diversity is not None, full, save=save, name=name,
                   random_seed=random_seed, order=order or s.default_order(full), exclude=exclude,
                   include_excluded=include_excluded, after=tuple(after), restrict=restrict, listener=listener,
                   forgive=tuple(forgive))

    def normalised(self) -> dict:
        """The request as the response's ``params`` (copies: a scheduled mix reuses its request)."""
        out = {"strategy": self.strategy.name, "seeds": list(self.seeds), "size": self.size,
               "filters": dict(self.filters), "diversity": dict(self.diversity.__dict__), "params": dict(self.params)}
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


def default_size(strategy: str, duration_s: float | None, settings: Settings) -> int:
    """A request without a size: every track for ``all`` and for a length in minutes (up to
    MAX_SIZE), else ``playlists.default_size``."""
    return MAX_SIZE if strategy == "all" or duration_s is not None else settings.playlists.default_size


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():   # JSON has one number type: 5.0 is the integer 5
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequestError(f"'{name}' must be a whole number from {low} to {high}, got {value!r}")
    return value


def _object(name: str, value: Any, example: str) -> dict:
    """A request field that is an object; null (or absent) is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequestError(f"'{name}' must be an object, got {value!r}", hint=f"e.g. {example}")
    return value


def _seeds(value: Any) -> list:
    """``seeds``: a list, one seed alone, or null; 5.0 is the track id 5 (JSON has one number type)."""
    if value is None:
        return []
    seeds = value if isinstance(value, list) else [value]
    return [int(s) if isinstance(s, float) and s.is_integer() else s for s in seeds]


def _parse(body: Any, settings: Settings) -> PlaylistRequest:  # PlaylistRequest.parse
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
    raw_params = _object("params", body.get("params"), '{"params": {"pool": 500}}')
    top_level = {k: body[k] for k in param_names if k in body}
    if top_level and raw_params:   # both places given: each is checked, params wins
        coerce_params(strategy, top_level)
    raw_params = {**top_level, **raw_params}
    seeds = _seeds(body.get("seeds"))
    if len(seeds) < strategy.min_seeds or strategy.max_seeds is not None and len(seeds) > strategy.max_seeds:
        raise BadRequestError(f"strategy '{name}' takes {strategy.to_dict()['seeds']} seed(s), got {len(seeds)}",
                              hint='seeds are track ids or "Artist - Title"')
    duration_s = None
    if body.get("duration_min") is not None:
        minutes = body["duration_min"]
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= MAX_DURATION_MIN:
            raise BadRequestError(f"'duration_min' must be a number of minutes from 1 to {MAX_DURATION_MIN}")
        duration_s = float(minutes) * 60
    size = (_int("size", body["size"], 1, MAX_SIZE) if body.get("size") is not None
            else default_size(name, duration_s, settings))
    rules = Diversity.configured(settings.playlists)
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
                value = _int(f"diversity.{key}", value, 0, 1000)
            setattr(rules, key, value)
    elif div is not None and div is not True:
        raise BadRequestError("'diversity' must be an object, true or false",
                              hint='e.g. {"artist_gap": 3, "album_gap": 2, "max_per_artist": 2, "dedupe": true}')
    filters = _object("filters", body.get("filters"), '{"bpm": [90, 130]}')
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
        given = exclude
        exclude = parse_rules(given).to_dict()
        if "max_duration_min" not in given:   # keep the configured limit (effective_rules reads the key)
            del exclude["max_duration_min"]
    return PlaylistRequest(strategy, seeds, size, duration_s, filters, rules, explicit, params, save, title,
                           random_seed, parse_order(body.get("order"), strategy.default_order(params)),
                           exclude, include_excluded)


def library_index(db: Database, settings: Settings, metrics: Any = None, *,
                  min_rebuild_s: float = 10.0) -> IndexManager:
    """The similarity index of the library: catalogs loaded with the configured weights, rebuilt
    when the library state changes or a projection is fitted (see IndexManager)."""
    p, sim = settings.playlists, settings.similarity
    choose = space_chooser(db, sim.projection, sim.min_tracks)
    weights = {"scalars": p.weight_scalars, "mfcc": p.weight_mfcc, "chroma": p.weight_chroma,
               "embedding": p.weight_embedding}

    def load(key: tuple) -> Catalog:
        started = time.perf_counter()
        catalog = load_catalog(db, key, weights, p.metric, choose)
        if metrics is not None:
            metrics.observe("index_build", time.perf_counter() - started, tracks=catalog.size)
        return catalog

    def state() -> tuple:   # a refit stores a new projection row, or the upgrade gives every track MTT:
        return (*library_state(db), newest_id(db), mtt_missing(db))   # the key changes, one rebuild

    return IndexManager(load, state, check_s=p.index_check_s, min_rebuild_s=min_rebuild_s)


@dataclass(frozen=True)
class Picked:
    """A playlist as catalog rows, before any lookup (``PlaylistService.pick``)."""

    catalog: Catalog
    seeds: list[int]    # the seeds' catalog rows
    context: Context    # the strategy's run: notes, info, transition costs

    @property
    def rows(self) -> list[int]:
        return self.context.picker.rows


class PlaylistService:
    def __init__(self, db: Database, settings: Settings, *, index: IndexManager | None = None,
                 cache: Any = None, metrics: Any = None, feedback: FeedbackStore | None = None) -> None:
        self.db = db
        self.settings = settings
        self.cache = cache      # core.cache.FeatureCache for per-track feature reads (get_track_features)
        self.metrics = metrics  # core.metrics.Metrics: times playlist_build
        # hooks wired by the entry point (e.g. the media-server push): on_saved(meta) may add notes
        # to the saved playlist's meta; before_delete(playlist_id) runs before its rows go;
        # server_songs(catalog) → the rows the media server has, which playlists made for it
        # (saved ones, when they are pushed) are chosen from
        self.on_saved: list[Any] = []
        self.before_delete: list[Any] = []
        self.server_songs: Callable[[Catalog], np.ndarray] | None = None
        self.index = index if index is not None else library_index(db, settings, metrics)
        self.exclusions = Exclusions(db, settings.playlists.exclude, settings.library.paths)
        # skips and full plays (core/feedback): strategies that listen leave out what was skipped
        self.feedback = feedback if feedback is not None else FeedbackStore(db, FeedbackRules.configured(settings))
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
    def pick(self, req: PlaylistRequest, *, for_server: bool = False) -> Picked:
        """Run the request's strategy on the current catalog (seeds resolved, exclusions and
        listening history applied); nothing is looked up, saved or timed. ``for_server``: the
        playlist goes to the media server, so it is chosen among the songs the server has."""
        seed_ids = [tracks.resolve_seed(self.db, s) for s in req.seeds]
        cat, seed_rows = self.rows_of(seed_ids) if seed_ids else (self.catalog(), np.zeros(0, dtype=np.int64))
        after = cat.rows_of(np.asarray(req.after, dtype=np.int64)) if req.after else np.zeros(0, dtype=np.int64)
        seeds = [int(r) for r in seed_rows]
        restrict = req.restrict(cat) if req.restrict is not None else None
        on_server = self._on_server(cat) if for_server else None
        if on_server is not None:
            restrict = on_server if restrict is None else restrict & on_server
        ctx = run(cat, req.strategy, seeds=seeds, size=req.size, duration_s=req.duration_s, params=req.params,
                  filters=req.filters, rules=req.diversity, tag_min=self.tag_min, random_seed=req.random_seed,
                  diversity_explicit=req.diversity_explicit,
                  history=load_history(self.db) if req.strategy.uses_history else None, order=req.order,
                  transition_weights=self.settings.playlists.transition_weights,
                  excluded=self.exclusions.for_request(cat, req.exclude, req.include_excluded),
                  restrict=restrict, after=[int(r) for r in after if r >= 0],   # a track gone since is not there
                  feedback=feedback_masks(cat, self.feedback.skipped(req.listener).without(req.forgive))
                  if req.strategy.listens else None)
        if on_server is not None and not on_server.all():
            ctx.notes.append(f"chosen among the {int(on_server.sum())} analysed songs the media server has "
                             "(the playlist is pushed there)")
        return Picked(cat, seeds, ctx)

    def _on_server(self, cat: Catalog) -> np.ndarray | None:
        """Rows the media server has; None when no link is configured or nothing is linked yet
        (then the whole library is used and the push counts what it leaves out)."""
        if self.server_songs is None:
            return None
        mask = self.server_songs(cat)
        return mask if mask.any() else None

    def generate(self, req: PlaylistRequest, *, for_server: bool | None = None) -> dict:
        """A playlist response {"playlist": {...}, "tracks": [...]} (saved when ``req.save``).
        ``for_server`` (default: ``req.save``): chosen among the media server's songs when the
        media-server link pushes saved playlists (see ``pick``)."""
        started = time.perf_counter()
        picked = self.pick(req, for_server=req.save if for_server is None else for_server)
        cat, ctx = picked.catalog, picked.context
        ids = [int(cat.track_ids[r]) for r in picked.rows]
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

"""Playlist strategies: pure functions over the catalog arrays (no Flask, no SQLite).

Each strategy gets a ``Context`` (catalog, the rows the filters allow, seed rows, a ``Picker``
holding the playlist and its diversity rules, validated parameters, a random generator) and adds
rows to the picker. ``STRATEGIES`` lists them with their parameters for
``GET /api/v1/playlists/strategies``; the grouping strategies live in ``groups.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import BadRequestError
from .catalog import Catalog
from .diversity import GAP, OK, Picker
from .index import centroid, distances, gather, query_of, top_k
from .names import UnknownNameError, resolve_tags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Param:
    name: str
    type: str                      # integer | number | string | boolean | array (of strings) | numbers
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": self.type, "default": self.default, "description": self.help}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass
class Context:
    cat: Catalog
    allowed: np.ndarray          # bool (n,): rows the filters let through
    seeds: list[int]             # catalog rows, in request order
    picker: Picker
    params: dict[str, Any]
    rng: np.random.Generator
    tag_min: float = 0.1
    random_seed: int | None = None
    diversity_explicit: bool = False
    history: Any = None          # for_you.History for strategies with uses_history (the service loads it)
    transition_weights: dict[str, float] | None = None   # playlists.transition_weights
    ordered: bool = False        # the strategy already ordered for smooth transitions (harmonic)
    transition_costs: list[float] = field(default_factory=list)  # cost from each track's predecessor
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def target_count(self) -> int:
        """How many tracks the playlist will hold (estimated from durations for duration_min)."""
        if self.picker.duration_s is None:
            return self.picker.size
        durations = self.cat.num["duration_s"][self.allowed]
        typical = float(np.nanmedian(durations)) if np.isfinite(durations).any() else 240.0
        return int(min(self.picker.size, max(2, np.ceil(self.picker.duration_s / max(typical, 30.0)) + 1)))


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    fn: Callable[[Context], None]
    params: tuple[Param, ...] = ()
    min_seeds: int = 0
    max_seeds: int | None = 0
    diversity: bool = True      # apply the configured diversity rules unless the request says otherwise
    uses_history: bool = False  # needs the media server's listening history in Context.history
    order: str = "smooth"       # default track order (transitions.ORDERS); as_is where the order is the point

    def with_defaults(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Typed parameters (``coerce_params``' result, or Python values) over the declared
        defaults; a parameter not given or None takes its default. Nothing is checked here."""
        given = params or {}
        return {p.name: p.default if given.get(p.name) is None else given[p.name] for p in self.params}

    def default_order(self, params: dict[str, Any]) -> str:
        """``order`` unless the request asked for a ``sort`` (then the sort is the order)."""
        sort = params.get("sort")
        return "as_is" if sort is not None and sort != "random" else self.order

    def to_dict(self) -> dict:
        if self.max_seeds == 0:
            seeds = "none"
        elif self.min_seeds == self.max_seeds:
            seeds = f"exactly {self.min_seeds}"
        elif self.min_seeds == 0:
            seeds = "optional" if self.max_seeds is None else f"optional, at most {self.max_seeds}"
        else:
            seeds = f"at least {self.min_seeds}"
        return {"name": self.name, "description": self.description, "seeds": seeds,
                "parameters": [p.to_dict() for p in self.params], "diversity_by_default": self.diversity,
                "default_order": self.order}


def coerce_params(strategy: Strategy, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate strategy parameters against their declarations; defaults for the rest."""
    known = {p.name: p for p in strategy.params}
    out: dict[str, Any] = {}
    for name in raw:
        if name not in known:
            raise UnknownNameError(f"parameter of strategy '{strategy.name}'", name, list(known),
                                   hint=None if known else f"strategy '{strategy.name}' takes no parameters")
    for name, p in known.items():
        value = raw.get(name)
        if value is None:  # absent or null: the default (which may itself be None)
            value = p.default
        if value is None:
            out[name] = None
            continue
        if p.type == "string" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        ok = {"integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "string": isinstance(value, str),
              "boolean": isinstance(value, bool),
              "array": isinstance(value, list) and all(isinstance(v, str) for v in value),
              "numbers": isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         for v in value)}[p.type]
        if p.type == "array" and isinstance(value, str):
            value, ok = [value], True
        if not ok:
            raise BadRequestError(f"parameter '{name}' of strategy '{strategy.name}' must be of type {p.type}, "
                                  f"got {value!r}")
        if p.choices and value not in p.choices:
            raise UnknownNameError(f"value of '{name}'", str(value), [str(c) for c in p.choices])
        if p.minimum is not None and value < p.minimum or p.maximum is not None and value > p.maximum:
            raise BadRequestError(f"parameter '{name}' must be between {p.minimum} and {p.maximum}, got {value}")
        out[name] = value
    return out


# --- shared ranking helpers -------------------------------------------------------------------------

def ranked_by_distance(cat: Catalog, Q: np.ndarray, mask: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    return top_k(distances(cat, Q, mask)[0], k, allowed)


def fill_ranked(ctx: Context, rank: Callable[[int], np.ndarray]) -> None:
    """Feed ``rank(k)`` (the k best rows) to the picker, widening k while diversity rejects too many."""
    available = int(ctx.allowed.sum())
    k = min(available, max(200, ctx.target_count() * 8))
    done = 0
    while not ctx.picker.full:
        order = rank(k)
        ctx.picker.fill(order[done:])
        done = len(order)
        if k >= available or done < k:
            break
        k = min(available, k * 4)


def similar_interleaved(cat: Catalog, seeds: list[int], allowed: np.ndarray, k: int) -> np.ndarray:
    """Round-robin of each seed's own nearest neighbours: every seed is represented equally, and
    within a round the tracks keep their closeness order."""
    Q, mask = query_of(cat, seeds)
    d = distances(cat, Q, mask)
    lists = [top_k(row, k, allowed) for row in d]
    merged: list[int] = []
    seen: set[int] = set()
    for i in range(max((len(x) for x in lists), default=0)):
        for lst in lists:
            if i < len(lst) and int(lst[i]) not in seen:
                seen.add(int(lst[i]))
                merged.append(int(lst[i]))
    return np.array(merged, dtype=np.int64)


def _without(allowed: np.ndarray, rows: list[int]) -> np.ndarray:
    out = allowed.copy()
    out[rows] = False
    return out


def _seed_label(ctx: Context, row: int) -> str:
    return ctx.cat.artist_names[ctx.cat.artist[row]] if ctx.cat.artist[row] >= 0 else f"track {ctx.cat.track_ids[row]}"


# --- strategies ------------------------------------------------------------------------------------

def radio(ctx: Context) -> None:
    """Seeds first, then the closest tracks. Several seeds: ``interleave`` takes each seed's
    neighbours in turn (none is drowned by the others), ``mean`` ranks by closeness to the seeds'
    mean vector (tracks "between" the seeds)."""
    cat, seeds = ctx.cat, ctx.seeds
    if ctx.params["include_seeds"]:
        for row in seeds:
            ctx.picker.force(row)
    allowed = _without(ctx.allowed, seeds)
    if ctx.params["blend"] == "mean" or len(seeds) == 1:
        Q, mask = centroid(cat, seeds)
        fill_ranked(ctx, lambda k: ranked_by_distance(cat, Q, mask, allowed, k))
    else:
        fill_ranked(ctx, lambda k: similar_interleaved(cat, seeds, allowed, k))
    ctx.name = "Radio · " + " + ".join(_seed_label(ctx, r) for r in seeds[:3])


def similarity(ctx: Context) -> None:
    """The nearest tracks to the seeds' mean vector, closest first, seeds left out."""
    Q, mask = centroid(ctx.cat, ctx.seeds)
    allowed = _without(ctx.allowed, ctx.seeds)
    fill_ranked(ctx, lambda k: ranked_by_distance(ctx.cat, Q, mask, allowed, k))
    ctx.name = "Similar to " + " + ".join(_seed_label(ctx, r) for r in ctx.seeds[:3])


def path(ctx: Context) -> None:
    """From seed A to seed B. Waypoints are spaced evenly on the straight line A→B in feature
    space; each step takes the unused track nearest the next waypoint among those strictly closer
    to B than the current track and at most ``max_step`` × (|AB| / steps) away from it. When no
    track is that close, the one minimising max(jump, distance to the waypoint) is taken (still
    closer to B). Candidates come from the ``pool`` tracks with the smallest d(A,x) + d(x,B)."""
    cat = ctx.cat
    a, b = ctx.seeds
    if a == b:
        raise BadRequestError("path needs two different tracks", hint="give seeds [from, to]")
    Q, mask = query_of(cat, [a, b])
    d = distances(cat, Q, mask)
    d_b = d[1]
    d_ab = float(d[0, b])
    steps = max(ctx.target_count() - 2, 0)
    pool = top_k(d[0] + d[1], ctx.params["pool"], _without(ctx.allowed, [a, b]))
    ideal = d_ab / (steps + 1) if steps else d_ab
    max_step = ctx.params["max_step"] * ideal
    both = mask[0] * mask[1]
    t = (np.arange(1, steps + 1, dtype=np.float32) / (steps + 1))[:, None]
    waypoints = Q[0] + t * (Q[1] - Q[0])
    sub = gather(cat, pool)  # the pool's rows, copied once for all the steps
    d_way = distances(cat, waypoints, np.repeat(both[None, :], steps, axis=0), subset=sub) if steps else None
    ctx.picker.force(a)
    current, current_db, relaxed = a, d_ab, False
    free = np.ones(pool.shape[0], dtype=bool)
    for step in range(steps):
        Qc, mc = query_of(cat, [current])
        jump = distances(cat, Qc, mc, subset=sub)[0]
        closer = free & (d_b[pool] < current_db - 1e-6)
        if not closer.any():
            ctx.notes.append(f"path: no track closer to the destination after {step} steps")
            break
        cost = np.where(jump <= max_step, d_way[step], np.inf)  # type: ignore[index]
        if not np.isfinite(cost[closer]).any():
            cost = np.maximum(jump, d_way[step])  # type: ignore[index]
        cost = np.where(closer, cost, np.inf)
        chosen = _first_allowed(ctx.picker, pool, np.argsort(cost, kind="stable"), cost)
        if chosen is None:
            break
        idx, was_relaxed = chosen
        relaxed |= was_relaxed
        free[idx] = False
        current, current_db = int(pool[idx]), float(d_b[pool[idx]])
        ctx.picker.add(current)
    ctx.picker.force(b)
    if relaxed:
        ctx.notes.append("path: artist/album gaps relaxed to keep the path smooth")
    ctx.info["path"] = {"distance": round(d_ab, 4), "ideal_step": round(ideal, 4)}
    ctx.name = f"Path · {_seed_label(ctx, a)} → {_seed_label(ctx, b)}"


def _first_allowed(picker: Picker, rows: np.ndarray, order: np.ndarray, cost: np.ndarray,
                   limit: int = 400) -> tuple[int, bool] | None:
    """First index (in ``order``) whose row the picker accepts; else the first that only breaks a
    gap (relaxed=True); None if nothing finite is left."""
    gap_choice = None
    for idx in order[:limit]:
        if not np.isfinite(cost[idx]):
            break
        verdict = picker.check(int(rows[idx]))
        if verdict == OK:
            return int(idx), False
        if verdict == GAP and gap_choice is None:
            gap_choice = int(idx)
    return (gap_choice, True) if gap_choice is not None else None


def mood(ctx: Context) -> None:
    """Tracks whose ML tags match, ranked by mean probability. ``match`` all: every tag must reach
    ``min_probability``; any: one of them. Mood words expand to related labels (chill → chill,
    chillout, Mellow)."""
    words = ctx.params["tags"]
    if not words:
        raise BadRequestError("strategy 'mood' needs tags", hint='e.g. "tags": ["chill"]')
    minimum = ctx.params["min_probability"]
    minimum = ctx.tag_min if minimum is None else minimum
    groups = resolve_tags(words, ctx.cat.tag_labels)
    probs = np.column_stack([ctx.cat.tags[:, cols].max(axis=1).astype(np.float32) for cols in groups])
    hit = (probs >= minimum).all(axis=1) if ctx.params["match"] == "all" else (probs >= minimum).any(axis=1)
    score = np.where(ctx.allowed & hit, -probs.mean(axis=1), np.inf)
    order = top_k(score, int(np.isfinite(score).sum()))
    ctx.picker.fill(order)
    ctx.name = "Mood · " + " · ".join(w.title() for w in words)


def filter_strategy(ctx: Context) -> None:
    """Every track inside the filters, in the requested ``sort`` order."""
    ctx.picker.fill(sorted_rows(ctx, np.flatnonzero(ctx.allowed), ctx.params["sort"]))
    ctx.name = "Filtered mix"


SORTS = ("random", "bpm", "-bpm", "energy", "-energy", "year", "-year", "duration", "-duration",
         "danceability", "-danceability", "album")


def sorted_rows(ctx: Context, rows: np.ndarray, sort: str) -> np.ndarray:
    cat = ctx.cat
    if sort == "random":
        return ctx.rng.permutation(rows)
    if sort == "album":
        artists = np.array([cat.artist_names[a].casefold() if a >= 0 else "" for a in cat.artist[rows]])
        keys = (cat.track_number[rows], cat.album[rows], np.nan_to_num(cat.num["year"][rows], nan=9999), artists)
        return rows[np.lexsort(keys)]
    column = {"duration": "duration_s"}.get(sort.lstrip("-"), sort.lstrip("-"))
    values = cat.num[column][rows].astype(np.float64)
    values = -values if sort.startswith("-") else values
    values = np.where(np.isfinite(values), values, np.inf)  # unknown values last either way
    return rows[np.argsort(values, kind="stable")]


def random_strategy(ctx: Context) -> None:
    """A random sample of the tracks inside the filters (``random_seed`` makes it repeatable)."""
    ctx.picker.fill(ctx.rng.permutation(np.flatnonzero(ctx.allowed)))
    ctx.name = "Random mix"


def harmonic(ctx: Context) -> None:
    """DJ order: neighbours are Camelot-compatible (same key, ±1 on the wheel, or relative
    major/minor) and within ``tempo_tolerance`` of each other's tempo (or of half/double time),
    relaxed one step at a time where nothing compatible is left. A set is chosen around the seed
    (or a random track), then ordered (see harmonic.py)."""
    from .harmonic import harmonic_mix  # a module of its own; it needs Context from here

    harmonic_mix(ctx)


COMMON_SORT = Param("sort", "string", "random", "Order of the tracks.", choices=SORTS)

CORE_STRATEGIES = [
    Strategy("radio", "Start from one or more seed tracks and continue with the most similar ones. "
             "Several seeds are blended.", radio, (
                 Param("blend", "string", "interleave", "Several seeds: 'interleave' takes each seed's neighbours "
                       "in turn; 'mean' ranks by closeness to the seeds' average.", choices=("interleave", "mean")),
                 Param("include_seeds", "boolean", True, "Start the playlist with the seeds themselves.")),
             min_seeds=1, max_seeds=None),
    Strategy("similarity", "The tracks nearest to the seeds (their average), closest first, without the seeds.",
             similarity, (), min_seeds=1, max_seeds=None, order="as_is"),
    Strategy("path", "A smooth path from the first seed to the second: every step moves closer to the "
             "destination, without big jumps.", path, (
                 Param("max_step", "number", 2.0, "Largest jump, in multiples of the even step |AB| / steps.",
                       minimum=1.0, maximum=20.0),
                 Param("pool", "integer", 3000, "Candidates considered (closest to the A-B segment).",
                       minimum=50, maximum=50000)),
             min_seeds=2, max_seeds=2, order="as_is"),
    Strategy("mood", "Tracks whose ML mood/genre tags match (e.g. chill, happy, party, sad, electronic).", mood, (
        Param("tags", "array", [], "Tags or mood words; see GET /api/v1/tracks?tag= for the labels."),
        Param("min_probability", "number", None, "Minimum tag probability (default: playlists.tag_min_probability).",
              minimum=0.0, maximum=1.0),
        Param("match", "string", "all", "Every tag must match, or any one of them.", choices=("all", "any")))),
    Strategy("filter", "Every track inside the filters (bpm, key, energy, danceability, loudness, duration, "
             "year, genre, tags...).", filter_strategy, (COMMON_SORT,)),
    Strategy("harmonic", "DJ order: neighbours have Camelot-compatible keys and tempos within 6 % "
             "(half/double time allowed); where no such track is left, a transition is relaxed step by step "
             "(energy boost ±2, wider tempo window, closest key) and counted in the notes.", harmonic, (
                 Param("tempo_tolerance", "number", 0.06, "Largest relative tempo change between neighbours.",
                       minimum=0.0, maximum=0.25),
                 Param("pool", "integer", 3000, "Candidates near the start track considered first.",
                       minimum=50, maximum=50000)),
             min_seeds=0, max_seeds=1),
    Strategy("random", "A random sample of the library (inside the filters).", random_strategy, ()),
]

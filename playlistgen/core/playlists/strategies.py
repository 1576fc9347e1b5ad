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
from .diversity import OK, Picker
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
    demoted: np.ndarray | None = None   # bool (n,): close neighbours of recently skipped tracks (feedback)

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
    listens: bool = False       # leaves out what the listener skipped recently (core/feedback) and ranks
                                # its neighbours lower

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
        if p.type == "integer" and isinstance(value, float) and value.is_integer():
            value = int(value)   # JSON has one number type: 5.0 is the integer 5
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


def demote(ctx: Context, order: np.ndarray) -> np.ndarray:
    """``order`` with the close neighbours of skipped tracks (``ctx.demoted``) moved one playlist
    length further down the ranking: still there when the library runs short, no longer first."""
    if ctx.demoted is None or order.size == 0:
        return order
    hit = ctx.demoted[order]
    if not hit.any():
        return order
    target = ctx.target_count()
    lowered = int(hit[:target].sum())
    if lowered:
        ctx.info["feedback_lowered"] = max(lowered, ctx.info.get("feedback_lowered", 0))
    key = np.arange(order.size) + hit * max(target, 10)
    return order[np.argsort(key, kind="stable")]


def fill_ranked(ctx: Context, rank: Callable[[int], np.ndarray]) -> None:
    """Feed ``rank(k)`` (the k best rows) to the picker, widening k while diversity rejects too many."""
    available = int(ctx.allowed.sum())
    k = min(available, max(200, ctx.target_count() * 8))
    done = 0
    while not ctx.picker.full:
        order = demote(ctx, rank(k))
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


MAX_PATH_STEPS = 2000     # tracks between the ends (the programme keeps steps × candidates choices)
PATH_ROUNDS = 20          # re-runs leaving out tracks the diversity rules refuse, before gaps are relaxed


def path(ctx: Context) -> None:
    """From seed A to seed B, with the length asked for as far as the library allows. k = size - 2
    waypoints lie evenly on the straight line A→B in feature space; the k tracks between the ends
    are the candidates (the ``pool`` tracks with the smallest d(A,x) + d(x,B)) that, taken in their
    order along the line, lie closest to the waypoints in total: a dynamic programme over the
    candidates sorted by their projection on A→B, so every step moves on along the line, and a
    small library still fills the path (a walk that only took tracks "strictly closer to B, within
    a step limit" stopped after a few tracks there). Tracks the diversity rules refuse are left out
    and the programme run again; when too few are left, the gaps are relaxed (noted). Steps longer
    than ``max_step`` × |AB| / (k + 1) are counted in the notes."""
    cat = ctx.cat
    a, b = ctx.seeds
    if a == b:
        raise BadRequestError("path needs two different tracks", hint="give seeds [from, to]")
    Q, mask = query_of(cat, [a, b])
    d = distances(cat, Q, mask).astype(np.float64)
    d_ab = float(d[0, b])
    target = ctx.target_count()
    ctx.picker.force(a)
    with_end = ctx.picker.copy()
    with_end.force(b)          # versions of B's song are refused too
    pool = top_k(d[0] + d[1], ctx.params["pool"], _without(ctx.allowed, [a, b]))
    pool = np.array([r for r in pool.tolist() if with_end.check(r, 0, 0) == OK], dtype=np.int64)
    along = (d[0, pool] ** 2 - d[1, pool] ** 2 + d_ab ** 2) / (2 * d_ab ** 2) if d_ab > 0 else np.zeros(pool.size)
    pool = pool[np.lexsort((d[0, pool] + d[1, pool], along))]            # in their order along A → B
    k = min(max(target - 2, 0), pool.size, MAX_PATH_STEPS)
    if k < target - 2:
        ctx.notes.append(f"path: {k + 2} tracks, not {target}: " + (
            f"at most {MAX_PATH_STEPS} tracks lie between the ends" if k == MAX_PATH_STEPS else
            f"the library (after filters and exclusions) has only {k} other tracks"))
    chosen = _path_rows(ctx, pool, Q, mask, k) if k else []
    if len(chosen) < k:
        ctx.notes.append(f"path: {len(chosen) + 2} tracks, not {target}: the other tracks near the line are "
                         "versions of songs already in it")
    for row in chosen:
        ctx.picker.force(row)
    ctx.picker.force(b)
    rows = ctx.picker.rows
    ideal = d_ab / (k + 1)
    if len(rows) > 2 and ideal > 0:
        steps = np.array([distances(cat, *query_of(cat, [x]), rows=np.array([y]))[0, 0]
                          for x, y in zip(rows, rows[1:], strict=False)])
        long = int((steps > ctx.params["max_step"] * ideal * (1 + 1e-6)).sum())
        if long:
            ctx.notes.append(f"path: {long} of {len(steps)} steps are longer than {ctx.params['max_step']:g} × the "
                             "even step: the library has no closer tracks there")
    ctx.info["path"] = {"distance": round(d_ab, 4), "ideal_step": round(ideal, 4)}
    ctx.name = f"Path · {_seed_label(ctx, a)} → {_seed_label(ctx, b)}"


def _path_rows(ctx: Context, pool: np.ndarray, Q: np.ndarray, mask: np.ndarray, k: int) -> list[int]:
    """The k rows of ``pool`` (sorted along A → B) for the k waypoints, in order. Rows the picker
    refuses are left out and the programme run again; when that would leave too few, the gaps are
    relaxed (only repeated songs are refused then), and the path shortened only if even that fails."""
    cat = ctx.cat
    t = (np.arange(1, k + 1, dtype=np.float32) / (k + 1))[:, None]
    waypoints = Q[0] + t * (Q[1] - Q[0])
    both = np.repeat((mask[0] * mask[1])[None, :], k, axis=0)
    D = distances(cat, waypoints, both, subset=gather(cat, pool)).astype(np.float64)    # (k, m)
    left = np.ones(pool.size, dtype=bool)       # still a candidate
    relaxed = False
    picks, refused = np.zeros(0, dtype=np.int64), []
    for attempt in range(PATH_ROUNDS + 1):
        relaxed = relaxed or attempt == PATH_ROUNDS
        picks = pool[_along_line(np.where(left[None, :], D, np.inf), k)]
        trial, refused = ctx.picker.copy(), []
        for row in picks.tolist():
            if trial.check(row, 0 if relaxed else None, 0 if relaxed else None) == OK:
                trial.add(row)
            else:
                refused.append(row)
        if not refused:
            break
        if int(left.sum()) - len(refused) < k and not relaxed:
            relaxed = True                      # keep the length: relax the gaps rather than shorten
            continue
        left &= ~np.isin(pool, refused)
        if int(left.sum()) < k:                 # too many repeated songs even so: a shorter path
            return _path_rows(ctx, pool[left], Q, mask, int(left.sum())) if left.any() else []
    note = "path: artist/album gaps relaxed to keep the path's length (too few different artists/albums near the line)"
    if relaxed and note not in ctx.notes:
        ctx.notes.append(note)
    return [int(r) for r in picks if r not in refused]   # refused after every re-run: versions of songs in


def _along_line(D: np.ndarray, k: int) -> np.ndarray:
    """Indices j_1 < … < j_k minimising Σ D[i, j_i] (waypoint i gets candidate j_i; candidates
    sorted along the line): O(k·m) dynamic programme with prefix minima."""
    m = D.shape[1]
    best = np.zeros(m + 1)                      # best[j]: waypoints so far, candidates before j only
    choice = np.empty((k, m), dtype=np.int32)
    positions = np.arange(m)
    for i in range(k):
        value = best[:-1] + D[i]                # waypoint i takes candidate j
        low = np.minimum.accumulate(value)
        choice[i] = np.maximum.accumulate(np.where(value == low, positions, -1))
        best = np.concatenate([[np.inf], low])
    picks = np.empty(k, dtype=np.int64)
    j = m
    for i in range(k - 1, -1, -1):
        picks[i] = choice[i, j - 1]
        j = int(picks[i])
    return picks


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
             min_seeds=1, max_seeds=None, listens=True),
    Strategy("similarity", "The tracks nearest to the seeds (their average), closest first, without the seeds.",
             similarity, (), min_seeds=1, max_seeds=None, order="as_is"),
    Strategy("path", "A smooth path from the first seed to the second, of the size asked for: the tracks "
             "closest to evenly spaced points on the line between them, in their order along it.", path, (
                 Param("max_step", "number", 2.0, "Steps longer than this many even steps |AB| / (size - 1) "
                       "are counted in the notes.", minimum=1.0, maximum=20.0),
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

"""Grouping strategies: k-means clusters (named by their members), time of day, metadata tags,
feature groups, a mix of several, and everything. Pure numpy, like ``strategies.py``."""

from __future__ import annotations

import logging
import time

import numpy as np

from ...errors import BadRequestError
from .catalog import GROUPS, Catalog
from .diversity import Diversity
from .index import centroid, distances, top_k
from .names import UnknownNameError, resolve_tags
from .strategies import SORTS, Context, Param, Strategy, similar_interleaved, sorted_rows

log = logging.getLogger(__name__)

_FIT_SAMPLE = 20000   # k-means is fitted on at most this many tracks, then every track is assigned
_CHUNK = 32768        # rows per distance block when assigning (bounds the temporary copy of X)
_CACHE_MAX = 8


# --- k-means -----------------------------------------------------------------------------------------

def _dist(cat: Catalog, Q: np.ndarray, mask: np.ndarray, rows: np.ndarray) -> np.ndarray:
    if rows.size == cat.size:
        return distances(cat, Q, mask)
    return np.hstack([distances(cat, Q, mask, rows=rows[i:i + _CHUNK]) for i in range(0, rows.size, _CHUNK)])


def kmeans(cat: Catalog, rows: np.ndarray, k: int, rng: np.random.Generator, groups: np.ndarray,
           iters: int = 30, restarts: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding on the masked distance of ``index.distances``
    (only the feature groups set in ``groups`` count); the best of ``restarts`` runs (lowest
    inertia) wins. Returns (cluster of each row, distance of each row to its centre)."""
    k = max(1, min(k, rows.size))
    fit = rows if rows.size <= _FIT_SAMPLE else rng.choice(rows, _FIT_SAMPLE, replace=False)
    # centres start at tracks with every wanted group: a centre without an embedding would only
    # ever be compared on the other groups and gather the preset-fast tracks into a group of their own
    complete = fit[(cat.present[fit] @ groups) == groups.sum()]
    starts = complete if complete.size >= k else fit
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(restarts):
        C, M = _kmeans_once(cat, fit, starts, k, rng, groups, iters)
        d = _dist(cat, C, M, fit)
        inertia = float(np.sum(np.where(np.isfinite(d.min(axis=0)), d.min(axis=0), 0.0) ** 2))
        if best is None or inertia < best[0]:
            best = (inertia, C, M)
    assert best is not None
    d = _dist(cat, best[1], best[2], rows)
    labels = d.argmin(axis=0)
    return labels, d[labels, np.arange(rows.size)]


def _kmeans_once(cat: Catalog, fit: np.ndarray, starts: np.ndarray, k: int, rng: np.random.Generator,
                 groups: np.ndarray, iters: int) -> tuple[np.ndarray, np.ndarray]:
    def center(members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q, m = centroid(cat, members)
        return q[0], m[0] * groups

    first = center(np.array([rng.choice(starts)]))
    centers, masks = [first[0]], [first[1]]
    nearest = _dist(cat, first[0][None], first[1][None], starts)[0] ** 2
    for _ in range(1, k):
        weights = np.where(np.isfinite(nearest), nearest, 0.0).astype(np.float64)
        pick = rng.choice(starts, p=weights / weights.sum()) if weights.sum() > 0 else rng.choice(starts)
        q, m = center(np.array([pick]))
        centers.append(q)
        masks.append(m)
        nearest = np.minimum(nearest, _dist(cat, q[None], m[None], starts)[0] ** 2)
    C, M = np.array(centers), np.array(masks)
    previous = None
    for _ in range(iters):
        assign = _dist(cat, C, M, fit).argmin(axis=0)
        if previous is not None and np.array_equal(assign, previous):
            break
        previous = assign
        for c in range(k):
            members = fit[assign == c]
            if members.size:
                C[c], M[c] = center(members)
    return C, M


def _cached_kmeans(ctx: Context, kind: str, k: int, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = np.flatnonzero(ctx.allowed)
    seed = ctx.random_seed
    key = (kind, k, seed, hash(np.packbits(ctx.allowed).tobytes()))
    cached = ctx.cat.cache.get(key)
    if cached is None:
        started = time.perf_counter()
        rng = np.random.default_rng(seed if seed is not None else 0)  # same clusters for the same library
        labels, dist = kmeans(ctx.cat, rows, k, rng, groups)
        cached = (rows, labels, dist)
        try:
            while len(ctx.cat.cache) >= _CACHE_MAX:
                ctx.cat.cache.pop(next(iter(ctx.cat.cache)))
        except (RuntimeError, StopIteration, KeyError):  # another request evicted at the same time
            pass
        ctx.cat.cache[key] = cached
        log.debug("k-means %s k=%d over %d tracks in %.2f s", kind, k, rows.size, time.perf_counter() - started)
    return cached


# --- naming ------------------------------------------------------------------------------------------

def _label(text: str) -> str:
    return text[:1].upper() + text[1:]


def tempo_word(bpm: float) -> str:
    return "Slow" if bpm < 90 else "Fast" if bpm > 120 else "Medium"


def energy_word(energy: float) -> str:
    return "Low energy" if energy < 0.4 else "High energy" if energy > 0.7 else "Mid energy"


def dominant_tags(cat: Catalog, members: np.ndarray, baseline: np.ndarray, n: int = 2) -> list[str]:
    """Tags most over-represented among ``members`` compared with ``baseline`` (mean over the
    candidates), skipping near-repeats ("female vocalist" after "female vocalists")."""
    if not cat.tag_labels or members.size == 0:
        return []
    lift = cat.tags[members].astype(np.float32).mean(axis=0) - baseline
    chosen: list[str] = []
    for i in np.argsort(-lift):
        if lift[i] <= 0 or len(chosen) == n:
            break
        label = cat.tag_labels[i]
        stem = label.casefold().rstrip("s")
        if any(stem[:5] == c.casefold()[:5] for c in chosen):
            continue
        chosen.append(label)
    return chosen


def cluster_name(cat: Catalog, members: np.ndarray, baseline: np.ndarray | None, by_tags: bool) -> str:
    bpm = cat.num["bpm"][members]
    energy = cat.num["energy"][members]
    parts: list[str] = []
    if by_tags and baseline is not None:
        parts = [_label(t) for t in dominant_tags(cat, members, baseline)]
    if not parts:
        if np.isfinite(bpm).any():
            parts.append(tempo_word(float(np.nanmedian(bpm))))
        if np.isfinite(energy).any():
            parts.append(energy_word(float(np.nanmedian(energy))))
    if np.isfinite(bpm).any():
        parts.append(f"{round(float(np.nanmedian(bpm)))} BPM")
    return " · ".join(parts) or "Unnamed group"


def _clusters(ctx: Context, kind: str) -> None:
    cat = ctx.cat
    if not ctx.allowed.any():
        ctx.notes.append("no track passes the filters")
        return
    groups = np.ones(len(GROUPS), dtype=np.float32) if kind == "clusters" else \
        np.array([g == "scalars" for g in GROUPS], dtype=np.float32)
    rows, labels, dist = _cached_kmeans(ctx, kind, ctx.params["k"], groups)
    baseline = cat.tags[rows].astype(np.float32).mean(axis=0) if cat.tag_labels else None
    summary, names = [], []
    for c in range(int(labels.max()) + 1):
        members = rows[labels == c]
        name = cluster_name(cat, members, baseline, by_tags=kind == "clusters")
        while name in names:  # two similar groups: keep names distinct
            name += " II" if not name.endswith("I") else "I"
        names.append(name)
        summary.append({"index": c, "name": name, "size": int(members.size),
                        "bpm": _median(cat.num["bpm"][members]), "energy": _median(cat.num["energy"][members]),
                        "top_tags": dominant_tags(cat, members, baseline, 3) if baseline is not None else []})
    selected = _select_cluster(ctx, rows, labels, names)
    members = labels == selected
    ctx.picker.fill(rows[members][np.argsort(dist[members], kind="stable")])
    ctx.info["clusters"] = summary
    ctx.info["cluster"] = selected
    ctx.name = names[selected]


def _median(values: np.ndarray) -> float | None:
    return round(float(np.nanmedian(values)), 3) if np.isfinite(values).any() else None


def _select_cluster(ctx: Context, rows: np.ndarray, labels: np.ndarray, names: list[str]) -> int:
    wanted = ctx.params["cluster"]
    if wanted is not None:
        if isinstance(wanted, int) and not isinstance(wanted, bool) or str(wanted).isdigit():
            index = int(wanted)
            if not 0 <= index < len(names):
                raise BadRequestError(f"cluster {index} does not exist", hint=f"choose 0..{len(names) - 1}")
            return index
        folded = [n.casefold() for n in names]
        for i, n in enumerate(folded):
            if str(wanted).casefold() in n:
                return i
        raise UnknownNameError("cluster", str(wanted), names)
    if ctx.seeds:
        where = np.flatnonzero(rows == ctx.seeds[0])
        if where.size:
            return int(labels[where[0]])
    return int(np.bincount(labels).argmax())


def clusters(ctx: Context) -> None:
    """k-means over the full feature vectors; each group named by its most over-represented
    tags and median tempo ("Chill · Electronic · 90 BPM"). Returns the group of the seed, the one
    named by ``cluster``, or the largest, most typical tracks first; all groups are listed in
    ``playlist.clusters``."""
    _clusters(ctx, "clusters")


def kmeans_strategy(ctx: Context) -> None:
    """The older generator's k-means: groups by tempo, energy, loudness and the other scalar
    audio features only, named by tempo and energy ("Fast · High energy · 128 BPM")."""
    _clusters(ctx, "kmeans")


# --- time, tags, feature groups ----------------------------------------------------------------------

TIME_BANDS = {  # bpm range, energy range, sort
    "morning": ((85.0, 125.0), (0.3, 0.75), "energy"),
    "afternoon": ((100.0, 140.0), (0.5, 1.0), "-danceability"),
    "evening": ((80.0, 120.0), (0.3, 0.7), "random"),
    "night": ((50.0, 100.0), (0.0, 0.5), "-energy"),
}


def time_of_day(hour: int) -> str:
    return "morning" if 5 <= hour < 12 else "afternoon" if 12 <= hour < 17 else "evening" if 17 <= hour < 22 \
        else "night"


def time_based(ctx: Context) -> None:
    """Tempo and energy bands for the time of day: morning 85-125 BPM rising energy, afternoon
    100-140 BPM danceable, evening 80-120 BPM, night 50-100 BPM winding down. A band with too few
    tracks widens by 15 % (up to three times)."""
    slot = ctx.params["time_of_day"]
    if slot == "auto":
        slot = time_of_day(time.localtime().tm_hour)
    (b_lo, b_hi), (e_lo, e_hi), sort = TIME_BANDS[slot]
    bpm, energy = ctx.cat.num["bpm"], ctx.cat.num["energy"]
    for widen in range(4):
        f = 1 + 0.15 * widen
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(ctx.allowed & (bpm >= b_lo / f) & (bpm <= b_hi * f)
                                  & (energy >= e_lo / f) & (energy <= min(e_hi * f, 1.0)))
        if rows.size >= ctx.target_count():
            break
    if widen:
        ctx.notes.append(f"time_based: few tracks in the {slot} band, widened it by {15 * widen} %")
    ctx.picker.fill(sorted_rows(ctx, rows, sort))
    ctx.info["time_of_day"] = slot
    ctx.name = f"{slot.title()} · {round(b_lo)}–{round(b_hi)} BPM"


def tag_based(ctx: Context) -> None:
    """All tracks with a file genre, artist or album tag: exact name first, else every name
    containing the value. Artist and album playlists keep album order and skip the artist/album
    gaps unless the request sets diversity."""
    field, value = ctx.params["field"], ctx.params["value"]
    if not value:
        raise BadRequestError("strategy 'tag_based' needs a value", hint='e.g. "field": "genre", "value": "jazz"')
    cat = ctx.cat
    codes, names = {"genre": (cat.genre, cat.genre_names), "artist": (cat.artist, cat.artist_names),
                    "album": (cat.album, cat.album_names)}[field]
    folded = value.casefold().strip()
    hit = [i for i, n in enumerate(names) if n.casefold() == folded] or \
        [i for i, n in enumerate(names) if folded in n.casefold()]
    if not hit:
        raise UnknownNameError(field, value, names)
    rows = np.flatnonzero(ctx.allowed & np.isin(codes, hit))
    if field in ("artist", "album"):
        if not ctx.diversity_explicit:
            ctx.picker.rules = Diversity(artist_gap=0, album_gap=0, max_per_artist=0, dedupe=ctx.picker.rules.dedupe)
        ctx.picker.fill(sorted_rows(ctx, rows, "album"))
    else:
        ctx.picker.fill(sorted_rows(ctx, rows, "random"))
    ctx.name = f"{field.title()} · {names[hit[0]]}"


TEMPO_BANDS = {"slow": (0.0, 90.0), "medium": (90.0, 120.0), "fast": (120.0, 1000.0)}
ENERGY_BANDS = {"low": (0.0, 0.4), "medium": (0.4, 0.7), "high": (0.7, 1.0)}


def feature_group(ctx: Context) -> None:
    """Tracks in a tempo band (slow < 90 ≤ medium ≤ 120 < fast BPM) and/or an energy band
    (low < 0.4 ≤ medium ≤ 0.7 < high)."""
    tempo, energy = ctx.params["tempo"], ctx.params["energy"]
    if tempo == "any" and energy == "any":
        raise BadRequestError("strategy 'feature_group' needs a tempo or an energy group",
                              hint='e.g. "tempo": "slow", "energy": "low"')
    mask = ctx.allowed.copy()
    parts = []
    with np.errstate(invalid="ignore"):
        if tempo != "any":
            lo, hi = TEMPO_BANDS[tempo]
            mask &= (ctx.cat.num["bpm"] >= lo) & (ctx.cat.num["bpm"] < hi)
            parts.append(tempo.title())
        if energy != "any":
            lo, hi = ENERGY_BANDS[energy]
            mask &= (ctx.cat.num["energy"] >= lo) & (ctx.cat.num["energy"] <= hi)
            parts.append(f"{energy.title()} energy")
    ctx.picker.fill(sorted_rows(ctx, np.flatnonzero(mask), ctx.params["sort"]))
    ctx.name = " · ".join(parts)


def mixed(ctx: Context) -> None:
    """Weighted interleave of three sources: similar tracks (to the seeds, or to a random anchor),
    tracks matching ``tags`` (if given) and random discoveries, in proportion to ``weights``
    radio : mood : random (default 5 : 3 : 2)."""
    cat = ctx.cat
    count = max(200, ctx.target_count() * 8)
    anchors = ctx.seeds or ([int(ctx.rng.choice(np.flatnonzero(ctx.allowed)))] if ctx.allowed.any() else [])
    sources: list[tuple[float, np.ndarray]] = []
    weights = ctx.params["weights"] or [5.0, 3.0, 2.0]
    if len(weights) != 3 or any(not isinstance(w, (int, float)) or w < 0 for w in weights):
        raise BadRequestError("parameter 'weights' of 'mixed' takes three numbers ≥ 0: radio, mood, random")
    if anchors:
        allowed = ctx.allowed.copy()
        allowed[anchors] = False
        sources.append((weights[0], similar_interleaved(cat, anchors, allowed, count)))
    if ctx.params["tags"]:
        groups = resolve_tags(ctx.params["tags"], cat.tag_labels)
        probs = np.column_stack([cat.tags[:, g].max(axis=1).astype(np.float32) for g in groups]).mean(axis=1)
        hit = ctx.allowed & (probs >= ctx.tag_min)
        sources.append((weights[1], top_k(np.where(hit, -probs, np.inf), count)))
    sources.append((weights[2], ctx.rng.permutation(np.flatnonzero(ctx.allowed))[:count]))
    sources = [(w, s) for w, s in sources if w > 0 and s.size]
    merged: list[int] = []
    if sources:
        total = sum(w for w, _ in sources)
        credit = np.zeros(len(sources))
        positions = [0] * len(sources)
        while any(p < s.size for p, (_, s) in zip(positions, sources, strict=True)):
            credit += [w / total for w, _ in sources]  # smooth weighted round-robin
            for i in np.argsort(-credit):
                if positions[i] < sources[i][1].size:
                    merged.append(int(sources[i][1][positions[i]]))
                    positions[i] += 1
                    credit[i] -= 1
                    break
    if ctx.seeds:
        for row in ctx.seeds:
            ctx.picker.force(row)
    ctx.picker.fill(merged)
    ctx.name = "Mixed"


def all_tracks(ctx: Context) -> None:
    """Every track inside the filters (the whole library without them), in album order or
    ``sort``; no diversity rules unless the request sets them."""
    if not ctx.diversity_explicit:
        ctx.picker.rules = Diversity.off()
    ctx.picker.fill(sorted_rows(ctx, np.flatnonzero(ctx.allowed), ctx.params["sort"]))
    ctx.name = "All tracks"


_CLUSTER_PARAMS = (Param("k", "integer", 6, "Number of groups.", minimum=2, maximum=50),
                   Param("cluster", "string", None, "Group to return: its index or part of its name "
                         "(default: the seed's group, else the largest)."))

GROUP_STRATEGIES = [
    Strategy("clusters", "k-means groups of similar tracks, each named by its dominant tags and tempo.",
             clusters, _CLUSTER_PARAMS, min_seeds=0, max_seeds=1),
    Strategy("kmeans", "The older generator's k-means over tempo/energy/loudness features, named by tempo "
             "and energy.", kmeans_strategy, _CLUSTER_PARAMS, min_seeds=0, max_seeds=1),
    Strategy("time_based", "Tempo/energy bands for the time of day (morning, afternoon, evening, night).",
             time_based, (Param("time_of_day", "string", "auto", "Time of day; auto uses the server's clock.",
                                choices=("auto", *TIME_BANDS)),)),
    Strategy("tag_based", "Tracks with a given genre, artist or album (file tags).", tag_based, (
        Param("field", "string", "genre", "Which file tag to match.", choices=("genre", "artist", "album")),
        Param("value", "string", None, "The name to match (case-insensitive; part of a name works)."))),
    Strategy("feature_group", "Tempo group (slow/medium/fast) and/or energy group (low/medium/high).",
             feature_group, (
                 Param("tempo", "string", "any", "Tempo group.", choices=("any", *TEMPO_BANDS)),
                 Param("energy", "string", "any", "Energy group.", choices=("any", *ENERGY_BANDS)),
                 Param("sort", "string", "random", "Order of the tracks.", choices=SORTS))),
    Strategy("mixed", "A blend: tracks similar to the seeds (or a random anchor), tracks matching tags, and "
             "random discoveries.", mixed, (
                 Param("tags", "array", [], "Tags for the mood part (optional)."),
                 Param("weights", "numbers", None, "Shares of radio, mood and random, e.g. [5, 3, 2]."),
             ), min_seeds=0, max_seeds=None),
    Strategy("all", "Every track inside the filters, in album order (or sort).", all_tracks, (
        Param("sort", "string", "album", "Order of the tracks.", choices=SORTS),), diversity=False),
]

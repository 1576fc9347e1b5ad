"""Strategy ``harmonic``: a DJ mix whose neighbours have Camelot-compatible keys (same key, ±1 on
the wheel, or the relative major/minor) and tempos within ``tempo_tolerance`` (half/double time
allowed).

Two steps, so that the mix does not stop when a greedy walk paints itself into a corner:

1. **Choose the tracks**, as a chain: starting from the seed (or a random track with a key and a
   tempo), the closest of the ``pool`` tracks nearest the start that is compatible with the
   chain's last track is appended, or, when it is not, inserted between two neighbours it is
   compatible with. When no track fits anywhere strictly, the rule is relaxed one step at a time
   for that one transition (``music.harmonic_level``): an energy boost (±2 on the wheel), then a
   wider tempo window, then the closest key (and tempo) of what is left. A real library with
   scattered keys used to end its mixes after 1-6 tracks; now a mix stops only when the
   candidates run out, and the notes say how many transitions were relaxed, and how.
2. **Order it** with the transition machinery: 2-opt / Or-opt from the chain on the transition
   costs (``transitions``), each relaxation step costing more than any whole path of plain costs,
   so smoothing never trades a strict transition for a relaxed one; then the artist/album gaps
   (``gaps.restore_gaps``), which may (counted in the notes too).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ...errors import BadRequestError
from ..music import (
    CLOSEST_KEY,
    HARMONIC_LEVELS,
    STRICT,
    WIDE_TEMPO,
    camelot_distance,
    camelot_name,
    harmonic_level,
    tempo_ratio_distance,
    wide_tempo_tolerance,
)
from .diversity import OK
from .gaps import restore_gaps
from .index import distances, query_of, top_k
from .transitions import WINDOW, Costs, catalog_features, improve

if TYPE_CHECKING:
    from .strategies import Context

log = logging.getLogger(__name__)


def harmonic_mix(ctx: Context) -> None:
    cat = ctx.cat
    bpm = cat.num["bpm"]
    valid = ctx.allowed & (cat.camelot >= 0) & np.isfinite(bpm) & (bpm > 0)
    tolerance = ctx.params["tempo_tolerance"]
    if ctx.seeds:
        start = ctx.seeds[0]
        if cat.camelot[start] < 0 or not np.isfinite(bpm[start]):
            raise BadRequestError("the seed has no detected key or tempo, so it cannot start a harmonic mix",
                                  hint="pick another seed or leave seeds out")
    else:
        candidates = np.flatnonzero(valid)
        if candidates.size == 0:
            ctx.notes.append("harmonic: no track with a detected key and tempo")
            return
        start = int(ctx.rng.choice(candidates))
    Q, mask = query_of(cat, [start])
    others = valid.copy()
    others[start] = False
    pool = top_k(distances(cat, Q, mask)[0], ctx.params["pool"], others)   # closest first
    chain = _chain(ctx, start, pool, tolerance)
    if len(chain) < ctx.target_count():
        ctx.notes.append(f"harmonic: only {len(chain)} tracks: no more tracks with a detected key and tempo "
                         f"(pool {ctx.params['pool']})")
    ordered = _polish(ctx, chain, tolerance)
    ctx.picker.rows = ordered
    ctx.ordered = True
    _report(ctx, ordered, tolerance)
    ctx.name = f"Harmonic mix · {camelot_name(int(cat.camelot[start]))} · {round(float(bpm[start]))} BPM"


def _levels(ctx: Context, a: np.ndarray | int, b: np.ndarray | int, tolerance: float) -> np.ndarray:
    """``music.harmonic_level`` of catalog rows a → b (broadcasting)."""
    cat = ctx.cat
    cam = cat.camelot.astype(np.int64)
    bpm = cat.num["bpm"].astype(np.float64)
    return harmonic_level(cam[a], bpm[a], cam[b], bpm[b], tolerance)


def _chain(ctx: Context, start: int, pool: np.ndarray, tolerance: float) -> list[int]:
    """Grow a chain from ``start``: each time the closest candidate with the strictest transition
    available is appended, or inserted between two neighbours if both its transitions are at that
    level (the end is preferred). At CLOSEST_KEY, the candidate whose key, then tempo, is closest to
    the chain's last track is appended. Stops when the playlist is full or the pool runs out."""
    picker = ctx.picker
    picker.force(start)
    chain = [start]
    # L[:, k]: level of candidate → the chain's k-th track (columns kept in chain order)
    L = _levels(ctx, pool, np.array([start]), tolerance).reshape(-1, 1)
    open_ = np.ones(pool.shape[0], dtype=bool)
    while not picker.full and open_.any():
        at_end = L[:, -1]
        between = np.maximum(L[:, :-1], L[:, 1:])                          # (pool, len-1)
        best = np.minimum(at_end, between.min(axis=1)) if between.shape[1] else at_end
        best = np.where(open_, best, CLOSEST_KEY + 1)
        level = int(best.min())
        if level < CLOSEST_KEY:
            j = int(np.argmax(best == level))                              # the closest one at that level
        else:
            j = _closest_key(ctx, pool, open_, chain[-1])
        open_[j] = False
        row = int(pool[j])
        if picker.check(row, 0, 0) != OK:         # another version of a song in, or the artist cap
            continue
        picker.add(row)
        column = _levels(ctx, pool, np.array([row]), tolerance).reshape(-1, 1)
        if at_end[j] <= level:
            chain.append(row)
            L = np.hstack([L, column])
        else:
            at = int(np.argmax(between[j] <= level)) + 1
            chain.insert(at, row)
            L = np.hstack([L[:, :at], column, L[:, at:]])
    return chain


def _closest_key(ctx: Context, pool: np.ndarray, open_: np.ndarray, last: int) -> int:
    """Index into ``pool`` of the open candidate with the key closest to ``last``'s (Camelot
    steps), then the closest tempo, then the closest sound (pool order)."""
    cat = ctx.cat
    idx = np.flatnonzero(open_)
    rows = pool[idx]
    cam = cat.camelot.astype(np.int64)
    bpm = cat.num["bpm"].astype(np.float64)
    key = np.asarray(camelot_distance(cam[last], cam[rows]), dtype=np.float64)
    tempo = np.asarray(tempo_ratio_distance(bpm[last], bpm[rows]), dtype=np.float64)
    return int(idx[np.lexsort((idx, tempo, key))[0]])


def _polish(ctx: Context, chain: list[int], tolerance: float) -> list[int]:
    """Smoother transitions by 2-opt / Or-opt from the chain, never trading a stricter transition
    for a looser one (each level costs more than any path of plain costs), then the artist/album
    gaps, which prefer the same costs."""
    if len(chain) <= 2:
        return chain
    rows = np.asarray(chain, dtype=np.int64)
    costs = Costs(catalog_features(ctx.cat, rows), ctx.transition_weights)
    big = float(len(chain) + 1)

    def cost(i: int, js: np.ndarray) -> np.ndarray:
        return costs.row(i, js) + big * _levels(ctx, rows[i], rows[js], tolerance)

    p = np.arange(len(chain))
    if len(chain) <= WINDOW:
        idx = np.arange(len(chain))
        C = costs.sub(idx) + big * _levels(ctx, rows[:, None], rows[None, :], tolerance)
        p = improve(C, p, 1)
    rules = ctx.picker.rules
    restored = restore_gaps(p, ctx.cat.artist[rows], ctx.cat.album[rows], rules.artist_gap, rules.album_gap,
                            fixed=1, cost=cost)
    ctx.notes.extend(restored.notes("harmonic"))
    return [int(r) for r in rows[restored.order]]


def _report(ctx: Context, ordered: list[int], tolerance: float) -> None:
    """Keys, the count of strictly compatible transitions, and a note on the relaxed ones."""
    cat = ctx.cat
    o = np.asarray(ordered, dtype=np.int64)
    levels = _levels(ctx, o[:-1], o[1:], tolerance) if len(o) > 1 else np.zeros(0, dtype=np.int8)
    relaxed = {HARMONIC_LEVELS[k]: int((levels == k).sum()) for k in sorted(HARMONIC_LEVELS) if (levels == k).any()}
    ctx.info["keys"] = [camelot_name(int(cat.camelot[r])) for r in ordered]
    ctx.info["compatible_transitions"] = int((levels == STRICT).sum())
    ctx.info["relaxed_transitions"] = relaxed
    if relaxed:
        wide = f"{HARMONIC_LEVELS[WIDE_TEMPO]} (±{wide_tempo_tolerance(tolerance) * 100:.0f} %)"
        how = ", ".join(f"{n} {wide if name == HARMONIC_LEVELS[WIDE_TEMPO] else name}" for name, n in relaxed.items())
        ctx.notes.append(f"harmonic: {int((levels != STRICT).sum())} of {len(levels)} transitions relaxed, where "
                         f"no strictly compatible track was left: {how}")

"""Strategy ``harmonic``: a DJ mix whose neighbours have Camelot-compatible keys (same key, ±1 on
the wheel, or the relative major/minor) and tempos within ``tempo_tolerance`` (half/double time
allowed).

Two steps, so that the mix does not stop when a greedy walk paints itself into a corner:

1. **Choose a compatible set**, as a chain: starting from the seed (or a random track with a key
   and a tempo), the closest of the ``pool`` tracks nearest the start that is compatible with the
   chain's last track is appended, or, when it is not, inserted between two neighbours it is
   compatible with. The old greedy walk stopped as soon as the last track had no compatible
   successor (after 2 tracks on a 9-track library); the chain stops only when no candidate fits
   anywhere.
2. **Order it** with the transition machinery: 2-opt / Or-opt from the chain on the transition
   costs (``transitions``), an incompatible pair costing more than any whole path, so smoothing
   never breaks compatibility; then the artist/album gaps (``respect_gaps``), which may.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ...errors import BadRequestError
from ..music import camelot_compatible, camelot_name, tempo_compatible
from .diversity import OK
from .gaps import restore_gaps
from .index import distances, query_of, top_k
from .transitions import WINDOW, Costs, catalog_features, improve

if TYPE_CHECKING:
    from .strategies import Context

log = logging.getLogger(__name__)

def compatible(cam_a: np.ndarray | int, bpm_a: np.ndarray | float, cam_b: np.ndarray, bpm_b: np.ndarray,
               tolerance: float) -> np.ndarray:
    """Camelot-compatible and tempo-compatible (broadcasting)."""
    return np.asarray(camelot_compatible(cam_a, cam_b)) & np.asarray(tempo_compatible(bpm_a, bpm_b, tolerance))


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
    chain = _compatible_chain(ctx, start, pool, tolerance)
    if len(chain) < ctx.target_count():
        ctx.notes.append(f"harmonic: only {len(chain)} tracks form a compatible chain from the start "
                         f"(pool {ctx.params['pool']}, tempo tolerance {tolerance:g})")
    ordered = _polish(ctx, chain, tolerance)
    ctx.picker.rows = ordered
    ctx.ordered = True
    o = np.asarray(ordered, dtype=np.int64)
    ok = compatible(cat.camelot[o[:-1]].astype(np.int64), bpm[o[:-1]], cat.camelot[o[1:]].astype(np.int64),
                    bpm[o[1:]], tolerance)
    if len(o) > 1 and not ok.all():
        ctx.notes.append(f"harmonic: {int((~ok).sum())} of {len(o) - 1} transitions are not key/tempo compatible "
                         "(artist/album gaps kept)")
    ctx.info["keys"] = [camelot_name(int(cat.camelot[r])) for r in ordered]
    ctx.info["compatible_transitions"] = int(ok.sum())
    ctx.name = f"Harmonic mix · {camelot_name(int(cat.camelot[start]))} · {round(float(bpm[start]))} BPM"


def _compatible_chain(ctx: Context, start: int, pool: np.ndarray, tolerance: float) -> list[int]:
    """Grow a chain from ``start`` in which every neighbour pair is compatible: the closest
    candidate that is compatible with the last track is appended, or, if it is not, inserted
    between two neighbours it is compatible with both of. Stops when the playlist is full or no
    candidate fits anywhere (a greedy walk stops as soon as the *last* track has no successor)."""
    cat, picker = ctx.cat, ctx.picker
    cam = cat.camelot[pool].astype(np.int64)
    tempo = cat.num["bpm"][pool].astype(np.float64)
    picker.force(start)
    chain = [start]
    # M[:, k]: candidate compatible with the chain's k-th track (columns kept in chain order)
    M = compatible(int(cat.camelot[start]), float(cat.num["bpm"][start]), cam, tempo, tolerance)[:, None]
    open_ = np.ones(pool.shape[0], dtype=bool)
    while not picker.full:
        fits_end = M[:, -1]
        fits_between = M[:, :-1] & M[:, 1:]
        ok = open_ & (fits_end | fits_between.any(axis=1))
        if not ok.any():
            break
        j = int(np.argmax(ok))                    # the closest one that fits somewhere
        open_[j] = False
        row = int(pool[j])
        if picker.check(row, 0, 0) != OK:         # another version of a song in, or the artist cap
            continue
        picker.add(row)
        column = compatible(cam[j], tempo[j], cam, tempo, tolerance)[:, None]
        if fits_end[j]:
            chain.append(row)
            M = np.hstack([M, column])
        else:
            at = int(np.argmax(fits_between[j])) + 1
            chain.insert(at, row)
            M = np.hstack([M[:, :at], column, M[:, at:]])
    return chain


def _polish(ctx: Context, chain: list[int], tolerance: float) -> list[int]:
    """Smoother transitions by 2-opt / Or-opt from the chain, never trading away a compatible pair
    (an incompatible one costs more than any path of plain costs), then the artist/album gaps."""
    if len(chain) <= 2 or len(chain) > WINDOW:
        return chain
    cat = ctx.cat
    rows = np.asarray(chain, dtype=np.int64)
    f = catalog_features(cat, rows)
    c, b = f.camelot, f.bpm
    big = float(len(chain) + 1)
    C = Costs(f, ctx.transition_weights).sub(np.arange(len(chain)))
    C = C + big * ~compatible(c[:, None], b[:, None], c[None, :], b[None, :], tolerance)
    p = improve(C, np.arange(len(chain)), 1)
    rules = ctx.picker.rules
    restored = restore_gaps(p, cat.artist[rows], cat.album[rows], rules.artist_gap, rules.album_gap, fixed=1,
                            cost=lambda i, js: C[i, js])
    ctx.notes.extend(restored.notes("harmonic"))
    return [int(r) for r in rows[restored.order]]

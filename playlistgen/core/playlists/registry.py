"""Every strategy by name (in the order of DESIGN.md §5), and ``run``: one strategy over a catalog,
pure numpy — what ``PlaylistService.pick`` calls after resolving seeds, and what the tests and
benchmarks call directly."""

from __future__ import annotations

from typing import Any

import numpy as np

from .artists.radio import ARTIST_STRATEGIES
from .catalog import Catalog
from .diversity import Diversity, Picker
from .filters import filter_mask
from .for_you import FOR_YOU_STRATEGIES
from .groups import GROUP_STRATEGIES
from .strategies import CORE_STRATEGIES, Context, Strategy
from .transitions import arrange, summary

STRATEGIES: dict[str, Strategy] = {s.name: s for s in [*CORE_STRATEGIES, *GROUP_STRATEGIES, *FOR_YOU_STRATEGIES,
                                                   *ARTIST_STRATEGIES]}


def make_picker(cat: Catalog, rules: Diversity, size: int, duration_s: float | None = None) -> Picker:
    return Picker(artist=cat.artist, album=cat.album, song=cat.song, duration=cat.num["duration_s"], rules=rules,
                  size=size, duration_s=duration_s, embedding=cat.group_block("embedding"),
                  has_embedding=cat.present[:, -1] > 0)


def run(cat: Catalog, strategy: str | Strategy, *, seeds: list[int] | None = None, size: int = 25,
        duration_s: float | None = None, params: dict[str, Any] | None = None, filters: dict | None = None,
        rules: Diversity | None = None, tag_min: float = 0.1, random_seed: int | None = None,
        diversity_explicit: bool = False, history: Any = None, restrict: np.ndarray | None = None,
        order: str | None = None, transition_weights: dict[str, float] | None = None,
        excluded: np.ndarray | None = None, after: list[int] | None = None,
        feedback: tuple[np.ndarray, np.ndarray] | None = None) -> Context:
    """Run one strategy; the playlist is ``ctx.picker.rows`` (catalog rows), with ``ctx.name``,
    ``ctx.notes`` and ``ctx.info``. ``params`` are typed (``coerce_params`` checks raw ones); those
    not given take their defaults. ``history`` is the listening history (``for_you.History``) for
    strategies that use it; ``restrict`` (bool per row) narrows the candidates further (e.g. to
    tracks the media server has); ``excluded`` (bool per row, ``exclusions.excluded_mask``) are
    left out unless they are seeds. ``after`` are rows the playlist continues (oldest first, e.g. a
    player's queue): never picked again, with the diversity gaps kept from their end. ``feedback``
    (``exclusions.feedback_masks``: skipped rows, their neighbours), for strategies that listen:
    the skipped are left out unless they are seeds, the neighbours ranked lower. ``order``
    (as_is, smooth, energy_arc; default: the strategy's) arranges the chosen tracks;
    ``ctx.transition_costs`` holds each track's cost from its predecessor."""
    s = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    params = s.with_defaults(params)
    allowed = filter_mask(cat, filters, tag_min)
    if restrict is not None:
        allowed &= restrict
    left_out = 0
    if excluded is not None:
        left_out = int((allowed & excluded).sum())
        allowed &= ~excluded
    skipped_out = 0
    if feedback is not None and s.listens:
        skipped = feedback[0].copy()
        skipped[[int(r) for r in seeds or []]] = False   # a seed the user names is never left out
        skipped_out = int((allowed & skipped).sum())
        allowed &= ~skipped
    picker = make_picker(cat, rules if rules is not None else Diversity(), size, duration_s)
    after = [int(r) for r in after or []]
    picker.precede(after)
    ctx = Context(cat=cat, allowed=allowed, seeds=[int(r) for r in seeds or []], picker=picker, params=params,
                  rng=np.random.default_rng(random_seed), tag_min=tag_min, random_seed=random_seed,
                  diversity_explicit=diversity_explicit, history=history, transition_weights=transition_weights)
    if left_out:
        ctx.info["excluded"] = left_out
    if feedback is not None and s.listens:
        ctx.demoted = feedback[1]
        if skipped_out:
            ctx.info["feedback_left_out"] = skipped_out
            ctx.notes.append(f"left out {skipped_out} track(s) you skipped recently")
    if cat.size == 0:
        ctx.notes.append("the library has no analysed tracks yet")
    else:
        s.fn(ctx)
        _arrange(ctx, order or s.default_order(params), after)
    lowered = ctx.info.get("feedback_lowered")
    if lowered:
        ctx.notes.append(f"ranked {lowered} track(s) that sound like ones you skipped lower")
    ctx.notes.extend(n for n in picker.notes if n not in ctx.notes)
    return ctx


def _arrange(ctx: Context, mode: str, after: list[int]) -> None:
    """Order the chosen tracks; the seeds the playlist starts with stay in front. The end of
    ``after`` goes first as a fixed prefix, so the order keeps the gaps from it and starts with
    a smooth transition; it is left out of the result again."""
    rows = ctx.picker.rows
    fixed = 0
    while fixed < min(len(rows), len(ctx.seeds)) and rows[fixed] == ctx.seeds[fixed]:
        fixed += 1
    rules = ctx.picker.rules
    how = "as_is" if ctx.ordered and mode == "smooth" else mode   # the strategy ordered them already
    lead = after[-max(rules.artist_gap, rules.album_gap, 1):] if after and how != "as_is" else []
    ordered, steps, notes = arrange(ctx.cat, [*lead, *rows], how, weights=ctx.transition_weights,
                                    fixed=len(lead) + fixed, artist_gap=rules.artist_gap, album_gap=rules.album_gap)
    ctx.notes.extend(notes)
    ctx.picker.rows = ordered[len(lead):]
    steps = steps[len(lead):]
    ctx.transition_costs = [round(float(x), 4) for x in steps]
    ctx.info["order"] = mode
    ctx.info["transitions"] = summary(steps)

"""Every strategy by name (in the order of DESIGN.md §5), and ``run``: one strategy over a catalog,
pure numpy — what the service calls after resolving seeds, and what the tests call directly."""

from __future__ import annotations

from typing import Any

import numpy as np

from .catalog import Catalog
from .diversity import Diversity, Picker
from .filters import filter_mask
from .groups import GROUP_STRATEGIES
from .strategies import CORE_STRATEGIES, Context, Strategy, coerce_params

STRATEGIES: dict[str, Strategy] = {s.name: s for s in [*CORE_STRATEGIES, *GROUP_STRATEGIES]}


def make_picker(cat: Catalog, rules: Diversity, size: int, duration_s: float | None = None) -> Picker:
    return Picker(artist=cat.artist, album=cat.album, song=cat.song, duration=cat.num["duration_s"], rules=rules,
                  size=size, duration_s=duration_s, embedding=cat.group_block("embedding"),
                  has_embedding=cat.present[:, -1] > 0)


def run(cat: Catalog, strategy: str | Strategy, *, seeds: list[int] | None = None, size: int = 25,
        duration_s: float | None = None, params: dict[str, Any] | None = None, filters: dict | None = None,
        rules: Diversity | None = None, tag_min: float = 0.1, random_seed: int | None = None,
        diversity_explicit: bool = False, validated: bool = False) -> Context:
    """Run one strategy; the playlist is ``ctx.picker.rows`` (catalog rows), with ``ctx.name``,
    ``ctx.notes`` and ``ctx.info``. ``params`` are validated unless ``validated``."""
    s = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    params = params if validated else coerce_params(s, params or {})
    allowed = filter_mask(cat, filters, tag_min)
    picker = make_picker(cat, rules if rules is not None else Diversity(), size, duration_s)
    ctx = Context(cat=cat, allowed=allowed, seeds=[int(r) for r in seeds or []], picker=picker, params=params,
                  rng=np.random.default_rng(random_seed), tag_min=tag_min, random_seed=random_seed,
                  diversity_explicit=diversity_explicit)
    if cat.size == 0:
        ctx.notes.append("the library has no analysed tracks yet")
    else:
        s.fn(ctx)
    ctx.notes.extend(n for n in picker.notes if n not in ctx.notes)
    return ctx

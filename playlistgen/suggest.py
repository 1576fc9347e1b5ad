"""One "did you mean" for every unknown name: config keys, presets, strategies, tags, tracks."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggestions(word: str, options: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Close matches, case-insensitively, in their original spelling."""
    by_fold: dict[str, str] = {}
    for option in options:
        by_fold.setdefault(str(option).casefold(), str(option))
    found = difflib.get_close_matches(str(word).casefold(), list(by_fold), n=n, cutoff=cutoff)
    return [by_fold[f] for f in found]


def did_you_mean(word: str, options: Iterable[str], prefix: str = "", *, max_listed: int = 30) -> str:
    """"did you mean 'x'?" — or, with no close match, the valid names (when there are few)."""
    options = list(options)
    match = suggestions(word, options, n=1, cutoff=0.6)
    if match:
        return f"did you mean '{prefix}{match[0]}'?"
    if len(options) <= max_listed:
        return f"valid names: {', '.join(prefix + str(o) for o in options)}"
    return ""

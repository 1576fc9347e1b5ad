"""Keeping the artist/album gaps while ordering.

The diversity rules (``Diversity.artist_gap`` / ``album_gap``: no artist again within that many
tracks) depend on positions, and every order (smooth, energy_arc, a harmonic mix's polish) moves
tracks. ``restore_gaps`` turns the order a mode wants into the nearest order that keeps the gaps:
it places tracks front to back, taking the wanted next track when it fits, else the fitting track
the mode prefers (the cheapest transition for ``smooth``, the earliest in the wanted order for
``energy_arc``), and steps back when a choice leaves no room for the rest. That is a depth-first
search, pruned by two tests that are exact for a single rule (an artist with k tracks left needs
(k-1)·(gap+1)+1 places counted from its last one; and with m the largest count left and t the
number of artists that have it, (m-1)·(gap+1)+t places are needed) and bounded by a node budget.
A greedy repair without stepping back (the earlier one) broke a gap whenever two rules bound at
once, e.g. untagged tracks sharing an album between tagged artists' tracks.

The selection's own order (``witness``) proves which gaps the chosen tracks allow. When no order
with the configured gaps is found, the gaps the witness keeps are the target; when the search runs
out of budget even then, the witness order is returned. ``Restored.notes`` names every gap kept
smaller than configured and why, for the playlist's notes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

RULE_NAMES = ("artist", "album")
NODES_PER_TRACK = 4     # search budget: this many placements per track, plus BASE_NODES
BASE_NODES = 1000


def kept_gap(order: np.ndarray, codes: np.ndarray, gap: int, fixed: int = 0) -> int:
    """The largest gap up to ``gap`` that ``order`` keeps for ``codes`` (-1 never clashes); only
    places from ``fixed`` on count (the fixed ones were placed by the user)."""
    last: dict[int, int] = {}
    best = gap
    for i, x in enumerate(np.asarray(order, dtype=np.int64).tolist()):
        c = int(codes[x])
        if c < 0:
            continue
        if c in last and i >= fixed:
            best = min(best, i - last[c] - 1)
        last[c] = i
    return max(best, 0)


@dataclass
class Restored:
    order: np.ndarray          # a permutation of the wanted order's indices
    wanted: dict[str, int]     # rule name → the configured gap
    kept: dict[str, int]       # rule name → the gap the order keeps (≤ wanted)
    witness_used: bool         # no order near the wanted one was found: the selection's order was kept

    def notes(self, what: str) -> list[str]:
        """One line per gap kept smaller than configured (what, to what, why)."""
        out = []
        if self.witness_used:
            rules = " and ".join(f"the {name} gap {self.kept[name]}" for name in RULE_NAMES if self.kept[name] > 0)
            out.append(f"{what}: tracks left in the selection's order: no other order keeping {rules} was found "
                       "within the search limit")
        for name in RULE_NAMES:
            if self.kept[name] < self.wanted[name]:
                out.append(f"{what}: {name} gap relaxed from {self.wanted[name]} to {self.kept[name]}, as in the "
                           f"selection: the chosen tracks have too few different {name}s for more")
        return out


def restore_gaps(wanted_order: np.ndarray, artist: np.ndarray, album: np.ndarray, artist_gap: int, album_gap: int,
                 *, fixed: int = 1, cost: Callable[[int, np.ndarray], np.ndarray] | None = None,
                 prefer: str = "cost", witness: np.ndarray | None = None) -> Restored:
    """The order nearest ``wanted_order`` (a permutation of range(n) whose first ``fixed`` entries
    stay) that keeps the gaps. ``artist``/``album`` are codes per index; ``cost(i, js)`` the
    transition costs from index i to each of js (``prefer="cost"``: the cheapest fitting track
    replaces one that does not fit; ``"order"``: the earliest fitting one in the wanted order);
    ``witness`` (default: range(n), the given order) is an order of the same tracks the selection
    made, which shows the gaps they allow."""
    wanted_order = np.asarray(wanted_order, dtype=np.int64)
    n = wanted_order.shape[0]
    codes = {"artist": np.asarray(artist, dtype=np.int64), "album": np.asarray(album, dtype=np.int64)}
    wanted = {"artist": max(artist_gap, 0), "album": max(album_gap, 0)}
    if n - fixed <= 0 or not any(wanted.values()):
        return Restored(wanted_order, wanted, dict(wanted), False)
    budget = NODES_PER_TRACK * n + BASE_NODES
    found = _Search(wanted_order, codes, wanted, fixed, cost, prefer).run(budget)
    if found is not None:
        return Restored(found, wanted, dict(wanted), False)
    witness = np.arange(n, dtype=np.int64) if witness is None else np.asarray(witness, dtype=np.int64)
    levels = {name: kept_gap(witness, codes[name], wanted[name], fixed) for name in RULE_NAMES}
    # relax one rule to the selection's gap, then the other, then both
    tries = [{**wanted, name: levels[name]} for name in RULE_NAMES if levels[name] < wanted[name]]
    for gaps in [*tries, levels] if len(tries) > 1 else tries:
        found = _Search(wanted_order, codes, gaps, fixed, cost, prefer).run(budget)
        if found is not None:
            return Restored(found, wanted, gaps, False)
    log.debug("gap search gave up on %d tracks (gaps %s): the selection's order is kept", n, levels)
    return Restored(witness, wanted, levels, True)


class _Search:
    """Depth-first search for an order keeping the gaps, trying the wanted order first."""

    def __init__(self, wanted_order: np.ndarray, codes: dict[str, np.ndarray], gaps: dict[str, int], fixed: int,
                 cost: Callable[[int, np.ndarray], np.ndarray] | None, prefer: str) -> None:
        self.wanted = wanted_order
        self.n = wanted_order.shape[0]
        self.rank = np.empty(self.n, dtype=np.int64)
        self.rank[wanted_order] = np.arange(self.n)
        self.cost = cost if prefer == "cost" else None
        self.rules = [_Rule(codes[name], gaps[name], wanted_order[fixed:]) for name in RULE_NAMES if gaps[name] > 0]
        self.out: list[int] = []
        self.placed = np.zeros(self.n, dtype=bool)
        for x in wanted_order[:fixed].tolist():
            self.out.append(x)
            self.placed[x] = True
            for rule in self.rules:
                rule.last[int(rule.codes[x])] = len(self.out) - 1

    def run(self, budget: int) -> np.ndarray | None:
        if not self._room():
            return None
        frames: list[list] = []     # per free place: [candidates (None until needed), next, first tried]
        entering = True
        while len(self.out) < self.n:
            if entering:
                frames.append([None, 0, -1])
            x = self._next(frames[-1])
            if x is None:           # nothing left to try here: step back
                frames.pop()
                if not frames:
                    return None
                self._unplace()
                entering = False
                continue
            budget -= 1
            if budget < 0:
                return None
            self._place(x)
            entering = self._room()
            if not entering:
                self._unplace()
        return np.asarray(self.out, dtype=np.int64)

    # --- candidates -------------------------------------------------------------------------
    def _fits(self, x: int) -> bool:
        return all(rule.fits(x, len(self.out)) for rule in self.rules)

    def _next(self, frame: list) -> int | None:
        if frame[0] is None and frame[2] < 0:
            frame[2] = int(self.wanted[int(np.argmin(self.placed[self.wanted]))])   # the wanted next
            if self._fits(frame[2]):
                return frame[2]
        if frame[0] is None:
            frame[0] = self._candidates(frame[2])
        if frame[1] >= frame[0].shape[0]:
            return None
        frame[1] += 1
        return int(frame[0][frame[1] - 1])

    def _candidates(self, tried: int) -> np.ndarray:
        """Unplaced tracks that fit here, best first (``tried``, the wanted next, is left out)."""
        rest = self.wanted[~self.placed[self.wanted]]
        ok = rest != tried
        for rule in self.rules:
            recent = rule.codes[np.asarray(self.out[-rule.gap:], dtype=np.int64)]
            recent = recent[recent >= 0]
            if recent.size:
                ok &= ~np.isin(rule.codes[rest], recent)
        rest = rest[ok]
        if self.cost is not None and self.out and rest.size > 1:
            rest = rest[np.lexsort((self.rank[rest], self.cost(self.out[-1], rest)))]
        return rest

    # --- state ------------------------------------------------------------------------------
    def _place(self, x: int) -> None:
        self.out.append(x)
        self.placed[x] = True
        for rule in self.rules:
            rule.place(x, len(self.out) - 1)

    def _unplace(self) -> None:
        x = self.out.pop()
        self.placed[x] = False
        for rule in self.rules:
            rule.unplace(x)

    def _room(self) -> bool:
        left = self.n - len(self.out)
        return all(rule.room(self.out, left) for rule in self.rules)


class _Rule:
    """One gap rule's bookkeeping: codes left to place (and how many codes have each count), where
    each code was placed last."""

    def __init__(self, codes: np.ndarray, gap: int, free: np.ndarray) -> None:
        self.codes = codes
        self.gap = gap
        self.left = Counter(c for c in codes[free].tolist() if c >= 0)
        self.by_count = Counter(self.left.values())
        self.last: dict[int, int] = {}
        self.history: list[int | None] = []   # the previous last place of each placed code

    def fits(self, x: int, position: int) -> bool:
        c = int(self.codes[x])
        return c < 0 or position - self.last.get(c, -10**9) > self.gap

    def _count(self, c: int, delta: int) -> None:
        k = self.left[c]
        self.by_count[k] -= 1
        if not self.by_count[k]:
            del self.by_count[k]
        self.left[c] = k + delta
        if k + delta:
            self.by_count[k + delta] += 1

    def place(self, x: int, position: int) -> None:
        c = int(self.codes[x])
        if c < 0:
            self.history.append(None)
            return
        self.history.append(self.last.get(c))
        self.last[c] = position
        self._count(c, -1)

    def unplace(self, x: int) -> None:
        c = int(self.codes[x])
        previous = self.history.pop()
        if c < 0:
            return
        if previous is None:
            del self.last[c]
        else:
            self.last[c] = previous
        if self.left[c]:
            self._count(c, +1)
        else:
            self.left[c] = 1
            self.by_count[1] += 1

    def room(self, out: list[int], left: int) -> bool:
        """Whether the codes still to place can fit in ``left`` places (necessary conditions)."""
        if left == 0 or not self.by_count:
            return True
        most = max(self.by_count)
        if (most - 1) * (self.gap + 1) + self.by_count[most] > left:
            return False
        nxt = len(out)
        for x in out[-self.gap:]:       # codes placed lately may not come again at once
            c = int(self.codes[x])
            k = self.left.get(c, 0) if c >= 0 else 0
            if k and self.last[c] + self.gap + 1 - nxt + (k - 1) * (self.gap + 1) > left - 1:
                return False
        return True

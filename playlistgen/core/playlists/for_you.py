"""Strategy ``for_you``: a mix from what the user actually plays on the linked media server.

The listening history is the ``mediaserver_songs`` table (play counts, last played and starred,
read by the media-server link and updated by scrobbles through the ``/rest`` proxy), loaded by
``load_history`` and handed to the strategy in ``Context.history`` — the strategy itself stays a
pure function over arrays. Seeds are drawn from three pools (the most recently played songs, the
most played ones, the starred ones) in proportion to their weights; the playlist is the seeds'
neighbours, interleaved so that every seed is heard, without the songs played in the last
``exclude_played_days`` days, under the usual diversity rules. Without any history the response
says so and the mix is drawn from the whole library instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import apsw
import numpy as np

from ..storage.db import Database
from .strategies import Context, Param, Strategy, fill_ranked, similar_interleaved

log = logging.getLogger(__name__)

SOURCES = ("recent", "most_played", "starred")
POOL_FACTOR = 4  # seeds are drawn at random among the POOL_FACTOR × needed best of each pool
NO_HISTORY_NOTE = ("for_you: no listening history yet (link a media server with mediaserver.url and play "
                   "some songs); this is a mix from the whole library instead")
NO_ANALYSED_NOTE = ("for_you: none of the songs in your listening history is analysed yet; this is a mix from "
                    "the whole library instead")


@dataclass(frozen=True)
class History:
    """Per-track listening history (one entry per playlistgen track, summed over server songs)."""

    track_ids: np.ndarray    # int64 (m,)
    play_count: np.ndarray   # int64 (m,)
    last_played: np.ndarray  # float64 (m,) unix time, NaN = never
    starred: np.ndarray      # bool (m,)
    now: float               # the clock the "played in the last N days" rule uses

    @classmethod
    def empty(cls, now: float | None = None) -> History:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool),
                   time.time() if now is None else now)

    @property
    def size(self) -> int:
        return int(self.track_ids.shape[0])


_HISTORY_SQL = """
SELECT track_id, sum(play_count), max(last_played), max(starred IS NOT NULL)
FROM mediaserver_songs
WHERE track_id IS NOT NULL AND (play_count > 0 OR last_played IS NOT NULL OR starred IS NOT NULL)
GROUP BY track_id
"""


def load_history(db: Database, now: float | None = None) -> History:
    """The listening history of the linked media server's songs that match a playlistgen track."""
    try:
        rows = db.query(_HISTORY_SQL)
    except apsw.SQLError as exc:  # a database from before the media-server migration
        log.debug("no listening history: %s", exc)
        return History.empty(now)
    if not rows:
        return History.empty(now)
    return History(track_ids=np.array([r[0] for r in rows], dtype=np.int64),
                   play_count=np.array([r[1] or 0 for r in rows], dtype=np.int64),
                   last_played=np.array([np.nan if r[2] is None else r[2] for r in rows], dtype=np.float64),
                   starred=np.array([bool(r[3]) for r in rows], dtype=bool),
                   now=time.time() if now is None else now)


def _apportion(total: int, weights: dict[str, float], available: dict[str, int]) -> dict[str, int]:
    """Split ``total`` seeds over the sources by weight (largest remainder), never more than a
    source has; what one source cannot give goes to the others."""
    counts = dict.fromkeys(weights, 0)
    while total > 0:
        open_ = {s: w for s, w in weights.items() if w > 0 and counts[s] < available[s]}
        if not open_:
            break
        wsum = sum(open_.values())
        shares = {s: total * w / wsum for s, w in open_.items()}
        give = {s: min(int(shares[s]), available[s] - counts[s]) for s in open_}
        if sum(give.values()) == 0:  # fewer seeds left than sources: the largest remainders win
            best = max(open_, key=lambda s: (shares[s] - int(shares[s]), open_[s]))
            give = {best: 1}
        for s, n in give.items():
            counts[s] += n
            total -= n
    return counts


def pick_seeds(ctx: Context, history: History, rows: np.ndarray) -> dict[str, list[int]]:
    """Seed catalog rows per source. ``rows`` are the catalog rows of ``history`` (-1 = not in the
    catalog). Within a pool the best-ranked songs are likelier (weights 1/rank)."""
    live = rows >= 0
    window = history.now - float(ctx.params["recent_days"]) * 86400.0
    with np.errstate(invalid="ignore"):  # NaN = never played
        recently = np.isfinite(history.last_played) & (history.last_played >= window)
    order = {
        "recent": np.flatnonzero(live & recently),
        "most_played": np.flatnonzero(live & (history.play_count > 0)),
        "starred": np.flatnonzero(live & history.starred),
    }
    order["recent"] = order["recent"][np.argsort(-history.last_played[order["recent"]], kind="stable")]
    order["most_played"] = order["most_played"][np.argsort(-history.play_count[order["most_played"]],
                                                           kind="stable")]
    starred = order["starred"]  # starred songs are equal: most played first only to break ties
    order["starred"] = starred[np.argsort(-history.play_count[starred], kind="stable")]
    weights = {s: float(ctx.params[f"{s}_weight"]) for s in SOURCES}
    counts = _apportion(ctx.params["seed_count"], weights, {s: int(v.size) for s, v in order.items()})
    chosen: dict[str, list[int]] = {s: [] for s in SOURCES}
    taken: set[int] = set()
    for source in SOURCES:
        need = counts[source]
        candidates = [int(rows[i]) for i in order[source] if int(rows[i]) not in taken]
        pool = candidates[:max(need * POOL_FACTOR, need)]
        if need <= 0 or not pool:
            continue
        p = 1.0 / np.arange(1, len(pool) + 1)
        picks = ctx.rng.choice(len(pool), size=min(need, len(pool)), replace=False, p=p / p.sum())
        for i in sorted(int(i) for i in picks):
            chosen[source].append(pool[i])
            taken.add(pool[i])
    return chosen


def for_you(ctx: Context) -> None:
    cat = ctx.cat
    history: History = ctx.history if ctx.history is not None else History.empty()
    rows = cat.rows_of(history.track_ids) if history.size else np.zeros(0, np.int64)
    days = float(ctx.params["exclude_played_days"])
    allowed = ctx.allowed.copy()
    excluded = 0
    if days > 0 and history.size:
        recent = (rows >= 0) & (history.last_played >= history.now - days * 86400.0)
        excluded = int(allowed[rows[recent]].sum())
        allowed[rows[recent]] = False
    seeds = pick_seeds(ctx, history, rows) if history.size else {s: [] for s in SOURCES}
    seed_rows = [r for s in SOURCES for r in seeds[s]]
    if seed_rows:
        allowed[seed_rows] = False  # the seeds are what you already play: the mix is their neighbours
        ctx.name = "For you"
    else:  # no history (or none of it is analysed yet): a library-wide mix
        ctx.notes.append(NO_HISTORY_NOTE if not history.size else NO_ANALYSED_NOTE)
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0:
            return
        n = min(int(ctx.params["seed_count"]), int(candidates.size))
        seed_rows = [int(r) for r in ctx.rng.choice(candidates, size=n, replace=False)]
        ctx.name = "Library mix"
    fill_ranked(ctx, lambda k: similar_interleaved(cat, seed_rows, allowed, k))
    ctx.info["for_you"] = {
        "history_tracks": history.size,
        "seeds": {s: [int(cat.track_ids[r]) for r in seeds[s]] for s in SOURCES},
        "excluded_recently_played": excluded,
        "exclude_played_days": days,
    }


FOR_YOU_STRATEGIES = [
    Strategy("for_you", "A mix from your listening on the linked media server: neighbours of recently played, "
             "most played and starred songs, without what you played in the last days.", for_you, (
                 Param("recent_weight", "number", 1.0, "Share of seeds from the most recently played songs.",
                       minimum=0.0, maximum=100.0),
                 Param("most_played_weight", "number", 1.0, "Share of seeds from the most played songs.",
                       minimum=0.0, maximum=100.0),
                 Param("starred_weight", "number", 1.0, "Share of seeds from the starred songs.",
                       minimum=0.0, maximum=100.0),
                 Param("recent_days", "number", 30.0, "Songs played in the last N days are the recently played "
                       "ones.", minimum=0.0, maximum=3650.0),
                 Param("seed_count", "integer", 6, "How many history songs seed the mix.", minimum=1, maximum=50),
                 Param("exclude_played_days", "number", 7.0, "Leave out songs played in the last N days (0 = keep "
                       "them).", minimum=0.0, maximum=3650.0)),
             uses_history=True, listens=True),
]

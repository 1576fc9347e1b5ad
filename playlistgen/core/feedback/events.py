"""``listening_events``: the skips and full plays, written by MPD radio and the ``/rest`` proxy,
and read back as :class:`Skipped` — what one listener skipped within ``feedback.avoid_days``.

Listeners: ``None`` is MPD and the media server's linked user (``mediaserver.user``); any other
name is that user of the media server, so their skips never shape the linked user's radio.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import apsw

from ..storage.db import Database
from .rules import PLAY, SKIP, FeedbackRules

log = logging.getLogger(__name__)

SOURCES = ("mpd", "subsonic", "playback_report")

# Per track of one listener: the skips since its last full play, inside the window, and the last one.
_SKIPPED_SQL = """
SELECT e.track_id, count(*), max(e.at) FROM listening_events e
WHERE e.kind = 'skip' AND e.at >= ?1 AND e.user IS ?2
  AND e.at > coalesce((SELECT max(p.at) FROM listening_events p
                       WHERE p.track_id = e.track_id AND p.kind = 'play' AND p.user IS ?2), 0)
GROUP BY e.track_id
"""


@dataclass(frozen=True)
class Skipped:
    """What one listener skipped recently: track id → skips since its last full play (and when
    the last of them was, epoch s)."""

    skips: dict[int, int] = field(default_factory=dict)
    rules: FeedbackRules = field(default_factory=FeedbackRules)
    last: dict[int, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.skips)

    def track_ids(self, min_skips: int = 1) -> list[int]:
        return sorted(t for t, n in self.skips.items() if n >= min_skips)

    def skipped_once(self) -> list[int]:
        """The tracks skipped once (MPD radio's soft skips), the least recently skipped first."""
        return sorted((t for t, n in self.skips.items() if n == 1), key=lambda t: (self.last.get(t, 0.0), t))

    def without(self, track_ids: tuple[int, ...] | list[int]) -> Skipped:
        """These skips with ``track_ids`` overlooked."""
        if not track_ids:
            return self
        drop = set(track_ids)
        return Skipped({t: n for t, n in self.skips.items() if t not in drop}, self.rules,
                       {t: a for t, a in self.last.items() if t not in drop})


def listener_of(user: str | None, linked_user: str) -> str | None:
    """The name events are stored under: None for the linked user (and MPD), else the name."""
    if not user or (linked_user and user.casefold() == linked_user.casefold()):
        return None
    return user


class FeedbackStore:
    """Built once by the app; thread-safe (the database serialises writes)."""

    def __init__(self, db: Database, rules: FeedbackRules) -> None:
        self.db = db
        self.rules = rules

    def record(self, track_id: int, kind: str, source: str, *, user: str | None = None,
               position_s: float | None = None, at: float | None = None) -> None:
        if kind not in (SKIP, PLAY) or source not in SOURCES:
            raise ValueError(f"listening event {kind!r} from {source!r}")
        when = time.time() if at is None else at
        self.db.write(lambda conn: conn.execute(
            "INSERT INTO listening_events (track_id, kind, source, user, position_s, at) VALUES (?, ?, ?, ?, ?, ?)",
            (int(track_id), kind, source, user, None if position_s is None else round(float(position_s), 2), when)))
        log.info("feedback: %s of track %d (%s%s%s)", kind, track_id, source, f", user {user}" if user else "",
                 "" if position_s is None else f", at {position_s:.0f} s")

    def skipped(self, user: str | None = None, now: float | None = None) -> Skipped:
        """The listener's recent skips (empty when ``feedback.avoid_days`` is 0)."""
        if not self.rules.enabled:
            return Skipped(rules=self.rules)
        since = (time.time() if now is None else now) - self.rules.window_s
        try:
            rows = self.db.query(_SKIPPED_SQL, (since, user))
        except apsw.SQLError as exc:   # a database from before migration 9
            log.debug("no listening feedback: %s", exc)
            return Skipped(rules=self.rules)
        return Skipped({int(t): int(n) for t, n, _ in rows}, self.rules, {int(t): float(a) for t, _, a in rows})

    def events(self, track_ids: list[int] | None = None) -> list[dict[str, Any]]:
        """Every stored event (of these tracks), oldest first: for tests and the CLI."""
        sql = "SELECT track_id, kind, source, user, position_s, at FROM listening_events"
        params: tuple = ()
        if track_ids is not None:
            sql += " WHERE track_id IN (SELECT value FROM json_each(?))"
            params = (json.dumps([int(t) for t in track_ids]),)
        rows = self.db.query(sql + " ORDER BY at, id", params)
        return [dict(zip(("track_id", "kind", "source", "user", "position_s", "at"), r, strict=True)) for r in rows]

"""Skips and plays from OpenSubsonic ``playbackReport`` reports (``reportPlayback``).

The extension (opensubsonic/open-subsonic-api, ``content/en/docs/Extensions/playbackReport.md``
and ``content/en/docs/Endpoints/reportplayback.md``, version 1): a client reports ``mediaId``,
``positionMs`` and ``state`` (``starting``, ``playing``, ``paused``, ``stopped``) at least at
each change of state, with an optional ``playbackRate``; the server estimates the position
between reports from the rate while the state is ``playing``.

One session per listener — the song they play and where it was at their last report — judged
with :class:`FeedbackRules` when it ends: a ``stopped`` ends it at the reported position, a
report of another song (or ``starting`` again: a restart) at the position estimated from the
last report. A song is recorded as played as soon as a report shows it past
``feedback.play_fraction`` (clients often never report the end), and then nothing more is
recorded for that session. A restart of the same song early is not a skip (the listener wanted
it again). Sessions live in memory: a restart of the daemon forgets one song in progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .events import FeedbackStore
from .rules import PLAY, SKIP, FeedbackRules

STATES = ("starting", "playing", "paused", "stopped")
MAX_LISTENERS = 1000        # bounded memory whatever the clients send
REPORTING_TTL_S = 3600.0    # a listener who reported playback this recently is followed by their reports


@dataclass
class _Session:
    track_id: int
    duration_s: float | None
    position_s: float = 0.0
    playing: bool = False
    rate: float = 1.0
    at: float = 0.0          # monotonic time of the last report
    played: bool = False     # a play was recorded: the session says nothing more

    def position(self, now: float) -> float:
        """Where the song is now: the last report, moved on by the clock while playing."""
        if not self.playing:
            return self.position_s
        moved = self.position_s + max(0.0, now - self.at) * self.rate
        return min(moved, self.duration_s) if self.duration_s else moved

    def end(self, position_s: float, rules: FeedbackRules, *, restart: bool = False) -> list[tuple[int, str, float]]:
        if self.played:
            return []
        verdict = rules.verdict(position_s, self.duration_s)
        if verdict == PLAY or (verdict == SKIP and not restart):
            return [(self.track_id, verdict, position_s)]
        return []

    def passed_play(self, rules: FeedbackRules) -> list[tuple[int, str, float]]:
        if self.played or rules.verdict(self.position_s, self.duration_s) != PLAY:
            return []
        self.played = True
        return [(self.track_id, PLAY, self.position_s)]


class PlaybackReports:
    """Built once by the app (with the proxy); thread-safe."""

    def __init__(self, store: FeedbackStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str | None, _Session] = {}
        self._seen: dict[str | None, float] = {}

    def reporting(self, user: str | None) -> bool:
        """Whether ``user`` reports playback (recently): their "now playing" scrobbles are then
        left to these reports, so a skip is not counted twice."""
        with self._lock:
            seen = self._seen.get(user)
        return seen is not None and self.clock() - seen < REPORTING_TTL_S

    def report(self, user: str | None, track_id: int | None, duration_s: float | None, state: str,
               position_s: float, rate: float = 1.0) -> list[tuple[int, str, float]]:
        """One report of ``user`` (``track_id`` None: a song we do not know, or not a song — it
        still ends the one before). Returns the events recorded: (track id, kind, position s)."""
        if state not in STATES:
            raise ValueError(f"playback state {state!r}")
        now = self.clock()
        events: list[tuple[int, str, float]] = []
        with self._lock:
            _bounded_put(self._seen, user, now)
            before = self._sessions.pop(user, None)
            same = before is not None and before.track_id == track_id
            if before is not None and (not same or state in ("starting", "stopped")):
                # a stop at 0 (some players reset the position as they stop): where it was
                at = position_s if same and state == "stopped" and position_s > 0 else before.position(now)
                events += before.end(at, self.store.rules, restart=same and state == "starting")
                before = None
            if track_id is not None and not (same and state == "stopped"):
                session = before if before is not None else _Session(track_id, duration_s)
                session.position_s, session.rate, session.at = position_s, rate, now
                session.playing = state == "playing"
                if state == "stopped":   # a stop of a song never reported before
                    events += session.end(position_s, self.store.rules)
                else:
                    events += session.passed_play(self.store.rules)
                    _bounded_put(self._sessions, user, session)
        for track, kind, at in events:
            self.store.record(track, kind, "playback_report", user=user, position_s=at)
        return events


def _bounded_put(table: dict, key: object, value: object) -> None:
    table.pop(key, None)
    if len(table) >= MAX_LISTENERS:
        table.pop(next(iter(table)))   # the oldest entry
    table[key] = value

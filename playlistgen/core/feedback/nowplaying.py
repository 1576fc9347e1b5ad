"""Skips from a Subsonic client's "now playing" reports (``scrobble`` with ``submission=false``).

A client says "now playing A", later "now playing B": A stopped after the time between the two
reports, so a short time means A was skipped (:class:`FeedbackRules`). A ``submission=true``
scrobble is a full play. Reports are kept per listener in memory (a restart forgets one song
in progress, nothing more); each one ends with the next report of that listener.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .events import FeedbackStore
from .rules import PLAY, SKIP

MAX_LISTENERS = 1000   # bounded memory whatever the clients send


@dataclass
class _Playing:
    track_id: int
    duration_s: float | None
    since: float          # monotonic time of the report


class NowPlaying:
    def __init__(self, store: FeedbackStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._playing: dict[str | None, _Playing] = {}

    def now_playing(self, user: str | None, track_id: int, duration_s: float | None) -> str | None:
        """A "now playing" report; returns SKIP when it ended the previous song early."""
        now = self.clock()
        with self._lock:
            before = self._playing.pop(user, None)
            if len(self._playing) >= MAX_LISTENERS:
                self._playing.pop(next(iter(self._playing)))
            self._playing[user] = _Playing(track_id, duration_s, now)
        if before is None or before.track_id == track_id:   # the same song reported again: still playing
            if before is not None:
                with self._lock:
                    self._playing[user] = before
            return None
        heard = now - before.since
        if self.store.rules.verdict(heard, before.duration_s) == SKIP:
            self.store.record(before.track_id, SKIP, "subsonic", user=user, position_s=heard)
            return SKIP
        return None

    def played(self, user: str | None, track_id: int) -> None:
        """A submission: the song was heard (the client applies the scrobble rules)."""
        with self._lock:
            current = self._playing.get(user)
            if current is not None and current.track_id == track_id:
                del self._playing[user]
        self.store.record(track_id, PLAY, "subsonic", user=user)

"""When a song that stopped playing counts as a skip or as a full play (``feedback.*``).

A song left within its first ``skip_threshold_s`` seconds — or within its first half, for a song
shorter than twice that — is a **skip**; one heard past ``play_fraction`` of its length (or to
its end) is a **play**, and a play cancels the skips before it. Anything in between says nothing:
someone who moves on after two minutes has heard the song, without telling us whether they liked it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SKIP, PLAY = "skip", "play"
DAY_S = 86400.0


@dataclass(frozen=True)
class FeedbackRules:
    skip_threshold_s: float = 30.0
    play_fraction: float = 0.9
    avoid_days: float = 30.0
    neighbours: int = 5

    @classmethod
    def configured(cls, settings: Any) -> FeedbackRules:
        f = settings.feedback
        return cls(float(f.skip_threshold_s), float(f.play_fraction), float(f.avoid_days), int(f.neighbours))

    @property
    def enabled(self) -> bool:
        return self.avoid_days > 0

    @property
    def window_s(self) -> float:
        return self.avoid_days * DAY_S

    def skip_before(self, duration_s: float | None) -> float:
        """The position (s) before which leaving a song is a skip."""
        if duration_s and duration_s > 0:
            return min(self.skip_threshold_s, duration_s / 2)
        return self.skip_threshold_s

    def verdict(self, position_s: float | None, duration_s: float | None, *, slack_s: float = 0.0) -> str | None:
        """SKIP, PLAY or None for a song left at ``position_s``; ``slack_s``: how far before the
        end a song may be last seen and still have played to its end (a poll interval)."""
        if position_s is None:
            return None
        if duration_s and duration_s > 0 and (position_s >= self.play_fraction * duration_s
                                              or position_s >= duration_s - slack_s):
            return PLAY
        return SKIP if position_s < self.skip_before(duration_s) else None

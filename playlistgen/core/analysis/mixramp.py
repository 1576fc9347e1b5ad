"""MixRamp fade hints: where a track's start rises through, and its end falls through, a series
of loudness levels — MPD's ``MIXRAMP_START`` / ``MIXRAMP_END`` tag convention, which MPD uses with
``mixrampdb`` to overlap two songs exactly where the first has faded and the second has come in.

The values are strings of ``"<dB> <seconds>"`` pairs separated by ``;``, dB increasing. In
``MIXRAMP_START`` the seconds are counted from the start of the track (when it first reaches that
level), in ``MIXRAMP_END`` from the end of the track back (when it was last that loud). MPD looks
for the first pair at or above ``mixrampdb - replay_gain_db`` (levels are the track's own, before
ReplayGain), so levels above the track's loudest moment are left out. Pure functions;
``mixramp_points`` is what the analysis calls with the EBU R128 meter's momentary loudness
(400 ms windows every 100 ms), and what the tag writer can call with any loudness envelope.
"""

from __future__ import annotations

import numpy as np

LEVELS_DB = tuple(float(x) for x in range(-48, -2, 3))   # -48, -45, ..., -3


def mixramp_points(loudness_db: np.ndarray, hop_s: float, window_s: float = 0.0,
                   levels: tuple[float, ...] = LEVELS_DB) -> tuple[str | None, str | None]:
    """(MIXRAMP_START, MIXRAMP_END) from a loudness envelope: ``loudness_db[k]`` is the level of
    the window starting at ``k * hop_s`` and ``window_s`` long (times use the window's centre).
    None, None when the envelope is empty or never reaches the lowest level."""
    env = np.asarray(loudness_db, dtype=np.float64)
    if env.size == 0 or not np.isfinite(env).any():
        return None, None
    env = np.where(np.isfinite(env), env, -np.inf)
    centre = np.arange(env.size) * hop_s + window_s / 2
    total = (env.size - 1) * hop_s + window_s
    peak = float(env.max())
    start, end = [], []
    for level in sorted(levels):
        if level > peak:
            break
        above = np.flatnonzero(env >= level)
        start.append((level, max(0.0, float(centre[above[0]]))))
        end.append((level, max(0.0, float(total - centre[above[-1]]))))
    if not start:
        return None, None
    return format_ramp(start), format_ramp(end)


def format_ramp(pairs: list[tuple[float, float]]) -> str:
    return ";".join(f"{db:.2f} {seconds:.2f}" for db, seconds in pairs)


def parse_ramp(text: str) -> list[tuple[float, float]]:
    """'-18.00 1.20;-15.00 1.60' → [(-18.0, 1.2), (-15.0, 1.6)]; ValueError on anything else."""
    pairs = []
    for part in text.strip().strip(";").split(";"):
        db, seconds = part.split()
        pairs.append((float(db), float(seconds)))
    return pairs


def ramp_seconds(text: str, required_db: float) -> float | None:
    """The seconds MPD takes from a ramp for ``required_db``: those of the first pair at or above
    it (MPD 0.23's ``mixramp_interpolate`` returns there before interpolating); None when the
    track never gets that loud (MPD then does not overlap)."""
    for db, seconds in parse_ramp(text):
        if db >= required_db:
            return seconds
    return None

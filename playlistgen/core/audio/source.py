"""What every decoder hands out: the file's stream description and its chunks of audio (shared
by the decoders in ``decode`` and ``chain``, and read by the analysers)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SourceInfo:
    """What the container says about the file (duration_s may be None when it does not say)."""

    path: str
    sample_rate: int
    channels: int
    duration_s: float | None
    codec: str
    decoder: str          # "soundfile" | "essentia" | "audioread"
    mixed_from: int = 0   # >0: the decoder mixed this many channels to the mono it hands out


@dataclass
class Chunk:
    """~chunk_s seconds of audio: mono per requested rate (+ native multichannel on request)."""

    start_s: float
    mono: dict[int, np.ndarray] = field(default_factory=dict)
    native: np.ndarray | None = None     # (frames, channels) float32 at the source rate

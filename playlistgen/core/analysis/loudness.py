"""Streaming ITU-R BS.1770-4 / EBU R128 loudness meter.

Fed with native-rate multichannel blocks, it K-weights each channel (filter state carried across
blocks), keeps one weighted mean-square value per 100 ms (36,000 floats per audio hour) and
computes at the end:

* integrated loudness (LUFS): 400 ms blocks, 75 % overlap, absolute gate -70 LUFS, relative
  gate -10 LU;
* loudness range (LU, EBU Tech 3342): 3 s short-term windows every 100 ms, gates -70 LUFS and
  -20 LU, 95th minus 10th percentile;
* dynamic complexity (LU): mean absolute deviation of the gated 400 ms loudness from the
  integrated loudness (the idea of Essentia's DynamicComplexity, on the R128 block grid).

Channel weights follow BS.1770: 1.0 for front channels, 1.41 for surrounds, LFE ignored
(WAV/FFmpeg 5.1 order L R C LFE Ls Rs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.signal

from .mixramp import mixramp_points

ABSOLUTE_GATE = -70.0


def k_weighting_sos(sr: float) -> np.ndarray:
    """The two BS.1770 K-weighting biquads for any sample rate (libebur128's derivation)."""
    f0, gain, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sr)
    vh = 10 ** (gain / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sr)
    den = 1.0 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / den, (1.0 - k / q + k * k) / den]
    return np.array([shelf, highpass])


def channel_weights(channels: int) -> np.ndarray:
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, 1.41, 1.41])
    if channels == 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    return np.ones(channels)


def _to_lufs(mean_square: np.ndarray | float) -> np.ndarray | float:
    return -0.691 + 10.0 * np.log10(np.maximum(mean_square, 1e-20))


@dataclass
class LoudnessResult:
    integrated: float | None      # None: everything below the -70 LUFS gate (silence)
    loudness_range: float
    dynamic_complexity: float
    peak: float                   # sample peak, linear
    mixramp_start: str | None = None   # MPD MIXRAMP_START / MIXRAMP_END from the momentary loudness
    mixramp_end: str | None = None


class LoudnessMeter:
    """`mixed_from` > 0: the input is a mono mix of that many channels; it is weighted as that
    many identical channels (exact when they were correlated)."""

    def __init__(self, sr: int, channels: int, mixed_from: int = 0) -> None:
        self.sr = sr
        self.channels = channels
        self._sos = k_weighting_sos(sr).astype(np.float32)
        # float32 state keeps sosfilt on its float32 path (float64 costs 4x)
        self._zi = np.zeros((self._sos.shape[0], 2, channels), dtype=np.float32)
        weights = channel_weights(channels)
        if mixed_from and channels == 1:
            weights = np.array([float(min(mixed_from, 2))])   # surround mixes: count L+R only
        self._weights = weights.astype(np.float32)
        self._step = max(1, int(round(sr * 0.1)))      # 100 ms sub-blocks
        self._acc = 0.0                                # weighted square sum of the open sub-block
        self._acc_n = 0
        self._blocks: list[np.ndarray] = []
        self.peak = 0.0

    def push(self, block: np.ndarray) -> None:
        """block: (frames, channels) float32 at the meter's sample rate."""
        if not len(block):
            return
        self.peak = max(self.peak, float(block.max()), -float(block.min()))
        filtered, self._zi = scipy.signal.sosfilt(self._sos, block, axis=0, zi=self._zi)
        # float32 products, float64 sums: the cheapest exact-enough form (measured)
        power = (filtered * filtered).astype(np.float32) @ self._weights
        # complete the open sub-block first, then whole sub-blocks, keep the remainder open
        need = self._step - self._acc_n
        if len(power) < need:
            self._acc += float(power.sum(dtype=np.float64))
            self._acc_n += len(power)
            return
        first = (self._acc + float(power[:need].sum(dtype=np.float64))) / self._step
        rest = power[need:]
        whole = len(rest) // self._step
        means = rest[:whole * self._step].reshape(whole, self._step).sum(
            axis=1, dtype=np.float64) / self._step
        self._blocks.append(np.concatenate([[first], means]))
        tail = rest[whole * self._step:]
        self._acc, self._acc_n = float(tail.sum(dtype=np.float64)), len(tail)

    def result(self) -> LoudnessResult:
        sub = np.concatenate(self._blocks) if self._blocks else np.zeros(0)
        if self._acc_n >= self._step // 2 or (not len(sub) and self._acc_n):
            sub = np.append(sub, self._acc / self._acc_n)   # keep a substantial last piece
        if not len(sub):
            return LoudnessResult(None, 0.0, 0.0, self.peak)
        momentary = _windows(sub, 4)
        integrated, gated = _gated_mean(momentary, -10.0)
        if integrated is None:
            return LoudnessResult(None, 0.0, 0.0, self.peak)
        short = _windows(sub, 30)
        _, short_gated = _gated_mean(short, -20.0)
        lra = 0.0
        if len(short_gated) >= 2:
            levels = _to_lufs(short_gated)
            lra = float(np.percentile(levels, 95) - np.percentile(levels, 10))
        complexity = float(np.mean(np.abs(_to_lufs(gated) - integrated))) if len(gated) else 0.0
        hop = self._step / self.sr
        ramp = mixramp_points(_to_lufs(momentary), hop, hop * min(4, len(sub)))
        return LoudnessResult(float(integrated), lra, complexity, self.peak, *ramp)


def _windows(sub: np.ndarray, width: int) -> np.ndarray:
    """Mean of `width` consecutive sub-blocks at every sub-block (one window if too short)."""
    if len(sub) <= width:
        return np.array([sub.mean()])
    csum = np.concatenate([[0.0], np.cumsum(sub)])
    return (csum[width:] - csum[:-width]) / width


def _gated_mean(blocks: np.ndarray, relative: float) -> tuple[float | None, np.ndarray]:
    above = blocks[_to_lufs(blocks) > ABSOLUTE_GATE]
    if not len(above):
        return None, above
    threshold = _to_lufs(above.mean()) + relative
    kept = above[_to_lufs(above) > threshold]
    if not len(kept):
        kept = above
    return float(_to_lufs(kept.mean())), kept

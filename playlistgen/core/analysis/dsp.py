"""Streaming DSP features shared by both backends (numpy/scipy only, no Essentia or librosa).

Every accumulator takes consecutive chunks of one mono signal (`push`) and keeps only running
sums or small per-frame series (an onset curve at 43 Hz is 0.6 MB per audio hour), so memory
does not grow with the file. Frame-level spectra are computed for a whole chunk at once with
scipy.fft: a Python loop over Essentia frame algorithms costs more than the maths.

* `SpectralAccumulator` (1024/512 at 22050 Hz, i.e. 46 ms / 23 ms): complex-domain onset
  detection function (as Essentia's OnsetDetection 'complex'; with hop 512 at 22050 Hz it has
  the 43 Hz rate BeatTrackerDegara uses), 13 MFCCs (40 Slaney mel bands, dB, DCT-II ortho),
  spectral centroid / 85 % roll-off (Hz), flatness (0-1), zero-crossing rate (per sample).
* `ChromaAccumulator` (4096/4096 at 22050 Hz): an HPCP-like pitch-class profile from
  interpolated spectral peaks (25-3500 Hz, energy-weighted, unit-max per frame) with a global
  tuning correction; `chroma()` is 12 values, index 0 = C.
* `tempo_from_ticks`, `refine_tempo`: Essentia's RhythmExtractor2013 bpm-from-beats rule, then an
  onset-autocorrelation refinement (sub-frame precision, double-time check).
* `key_from_chroma`: profile correlation for backends without Essentia's Key.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from ..music import KEY_NAMES

DSP_RATE = 22050
FRAME = 1024
HOP = 512
ODF_RATE = DSP_RATE / HOP            # 43.07 Hz onset curve
CHROMA_FRAME = 4096
SILENT_POWER = 1e-7                  # frame mean-square below -70 dBFS: left out of averages
N_MFCC = 13
N_MELS = 40


class Framer:
    """Cuts a stream pushed in arbitrary pieces into frames of n samples every hop samples."""

    def __init__(self, n: int, hop: int) -> None:
        self.n, self.hop = n, hop
        self._buf = np.zeros(0, dtype=np.float32)
        self.frames_out = 0

    def push(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._buf, x]) if len(self._buf) else x
        if len(buf) < self.n:
            self._buf = np.array(buf, dtype=np.float32)
            return np.zeros((0, self.n), dtype=np.float32)
        count = 1 + (len(buf) - self.n) // self.hop
        frames = np.lib.stride_tricks.sliding_window_view(buf, self.n)[::self.hop][:count]
        self._buf = np.array(buf[count * self.hop:], dtype=np.float32)
        self.frames_out += count
        return frames

    def flush(self) -> np.ndarray:
        """A zero-padded last frame, only when the stream was too short for any frame."""
        if self.frames_out or not len(self._buf):
            return np.zeros((0, self.n), dtype=np.float32)
        frame = np.zeros((1, self.n), dtype=np.float32)
        frame[0, :len(self._buf)] = self._buf
        self.frames_out += 1
        return frame


def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    # Slaney: linear below 1 kHz, logarithmic above.
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((m - 15.0) * (math.log(6.4) / 27.0)),
                    m * (200.0 / 3))


def mel_filterbank(sr: int, n_fft: int, n_mels: int = N_MELS, fmin: float = 0.0,
                   fmax: float | None = None) -> np.ndarray:
    """Slaney-normalised triangular mel filters, shape (n_mels, n_fft // 2 + 1)."""
    fmax = fmax or sr / 2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    upper = (edges[2:, None] - freqs[None, :]) / np.diff(edges)[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class _Moments:
    """Running mean and standard deviation of vectors."""

    def __init__(self, size: int) -> None:
        self.n = 0
        self.s1 = np.zeros(size)
        self.s2 = np.zeros(size)

    def add(self, rows: np.ndarray) -> None:
        if len(rows):
            rows = rows.astype(np.float64)
            self.n += len(rows)
            self.s1 += rows.sum(axis=0)
            self.s2 += np.square(rows).sum(axis=0)

    def mean(self) -> np.ndarray:
        return self.s1 / max(1, self.n)

    def std(self) -> np.ndarray:
        m = self.mean()
        return np.sqrt(np.maximum(0.0, self.s2 / max(1, self.n) - m * m))


class _FramedAccumulator:
    """Streams samples through ``self._framer`` into ``self._process(frames)``."""

    _framer: Framer

    def push(self, x: np.ndarray) -> None:
        self._process(self._framer.push(x))

    def finish(self) -> None:
        self._process(self._framer.flush())

    def _process(self, frames: np.ndarray) -> None:
        raise NotImplementedError


class SpectralAccumulator(_FramedAccumulator):
    """Onset curve + timbre statistics over a 22050 Hz mono stream."""

    def __init__(self, sr: int = DSP_RATE) -> None:
        self.sr = sr
        self._framer = Framer(FRAME, HOP)
        self._window = _hann(FRAME)
        self._norm = 2.0 / float(self._window.sum())
        self._freqs = np.fft.rfftfreq(FRAME, 1.0 / sr).astype(np.float32)
        self._mel = mel_filterbank(sr, FRAME)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None   # last two spectra, magnitudes
        # SILENT_POWER (mean square) expressed as spectral power of a windowed frame
        self._silent = SILENT_POWER * FRAME * float(np.sum(self._window ** 2)) * self._norm ** 2 / 2
        self._odf: list[np.ndarray] = []
        self.mfcc = _Moments(N_MFCC)
        self.scalars = _Moments(4)                  # centroid, rolloff, flatness, zcr
        self.frames = 0
        self.active_frames = 0

    def _process(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        self.frames += len(frames)
        spec = scipy.fft.rfft(frames * self._window, axis=1)
        spec *= np.float32(self._norm)
        power = spec.real * spec.real + spec.imag * spec.imag
        mag = np.sqrt(power)
        self._onset(spec, mag)
        # Parseval: a frame's spectral power tells whether it is silent (cheaper than samples).
        active = power.sum(axis=1) > self._silent
        if not active.any():
            return
        if not active.all():
            power, mag, frames = power[active], mag[active], frames[active]
        self.active_frames += len(power)
        mel = power @ self._mel.T
        mel_db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        self.mfcc.add(scipy.fft.dct(mel_db, type=2, norm="ortho", axis=1)[:, :N_MFCC])
        total = np.maximum(mag.sum(axis=1), 1e-12)
        centroid = (mag @ self._freqs) / total
        cum = np.cumsum(power, axis=1)
        rolloff = self._freqs[np.argmax(cum >= 0.85 * cum[:, -1:], axis=1)]
        logp = np.log(np.maximum(power, 1e-12))
        flatness = np.exp(logp.mean(axis=1)) / np.maximum(power.mean(axis=1), 1e-12)
        # zero crossings on the first hop of each frame: frames overlap by half, so this
        # counts every sample once
        signs = np.signbit(frames[:, :HOP + 1])
        zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / float(HOP)
        self.scalars.add(np.stack([centroid, rolloff, flatness, zcr], axis=1))

    def _onset(self, spec: np.ndarray, mag: np.ndarray) -> None:
        # Complex-domain ODF (Bello 2004): distance between each bin and its prediction from the
        # two previous frames (same magnitude, linearly extrapolated phase).
        if self._prev is None:
            self._prev = (np.zeros((2, spec.shape[1]), dtype=spec.dtype),
                          np.zeros((2, spec.shape[1]), dtype=mag.dtype))
        full = np.concatenate([self._prev[0], spec])
        fmag = np.concatenate([self._prev[1], mag])
        # X1^2 conj(X2) / (|X1| |X2|) has magnitude |X1| and phase 2 phi1 - phi2, without a
        # complex division
        scale = 1.0 / np.maximum(fmag[1:-1] * fmag[:-2], np.float32(1e-20))
        prev = full[1:-1]
        diff = full[2:] - prev * prev * np.conj(full[:-2]) * scale
        self._odf.append(np.sqrt(diff.real * diff.real + diff.imag * diff.imag)
                         .sum(axis=1).astype(np.float32))
        self._prev = (full[-2:].copy(), fmag[-2:].copy())

    def onset_curve(self) -> np.ndarray:
        return np.concatenate(self._odf) if self._odf else np.zeros(0, dtype=np.float32)

    def summary(self) -> dict:
        centroid, rolloff, flatness, zcr = self.scalars.mean()
        return {"spectral_centroid": float(centroid), "spectral_rolloff": float(rolloff),
                "spectral_flatness": float(flatness), "zcr": float(zcr),
                "mfcc_mean": [float(v) for v in self.mfcc.mean()],
                "mfcc_std": [float(v) for v in self.mfcc.std()]}


class ChromaAccumulator(_FramedAccumulator):
    """HPCP-like pitch-class profile at 0.1-semitone resolution, folded to 12 bins at the end."""

    FINE = 10                        # bins per semitone before tuning correction

    def __init__(self, sr: int = DSP_RATE, fmin: float = 25.0, fmax: float = 3500.0) -> None:
        self.sr = sr
        self._framer = Framer(CHROMA_FRAME, CHROMA_FRAME)
        self._window = _hann(CHROMA_FRAME)
        self._lo = max(1, int(fmin * CHROMA_FRAME / sr))
        self._hi = min(CHROMA_FRAME // 2 - 1, int(fmax * CHROMA_FRAME / sr) + 1)
        self.profile = np.zeros(12 * self.FINE)
        self.frames = 0

    def _process(self, frames: np.ndarray) -> None:
        if not len(frames):
            return
        keep = np.einsum("ij,ij->i", frames, frames) / CHROMA_FRAME > SILENT_POWER
        frames = frames[keep]
        if not len(frames):
            return
        mag = np.abs(scipy.fft.rfft(frames * self._window, axis=1))
        db = 20.0 * np.log10(np.maximum(mag[:, self._lo - 1:self._hi + 2], 1e-10))
        left, mid, right = db[:, :-2], db[:, 1:-1], db[:, 2:]
        floor = db.max(axis=1, keepdims=True) - 60.0
        is_peak = (mid > left) & (mid >= right) & (mid > floor)
        f_idx, b_idx = np.nonzero(is_peak)
        if not len(f_idx):
            return
        a, b, c = left[f_idx, b_idx], mid[f_idx, b_idx], right[f_idx, b_idx]
        denom = a - 2 * b + c
        offset = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0)
        freq = (b_idx + self._lo + offset) * self.sr / CHROMA_FRAME
        amp_db = b - 0.25 * (a - c) * offset
        energy = 10.0 ** (amp_db / 10.0)
        midi = 69.0 + 12.0 * np.log2(np.maximum(freq, 1.0) / 440.0)
        fine = np.round(midi * self.FINE).astype(np.int64) % (12 * self.FINE)
        hist = np.bincount(f_idx * 12 * self.FINE + fine, weights=energy,
                           minlength=len(frames) * 12 * self.FINE).reshape(len(frames), -1)
        peak = hist.max(axis=1, keepdims=True)
        valid = peak[:, 0] > 0
        self.profile += (hist[valid] / peak[valid]).sum(axis=0)
        self.frames += int(valid.sum())

    def tuning_offset(self) -> float:
        """Detuning in fine bins (-5..5): circular mean of the profile folded on a semitone."""
        folded = self.profile.reshape(12, self.FINE).sum(axis=0)
        angle = np.angle(np.sum(folded * np.exp(2j * np.pi * np.arange(self.FINE) / self.FINE)))
        return float(angle / (2 * np.pi) * self.FINE)

    def chroma(self) -> np.ndarray:
        """12 pitch classes (C first), max-normalised; zeros when nothing tonal was heard."""
        if self.profile.sum() <= 0:
            return np.zeros(12)
        shifted = np.roll(self.profile, -int(round(self.tuning_offset())))
        half = self.FINE // 2
        # each semitone gathers the fine bins within half a semitone of its centre
        out = np.roll(shifted, half).reshape(12, self.FINE).sum(axis=1)
        return out / out.max()


# --- tempo -----------------------------------------------------------------------------------

def tempo_from_ticks(ticks: np.ndarray, tolerance: float = 5.0) -> tuple[float, float]:
    """RhythmExtractor2013's rule: histogram of beat-interval bpms (2-bpm bins), mean of those
    within ±5 bpm of the mode. Returns (bpm, share of intervals that agree) or (0, 0)."""
    ticks = np.asarray(ticks, dtype=np.float64)
    if len(ticks) < 3:
        return 0.0, 0.0
    intervals = np.diff(ticks)
    intervals = intervals[intervals > 0]
    if not len(intervals):
        return 0.0, 0.0
    bpms = 60.0 / intervals
    closest = float(np.argmax(np.bincount(np.round(bpms / 2).astype(np.int64))) * 2)
    agree = bpms[np.abs(bpms - closest) < tolerance]
    bpm = float(agree.mean()) if len(agree) else closest
    return bpm, len(agree) / len(bpms)


def onset_autocorrelation(odf: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of the onset curve after removing its 1 s moving average."""
    if len(odf) < 4:
        return np.zeros(1)
    x = odf.astype(np.float64)
    width = max(1, min(len(x), int(ODF_RATE)))
    trend = np.convolve(x, np.ones(width) / width, mode="same")
    x = np.maximum(0.0, x - trend)
    x -= x.mean()
    n = len(x)
    size = 1 << int(math.ceil(math.log2(2 * n)))
    spec = np.fft.rfft(x, size)
    ac = np.fft.irfft(spec * np.conj(spec), size)[:n]
    return ac / ac[0] if ac[0] > 0 else np.zeros(n)


def _peak_near(ac: np.ndarray, lag: float, tol: float) -> tuple[float, float]:
    lo, hi = int(math.floor(lag * (1 - tol))), int(math.ceil(lag * (1 + tol)))
    lo, hi = max(1, lo), min(len(ac) - 2, hi)
    if hi <= lo:
        return lag, 0.0
    i = lo + int(np.argmax(ac[lo:hi + 1]))
    a, b, c = ac[i - 1], ac[i], ac[i + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return i + float(np.clip(shift, -0.5, 0.5)), float(b)


def refine_tempo(ac: np.ndarray, bpm: float, max_bpm: float = 200.0,
                 double_ratio: float = 0.9) -> float:
    """Refine a beat tracker's bpm on the onset autocorrelation.

    Beat trackers place beats on the 43 Hz onset grid, so their bpm is quantised (170 → 172.3).
    The lag of the autocorrelation peak (and of its multiples) interpolated between frames gives
    sub-frame precision. If the half-period peak is as strong as the period peak the pulse is
    twice as fast (a click at 180 bpm tracked at 90).
    """
    if bpm <= 0 or len(ac) < 8:
        return bpm
    lag = 60.0 * ODF_RATE / bpm
    half_lag, half_val = _peak_near(ac, lag / 2, 0.05)
    _, full_val = _peak_near(ac, lag, 0.05)
    if bpm * 2 <= max_bpm and full_val > 0 and half_val >= double_ratio * full_val:
        lag = half_lag
    estimates, weights = [], []
    for k in range(1, 5):
        if k * lag >= len(ac) - 2:
            break
        peak_lag, value = _peak_near(ac, k * lag, 0.03)
        if value > 0:
            estimates.append(peak_lag / k)
            weights.append(value)
    if not estimates:
        return 60.0 * ODF_RATE / lag
    refined = float(np.average(estimates, weights=weights))
    return 60.0 * ODF_RATE / refined


def pulse_clarity(ac: np.ndarray, bpm: float) -> float:
    """Autocorrelation height at the beat period (0-1): how clearly the beat stands out."""
    if bpm <= 0 or len(ac) < 8:
        return 0.0
    return float(np.clip(_peak_near(ac, 60.0 * ODF_RATE / bpm, 0.05)[1], 0.0, 1.0))


def onset_rate(odf: np.ndarray) -> float:
    """Onsets per second: local maxima of the onset curve above median + 2 MAD."""
    if len(odf) < 3:
        return 0.0
    med = float(np.median(odf))
    mad = float(np.median(np.abs(odf - med))) or 1e-9
    mid = odf[1:-1]
    peaks = (mid > odf[:-2]) & (mid >= odf[2:]) & (mid > med + 2 * mad)
    return float(peaks.sum()) / (len(odf) / ODF_RATE)


# --- key --------------------------------------------------------------------------------------

# Temperley (Kostka-Payne) key profiles; tonic first.
_MAJOR = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057, 0.400])
_MINOR = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133, 0.330])


def key_from_chroma(chroma: np.ndarray) -> tuple[str, str, float] | None:
    """Best-correlating key profile: (key, "major"|"minor", strength 0-1), None if no tonality."""
    chroma = np.asarray(chroma, dtype=np.float64)
    if chroma.sum() <= 0 or np.ptp(chroma) == 0:
        return None
    best = (-2.0, 0, "major")
    for scale, profile in (("major", _MAJOR), ("minor", _MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(chroma, np.roll(profile, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, scale)
    return KEY_NAMES[best[1]], best[2], float(max(0.0, best[0]))

"""Essentia backend (default): Degara / multi-feature beats, Essentia's Key, and MusiCNN on
onnxruntime or on Essentia's bundled TensorFlow (analysis.runtime picks; analysis.musicnn
streams the patches, the same for both runtimes and for the librosa backend).

On Essentia's TensorFlow (``TfMusicnn``), MusiCNN runs as one `TensorflowPredict` per model with
both outputs (tags `model/Sigmoid` and the 200-d `model/dense/BiasAdd`) in one session run per
patch. TensorFlow runs single-threaded (one analysis per worker process, one worker per core):
set before Essentia loads, TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS/OMP_NUM_THREADS=1 cut
the CPU time per patch by about 15 %.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import Chunk, SourceInfo
from ..music import pitch_class
from . import dsp
from .base import PipelineAnalyzer
from .mel import MUSICNN_BANDS, MUSICNN_RATE
from .musicnn import MusicnnModel, MusicnnOutput, MusicnnState, MusicnnStream
from .presets import MUSICNN_PATCH_FRAMES, Preset

log = logging.getLogger(__name__)

BEAT_RATE = 44100                      # BeatTrackerMultiFeature only works at 44.1 kHz
BEAT_SEGMENT_S = 30.0
TEMPO_PIECE_S = 300.0
SINGLE_THREAD_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                     "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def load_essentia(single_thread: bool = True) -> Any:
    """Import Essentia quietly (and single-threaded TF); returns essentia.standard."""
    if single_thread:
        for key, value in SINGLE_THREAD_ENV.items():
            os.environ.setdefault(key, value)
    import essentia

    essentia.log.infoActive = False  # before essentia.standard: its import logs at info level
    essentia.log.warningActive = False
    import essentia.standard as es
    return es


class TfMusicnn:
    """One MusiCNN graph on Essentia's TensorFlow: both outputs from one session run per patch."""

    def __init__(self, info: Any) -> None:
        import essentia

        es = load_essentia()
        self.name = info.name
        self.labels = tuple(info.labels)
        self._input = info.input
        self._tags, self._emb = info.output_tags, info.output_embedding
        self._pool_cls = essentia.Pool
        self._predict = es.TensorflowPredict(graphFilename=str(info.path), inputs=[info.input],
                                             outputs=[info.output_tags, info.output_embedding])
        self.predict(np.zeros((1, MUSICNN_PATCH_FRAMES, MUSICNN_BANDS), dtype=np.float32))  # warm-up

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tags, embs = [], []
        for patch in patches:
            pool = self._pool_cls()
            pool.set(self._input, np.ascontiguousarray(patch, dtype=np.float32).reshape(
                1, 1, MUSICNN_PATCH_FRAMES, MUSICNN_BANDS))
            out = self._predict(pool)
            tags.append(np.asarray(out[self._tags], dtype=np.float64).reshape(-1))
            embs.append(np.asarray(out[self._emb], dtype=np.float64).reshape(-1))
        return np.stack(tags), np.stack(embs)


class _KeyHpcp:
    """Essentia's KeyExtractor, streamed: the same SpectralPeaks → SpectralWhitening → HPCP
    (4 harmonics) chain on 2048-sample frames at 22050 Hz (the time and frequency resolution of
    its 4096 frames at 44.1 kHz), HPCPs summed per file, Key (bgate) on the mean at the end.
    Only every other frame is used: the per-frame Python calls are most of its cost, and a key
    is a whole-file statistic (on 49 real tracks it agrees with KeyExtractor on 46)."""

    FRAME = 2048
    HOP = 4096

    def __init__(self, es: Any) -> None:
        sr, lo, hi = dsp.DSP_RATE, 25.0, 3500.0
        self._peaks = es.SpectralPeaks(orderBy="magnitude", magnitudeThreshold=1e-4,
                                       minFrequency=lo, maxFrequency=hi, maxPeaks=60,
                                       sampleRate=sr)
        self._whiten = es.SpectralWhitening(maxFrequency=hi, sampleRate=sr)
        self._hpcp = es.HPCP(bandPreset=False, harmonics=4, maxFrequency=hi, minFrequency=lo,
                             nonLinear=False, normalized="none", referenceFrequency=440.0,
                             sampleRate=sr, size=12, weightType="cosine", windowSize=1.0,
                             maxShifted=False)
        self._key = es.Key(usePolyphony=False, useThreeChords=False, numHarmonics=4, slope=0.6,
                           profileType="bgate", pcpSize=12)
        window = np.hanning(self.FRAME + 1)[:-1]
        self._window = (window * 2.0 / window.sum()).astype(np.float32)   # Essentia's scaling

    def new_state(self) -> tuple[dsp.Framer, np.ndarray]:
        return dsp.Framer(self.FRAME, self.HOP), np.zeros(12)

    def push(self, framer: dsp.Framer, total: np.ndarray, x: np.ndarray) -> None:
        frames = framer.push(x)
        if not len(frames):
            return
        import scipy.fft

        mags = np.abs(scipy.fft.rfft(frames * self._window, axis=1)).astype(np.float32)
        for mag in mags:
            freqs, amps = self._peaks(mag)
            if len(freqs):
                total += self._hpcp(freqs, self._whiten(mag, freqs, amps))

    def key(self, total: np.ndarray) -> tuple[str, str, float] | None:
        if total.max() <= 0:
            return None
        pcp = total / total.max()
        pcp[pcp < 0.2] = 0.0            # KeyExtractor's pcpThreshold
        key, scale, strength, _ = self._key(pcp.astype(np.float32))
        if not key or strength <= 0:
            return None
        return dsp.KEY_NAMES[pitch_class(key)], scale, float(strength)


@dataclass
class _FileState:
    key_framer: dsp.Framer
    hpcp: np.ndarray
    musicnn: MusicnnState | None = None
    beat_buffer: list[np.ndarray] = field(default_factory=list)
    beat_samples: int = 0
    intervals: list[np.ndarray] = field(default_factory=list)
    confidences: list[tuple[float, float]] = field(default_factory=list)


class EssentiaAnalyzer(PipelineAnalyzer):
    name = "essentia"

    def __init__(self, preset: Preset, models_dir: Path | str | None = None, *,
                 single_thread: bool = True,
                 musicnn: list[MusicnnModel] | None = None) -> None:
        """``musicnn``: the preset's loaded models (``factory.load_musicnn`` builds them; the
        factory is the only caller, so the backends never import it)."""
        super().__init__(preset)
        if preset.uses_ml and not musicnn:
            raise ValueError(f"preset {preset.name!r} needs its MusiCNN models (factory.load_musicnn)")
        es = load_essentia(single_thread)
        self._tempo_tap = es.TempoTapDegara(sampleRateODF=dsp.ODF_RATE, resample="x2")
        self._keyx = _KeyHpcp(es)
        self._beats = es.BeatTrackerMultiFeature() if preset.tempo_method == "multifeature" else None
        self._musicnn = MusicnnStream(musicnn, preset) if musicnn else None

    # hooks -------------------------------------------------------------------------------------
    def extra_rates(self) -> tuple[int, ...]:
        rates = []
        if self._musicnn:
            rates.append(MUSICNN_RATE)
        if self._beats is not None:
            rates.append(BEAT_RATE)
        return tuple(rates)

    def begin(self, info: SourceInfo) -> _FileState:
        state = _FileState(*self._keyx.new_state())
        if self._musicnn:
            state.musicnn = self._musicnn.begin()
        return state

    def on_chunk(self, state: _FileState, chunk: Chunk) -> float:
        self._keyx.push(state.key_framer, state.hpcp, chunk.mono[dsp.DSP_RATE])
        if self._beats is not None:
            self._beats_push(state, chunk.mono[BEAT_RATE], final=False)
        if state.musicnn is None:
            return 0.0
        return self._musicnn.push_chunk(state.musicnn, chunk)

    def tempo(self, state: _FileState, onset_curve: np.ndarray) -> tuple[float, float]:
        if self._beats is not None:
            self._beats_push(state, np.zeros(0, dtype=np.float32), final=True)
            if not state.intervals:
                return 0.0, 0.0
            intervals = np.concatenate(state.intervals)
            bpm, _ = dsp.tempo_from_ticks(np.concatenate([[0.0], np.cumsum(intervals)]))
            weights = sum(w for _, w in state.confidences) or 1.0
            confidence = sum(c * w for c, w in state.confidences) / weights / 5.32
            return bpm, confidence
        if len(onset_curve) < dsp.ODF_RATE * 2:       # under 2 s: no meaningful pulse
            return 0.0, 0.0
        # TempoTapDegara's memory grows with its input (+76 MB for an hour): track beats in
        # equal pieces of at most 5 minutes and pool their beat intervals.
        pieces = int(np.ceil(len(onset_curve) / (TEMPO_PIECE_S * dsp.ODF_RATE)))
        intervals = []
        for piece in np.array_split(onset_curve.astype(np.float32), pieces):
            self._tempo_tap.reset()
            ticks = np.asarray(self._tempo_tap(piece), dtype=np.float64)
            if len(ticks) > 1:
                intervals.append(np.diff(ticks))
        if not intervals:
            return 0.0, 0.0
        joined = np.concatenate(intervals)
        return dsp.tempo_from_ticks(np.concatenate([[0.0], np.cumsum(joined)]))

    def key(self, state: _FileState, chroma: np.ndarray) -> tuple[str, str, float] | None:
        return self._keyx.key(state.hpcp)

    def finish_ml(self, state: _FileState) -> MusicnnOutput | None:
        if state.musicnn is None:
            return None
        return self._musicnn.finish(state.musicnn)

    # multi-feature beats (accurate) ------------------------------------------------------------
    def _beats_push(self, state: _FileState, x: np.ndarray, final: bool) -> None:
        if len(x):
            state.beat_buffer.append(x)
            state.beat_samples += len(x)
        if state.beat_samples < BEAT_SEGMENT_S * BEAT_RATE and not final:
            return
        segment = np.concatenate(state.beat_buffer) if state.beat_buffer else np.zeros(0)
        state.beat_buffer, state.beat_samples = [], 0
        if len(segment) < 3 * BEAT_RATE:
            return
        self._beats.reset()          # also after a previous file that failed half-way
        ticks, confidence = self._beats(segment.astype(np.float32))
        if len(ticks) > 2:
            state.intervals.append(np.diff(np.asarray(ticks, dtype=np.float64)))
            state.confidences.append((float(confidence), len(segment) / BEAT_RATE))

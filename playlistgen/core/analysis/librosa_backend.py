"""librosa backend, for platforms without Essentia wheels (Linux aarch64: Raspberry Pi, ARM NAS).

Same pipeline and output fields as the Essentia backend (decode, loudness, MFCC, spectral and
chroma are shared numpy code), with librosa's tempogram + dynamic-programming beat tracker for
tempo and a Temperley key-profile correlation for the key. The ML presets run MusiCNN on
onnxruntime through the same streaming code and the same numpy mel input as the Essentia
backend (analysis.musicnn), so tags and embeddings match the Essentia backend's on the same
audio; nothing here imports Essentia.

The tempogram is averaged over 3-minute pieces of the onset curve, so an hour-long file does
not build an hour-long tempogram.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.decode import Chunk, SourceInfo
from . import dsp
from .base import PipelineAnalyzer
from .mel import MUSICNN_RATE
from .musicnn import MusicnnModel, MusicnnOutput, MusicnnState, MusicnnStream
from .presets import Preset

log = logging.getLogger(__name__)

TEMPOGRAM_PIECE = int(180 * dsp.ODF_RATE)


class LibrosaAnalyzer(PipelineAnalyzer):
    name = "librosa"

    def __init__(self, preset: Preset, models_dir: Path | str | None = None, *,
                 musicnn: list[MusicnnModel] | None = None) -> None:
        """``musicnn``: the preset's models loaded on onnxruntime (``factory.load_musicnn``)."""
        super().__init__(preset)
        if preset.uses_ml and not musicnn:
            raise ValueError(f"preset {preset.name!r} needs its MusiCNN models (factory.load_musicnn)")
        import librosa  # heavy (numba): only inside the worker

        self._librosa = librosa
        self._musicnn = MusicnnStream(musicnn, preset) if musicnn else None

    def extra_rates(self) -> tuple[int, ...]:
        return (MUSICNN_RATE,) if self._musicnn else ()

    def begin(self, info: SourceInfo) -> MusicnnState | None:
        return self._musicnn.begin() if self._musicnn else None

    def on_chunk(self, state: MusicnnState | None, chunk: Chunk) -> float:
        return self._musicnn.push_chunk(state, chunk) if state is not None else 0.0

    def finish_ml(self, state: MusicnnState | None) -> MusicnnOutput | None:
        return self._musicnn.finish(state) if state is not None else None

    def tempo(self, state: Any, onset_curve: np.ndarray) -> tuple[float, float]:
        if len(onset_curve) < dsp.ODF_RATE * 2:
            return 0.0, 0.0
        librosa = self._librosa
        env = onset_curve.astype(np.float64)
        env = env / (env.max() or 1.0)
        total, weight = None, 0
        for start in range(0, len(env), TEMPOGRAM_PIECE):
            piece = env[start:start + TEMPOGRAM_PIECE]
            if len(piece) < dsp.ODF_RATE * 2:
                continue
            tg = librosa.feature.tempogram(onset_envelope=piece, sr=dsp.DSP_RATE,
                                           hop_length=dsp.HOP).mean(axis=1)
            total = tg * len(piece) if total is None else total + tg * len(piece)
            weight += len(piece)
        if total is None:
            return 0.0, 0.0
        bpm = float(librosa.feature.tempo(tg=(total / weight)[:, None], sr=dsp.DSP_RATE,
                                          hop_length=dsp.HOP)[0])
        _, beats = librosa.beat.beat_track(onset_envelope=env, sr=dsp.DSP_RATE,
                                           hop_length=dsp.HOP, bpm=bpm, units="time")
        from_beats, agreement = dsp.tempo_from_ticks(np.asarray(beats))
        if from_beats > 0 and abs(from_beats - bpm) / bpm < 0.08:
            return from_beats, agreement
        return bpm, agreement

    def key(self, state: Any, chroma: np.ndarray) -> tuple[str, str, float] | None:
        return dsp.key_from_chroma(chroma)

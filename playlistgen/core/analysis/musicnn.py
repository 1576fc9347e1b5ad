"""MusiCNN over a streamed file, independent of the model runtime (ONNX Runtime or Essentia's
TensorFlow) and of the DSP backend (Essentia or librosa).

16 kHz audio is pushed chunk by chunk; its log-mel frames (analysis.mel) are cut into 187-frame
(3 s) patches as they arrive, so memory does not depend on the file length. The preset decides
which patches run: balanced takes non-overlapping patches and analyses every third one (3 s of
every 9 s), accurate half-overlapping ones (hop 93 frames), all of them. The patches cut from one
chunk go to each model as one batch; tags and embeddings are averaged over the analysed patches.
The embedding is always the first model's (MSD), so balanced and accurate embeddings compare.
A file shorter than one patch repeats its frames to fill one (Essentia's 'repeat' mode).

Each analysed patch's embeddings (MSD, and MSD‖MTT where the preset runs MTT) are kept too, for
the spread the library's "sounds like" projection is fitted from (core/similarity/lda.spread_of):
at most MAX_KEPT_PATCHES of them — past that every other kept patch is dropped and only every
second new one kept, a uniform sample in bounded memory (4096 × 400 float32 = 6.5 MB).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..audio.decode import Chunk
from ..similarity.lda import spread_of
from ..storage.records import SPREAD_ROWS, half_values
from . import dsp
from .mel import MUSICNN_BANDS, MUSICNN_RATE, MusicnnMel
from .presets import MUSICNN_PATCH_FRAMES, Preset

MAX_KEPT_PATCHES = 4096


@dataclass
class MusicnnOutput:
    """What MusiCNN gives a file: the mean MSD embedding, the tags per source, the spread of its
    patch embeddings ([rows][dims] rows of float16 values, records.half_values), the number of
    patches analysed and the mean MTT embedding (None unless the preset runs MTT)."""

    embedding: list[float]
    tags: dict[str, dict[str, float]]
    spread: list[list[float]]
    patches: int
    mtt_embedding: list[float] | None = None


class MusicnnModel(Protocol):
    """One loaded MusiCNN graph."""

    name: str
    labels: tuple[str, ...]

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """patches [n, 187, 96] float32 → (tags [n, labels], embeddings [n, 200]), float64."""
        ...


@dataclass
class MusicnnState:
    framer: dsp.Framer
    mel: list[np.ndarray] = field(default_factory=list)      # pending mel frames
    pending: int = 0
    patch_index: int = 0
    analysed: int = 0
    tag_sums: dict[str, np.ndarray] = field(default_factory=dict)
    emb_sum: np.ndarray | None = None
    mtt_sum: np.ndarray | None = None
    kept: list[np.ndarray] = field(default_factory=list)    # sampled patch vectors [n, dims]
    kept_count: int = 0
    keep_every: int = 1                                      # keep every n-th patch (doubles)
    last_frames: np.ndarray | None = None                    # for clips shorter than a patch
    frames_seen: int = 0                                     # mel frames pushed so far


class MusicnnStream:
    """Built once per analyzer (holds the loaded models); one MusicnnState per file."""

    def __init__(self, models: Sequence[MusicnnModel], preset: Preset) -> None:
        if not models:
            raise ValueError("MusicnnStream needs at least one model")
        self.models = list(models)
        # the "sounds like" vector of a patch: MSD, then MTT when the preset runs it
        self._mtt = next((i for i, m in enumerate(self.models) if m.name.startswith("mtt")), None)
        self.hop = preset.patch_hop
        self.stride = max(1, preset.patch_stride)
        self._mel = MusicnnMel()

    def begin(self) -> MusicnnState:
        return MusicnnState(self._mel.framer())

    def push_chunk(self, state: MusicnnState, chunk: Chunk) -> float:
        """PipelineAnalyzer.on_chunk's ML part: push the chunk's 16 kHz signal; returns the
        seconds it took (they count as ML time)."""
        t0 = time.perf_counter()
        self.push(state, chunk.mono[MUSICNN_RATE])
        return time.perf_counter() - t0

    def push(self, state: MusicnnState, x: np.ndarray) -> None:
        """Add 16 kHz mono samples; runs the models on every patch that is complete."""
        mel = self._frames_to_mel(state, state.framer.push(x))
        if len(mel):
            state.mel.append(mel)
            state.pending += len(mel)
        if state.pending >= MUSICNN_PATCH_FRAMES:
            self._cut(state, final=False)

    def finish(self, state: MusicnnState) -> MusicnnOutput | None:
        """The file's :class:`MusicnnOutput`, or None for an empty file."""
        state.mel.append(self._frames_to_mel(state, state.framer.flush()))
        self._cut(state, final=True)
        if state.analysed == 0:
            return None
        tags = {}
        for model in self.models:
            probs = state.tag_sums[model.name] / state.analysed
            tags[model.name.split("_")[0]] = {label: round(float(p), 4)
                                              for label, p in zip(model.labels, probs, strict=True)}
        kept = np.concatenate(state.kept)
        spread = spread_of(kept, SPREAD_ROWS[kept.shape[1]])
        mtt = None if state.mtt_sum is None else [round(float(v), 5) for v in state.mtt_sum / state.analysed]
        return MusicnnOutput(embedding=list(state.emb_sum / state.analysed), tags=tags,
                             spread=half_values(spread), patches=state.analysed, mtt_embedding=mtt)

    def _frames_to_mel(self, state: MusicnnState, frames: np.ndarray) -> np.ndarray:
        """Mel rows for the frames; with a patch stride (balanced), only the frames of patches
        that will run are computed — the others stay zero and are never used."""
        first = state.frames_seen
        state.frames_seen += len(frames)
        if self.stride == 1 or self.hop < MUSICNN_PATCH_FRAMES or not len(frames):
            return self._mel(frames)
        index = np.arange(first, first + len(frames))
        used = ((index // self.hop) % self.stride == 0) & ((index % self.hop) < MUSICNN_PATCH_FRAMES)
        out = np.zeros((len(frames), MUSICNN_BANDS), dtype=np.float32)
        if used.any():
            out[used] = self._mel(frames[used])
        return out

    def _cut(self, state: MusicnnState, final: bool) -> None:
        frames = (np.concatenate(state.mel) if state.mel
                  else np.zeros((0, MUSICNN_BANDS), np.float32))
        start, batch = 0, []
        while start + MUSICNN_PATCH_FRAMES <= len(frames):
            if state.patch_index % self.stride == 0:
                batch.append(frames[start:start + MUSICNN_PATCH_FRAMES])
            state.patch_index += 1
            start += self.hop
        rest = frames[start:]
        if len(rest):
            state.last_frames = rest
        state.mel, state.pending = ([rest] if len(rest) else []), len(rest)
        if (final and not batch and state.analysed == 0 and state.last_frames is not None
                and len(state.last_frames)):
            reps = int(np.ceil(MUSICNN_PATCH_FRAMES / len(state.last_frames)))
            batch.append(np.tile(state.last_frames, (reps, 1))[:MUSICNN_PATCH_FRAMES])
        if batch:
            self._run(state, np.ascontiguousarray(np.stack(batch), dtype=np.float32))

    def _run(self, state: MusicnnState, patches: np.ndarray) -> None:
        embeddings = []
        for i, model in enumerate(self.models):
            tags, emb = model.predict(patches)
            state.tag_sums[model.name] = state.tag_sums.get(model.name, 0) + tags.sum(axis=0)
            if i == 0:
                total = emb.sum(axis=0)
                state.emb_sum = total if state.emb_sum is None else state.emb_sum + total
                embeddings.insert(0, emb)
            elif i == self._mtt:
                total = emb.sum(axis=0)
                state.mtt_sum = total if state.mtt_sum is None else state.mtt_sum + total
                embeddings.append(emb)
        first = state.analysed
        state.analysed += len(patches)
        self._keep(state, np.hstack(embeddings).astype(np.float32), first)

    def _keep(self, state: MusicnnState, vectors: np.ndarray, first: int) -> None:
        """Keep the patches whose number is a multiple of ``keep_every``; halve the sample when
        it outgrows MAX_KEPT_PATCHES."""
        index = np.arange(first, first + len(vectors))
        chosen = vectors[index % state.keep_every == 0]
        if len(chosen):
            state.kept.append(chosen)
            state.kept_count += len(chosen)
        while state.kept_count > MAX_KEPT_PATCHES:
            state.keep_every *= 2
            every = np.concatenate(state.kept)
            # the kept patches were numbers 0, k, 2k...: keep those that are multiples of 2k
            every = every[::2]
            state.kept, state.kept_count = [every], len(every)

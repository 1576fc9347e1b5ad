"""The analysis of one file, typed: what an analyzer returns, a worker ships back (pickled from
local worker processes; as checked JSON from Dask workers, which the daemon never unpickles:
``execution/dask/payload.py``), the job queue stores, and metrics, the scheduler and the tag
writer read. :meth:`AnalysisResult.to_dict` is the JSON of `playlistgen analyze --json` (and
:meth:`~AnalysisResult.from_dict` reads it back, as `playlistgen import` does with export records).

The field names are the analysis contract declared once in ``core/storage/records.py``
(DESIGN §6); ``tests/test_result.py`` checks that this class, the analyzer's field lists and
the stored columns agree. Units and ranges:

    duration_s          decoded length, seconds
    bpm                 0.1 bpm precision; None when undetermined (see flags)
    bpm_confidence      0-1: share of beat intervals agreeing with bpm (Degara), or the
                        multi-feature tracker's confidence / 5.32 (accurate)
    key, scale          C C# D Eb E F F# G Ab A Bb B, major|minor; None without tonal content
    key_strength        0-1 (Essentia Key strength, or profile correlation for librosa)
    camelot             "8A" style, None with the key
    loudness_lufs       EBU R128 integrated; loudness_range LU (Tech 3342);
    dynamic_complexity  LU, mean deviation of 400 ms loudness from the integrated value
    mixramp_start/_end  MPD fade hints "dB seconds;..." from the 400 ms loudness (analysis.mixramp)
    danceability, energy  0-1 heuristics (base.danceability_estimate / energy_estimate)
    spectral_*          centroid and 85 % roll-off in Hz of the 22050 Hz signal (≤ 11025),
                        flatness 0-1; zcr crossings per sample
    mfcc_mean/std[13]   40 mel bands, dB, DCT-II; chroma[12] C first, max 1
    embedding[200]      MSD MusiCNN penultimate layer, mean over analysed patches (ML presets);
                        Python floats rounded to 5 digits, stored as float32
    embedding_spread    [rows][dims] the spread of the analysed patches' embeddings around their
                        mean (core/similarity/lda.spread_of: spread.T @ spread = their covariance,
                        rank ≤ rows): dims 200 (MSD, 12 rows) or 400 (MSD‖MTT, 6 rows, when the
                        preset runs MTT); float16 values; [] for a one-patch file (ML presets)
    embedding_patches   how many patches the embedding averaged (ML presets)
    embedding_mtt[200]  MTT MusiCNN embedding mean (presets that run MTT: accurate)
    tags                {"msd": {label: p}, "mtt": {...} (accurate)}; valence, acousticness,
                        instrumentalness 0-1 from tags (None without ML)
    analyzer_version    "<backend>-<ANALYZER_VERSION>"; preset; metadata {records.METADATA}

Extras: ``timings`` (:class:`StageTimings`) wall seconds per stage; ``cpu_s`` process CPU seconds
of the call (all threads of the process, so run one analysis per process to read it as the
file's cost); ``flags`` why a value is null (``tempo_undetermined``: under 2 s or no pulse;
``no_tonal_content``: no key); ``source`` {codec, sample_rate, channels, decoder};
``audio_fingerprint`` (core.audio.fingerprint: the coded audio without tags, so a retagged file
keeps its analysis). ``worker`` (:class:`WorkerStats`) is added by the executor that ran it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class StageTimings:
    """Wall seconds of each analysis stage of one file."""

    decode_s: float | None = None
    dsp_s: float | None = None
    ml_s: float | None = None
    total_s: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {"decode_s": self.decode_s, "dsp_s": self.dsp_s, "ml_s": self.ml_s, "total_s": self.total_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageTimings:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass
class WorkerStats:
    """Where and at what cost a worker analysed the file; ``host`` and ``address`` are set by
    the Dask executor (``address`` for remote workers only)."""

    pid: int | None = None
    rss_mb: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    host: str | None = None
    address: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pid": self.pid, "rss_mb": self.rss_mb, "wall_s": self.wall_s, "cpu_s": self.cpu_s}
        out.update({k: v for k, v in (("host", self.host), ("address", self.address)) if v is not None})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerStats:
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})


@dataclass(kw_only=True)
class AnalysisResult:
    """One file's analysis; the field order is the key order of :meth:`to_dict`."""

    duration_s: float | None = None
    bpm: float | None = None
    bpm_confidence: float | None = None
    key: str | None = None
    scale: str | None = None
    key_strength: float | None = None
    camelot: str | None = None
    loudness_lufs: float | None = None
    loudness_range: float | None = None
    dynamic_complexity: float | None = None
    mixramp_start: str | None = None
    mixramp_end: str | None = None
    danceability: float | None = None
    energy: float | None = None
    spectral_centroid: float | None = None
    spectral_rolloff: float | None = None
    spectral_flatness: float | None = None
    zcr: float | None = None
    mfcc_mean: list[float] | None = None
    mfcc_std: list[float] | None = None
    chroma: list[float] | None = None
    embedding: list[float] | None = None
    tags: dict[str, dict[str, float]] | None = None
    valence: float | None = None
    acousticness: float | None = None
    instrumentalness: float | None = None
    embedding_spread: list[list[float]] | None = None
    embedding_patches: int | None = None
    embedding_mtt: list[float] | None = None
    analyzer_version: str | None = None
    preset: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    timings: StageTimings | None = None
    cpu_s: float | None = None
    flags: list[str] = field(default_factory=list)
    source: dict[str, Any] | None = None
    audio_fingerprint: str | None = None
    worker: WorkerStats | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values, in field order (``worker`` only when set)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "worker"}
        if self.timings is not None:
            out["timings"] = self.timings.to_dict()
        if self.worker is not None:
            out["worker"] = self.worker.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnalysisResult:
        """A result from :meth:`to_dict`'s JSON, an export record or a partial dict: unknown keys
        (an export's ``fingerprint``, ``path``) are ignored, missing ones keep their defaults."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        if isinstance(values.get("timings"), Mapping):
            values["timings"] = StageTimings.from_dict(values["timings"])
        if isinstance(values.get("worker"), Mapping):
            values["worker"] = WorkerStats.from_dict(values["worker"])
        return cls(**values)

    @property
    def wall_s(self) -> float | None:
        """The file's wall time: as the worker measured it, else the analyzer's own total."""
        if self.worker is not None and self.worker.wall_s:
            return self.worker.wall_s
        return self.timings.total_s if self.timings is not None else None

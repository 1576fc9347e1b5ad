"""The analyzer protocol, the output contract (DESIGN.md §6) and the shared analysis pipeline.

An analyzer is built once per worker process (models load in the constructor) and then called
for many files: ``analyze(path) -> AnalysisResult``. It is not thread-safe (Essentia algorithms
are not): one analyzer per process or thread.

The pipeline, common to both backends (`PipelineAnalyzer`):

    decode once (core.audio, streamed chunks) ─┬─ 22050 Hz mono → onset curve, MFCC, spectral,
                                               │                 chroma (analysis.dsp)
                                               ├─ native channels → EBU R128 (analysis.loudness)
                                               └─ backend rates (16 kHz MusiCNN, 44.1 kHz beats)
    then the backend turns the onset curve into bpm, the chroma into a key, the patches into tags.

The result is an :class:`~.result.AnalysisResult` (fields, units and ranges documented there):
RESULT_FIELDS (DESIGN.md §6, derived from the stored fields in ``core/storage/records.py``) plus
EXTRA_FIELDS. The audio fingerprint is computed here because the file was just read and is in
the page cache. A result never holds NaN or infinity (ensure_finite); silence raises AnalysisError.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ...errors import AnalysisError
from ..audio.decode import Chunk, SourceInfo, open_audio
from ..audio.fingerprint import audio_fingerprint_or_none
from ..music import camelot
from ..storage.records import FEATURES, METADATA, ML_FEATURES
from ..threads import single_threaded_blas
from . import dsp
from .loudness import LoudnessMeter
from .mel import MUSICNN_RATE
from .metadata import read_metadata
from .musicnn import MusicnnOutput
from .presets import Preset
from .result import AnalysisResult, StageTimings

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _one_line_errors(path: str, doing: str) -> Iterator[None]:
    """Whatever fails while ``doing`` a file ends as one AnalysisError naming it: its own errors
    keep their message, running out of memory says so, anything else (a bug, a decoder surprise)
    is logged with its traceback and reported as an internal error."""
    try:
        yield
    except AnalysisError as exc:
        if exc.path is None:
            exc.path = path
        raise
    except MemoryError:
        raise AnalysisError("out of memory while analysing", path=path) from None
    except Exception as exc:
        log.exception("unexpected failure %s %s", doing, path)
        raise AnalysisError(f"internal error: {type(exc).__name__}: {exc}"[:200], path=path) from exc

# Bump when any output value changes meaning or computation (stored with each result).
from .version import ANALYZER_VERSION  # noqa: E402  (re-exported)

ML_FIELDS = ML_FEATURES
DSP_FIELDS = tuple(name for name in FEATURES if name not in ML_FEATURES)
RESULT_FIELDS = DSP_FIELDS + ML_FIELDS + ("analyzer_version", "preset", "metadata")
EXTRA_FIELDS = ("timings", "cpu_s", "flags", "source", "audio_fingerprint")
METADATA_FIELDS = METADATA


@runtime_checkable
class Analyzer(Protocol):
    name: str
    version: str

    def analyze(self, path: str) -> AnalysisResult:
        """Analyse one file; raises AnalysisError (with a one-line reason) when it cannot."""
        ...


# --- guards and derived values --------------------------------------------------------------------

def ensure_finite(value: Any, where: str = "result") -> None:
    """Raise AnalysisError if any number inside `value` is NaN or infinite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AnalysisError(f"analysis produced a non-finite value in {where}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            ensure_finite(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            ensure_finite(v, f"{where}[{i}]")


def _round(values: Iterable[float], digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _ratio(yes: float, no: float) -> float:
    return float(yes / (yes + no)) if yes + no > 1e-9 else 0.5


def mood_estimates(tags: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """valence / acousticness / instrumentalness (0-1) from tag probabilities.

    Each is a ratio of the mean probability of "for" tags to "for" + "against" tags, so the
    small absolute sigmoid values of MusiCNN do not matter. MTT tags (accurate) join in.
    """
    msd, mtt = tags.get("msd", {}), tags.get("mtt", {})

    def mean(names: Iterable[str], source: Mapping[str, float]) -> float:
        vals = [source[n] for n in names if n in source]
        return float(np.mean(vals)) if vals else 0.0

    valence = _ratio(mean(("happy", "party", "catchy", "dance", "funk", "sexy"), msd)
                     + mean(("happy", "upbeat", "dance", "pop"), mtt),
                     mean(("sad", "Mellow", "ambient", "beautiful", "chill"), msd)
                     + mean(("sad", "slow", "ambient", "dark", "soft", "quiet"), mtt))
    acoustic = _ratio(mean(("acoustic", "folk", "jazz", "guitar", "country", "easy listening",
                            "oldies", "blues"), msd)
                      + mean(("acoustic", "classical", "guitar", "piano", "strings", "violin",
                              "harpsichord", "cello", "flute"), mtt),
                      mean(("electronic", "electronica", "electro", "House", "dance",
                            "Hip-Hop", "metal"), msd)
                      + mean(("electronic", "techno", "synth", "beat", "beats", "dance",
                              "rock", "metal"), mtt))
    instrumental = _ratio(mean(("instrumental", "ambient", "experimental"), msd)
                          + mean(("no vocal", "no vocals", "instrumental", "no voice"), mtt),
                          mean(("female vocalists", "male vocalists", "female vocalist",
                                "Hip-Hop", "rnb", "soul"), msd)
                          + mean(("vocal", "vocals", "voice", "singing", "male vocal",
                                  "female vocal", "male voice", "female voice"), mtt))
    return {"valence": round(valence, 4), "acousticness": round(acoustic, 4),
            "instrumentalness": round(instrumental, 4)}


def energy_estimate(lufs: float, centroid: float, onsets_per_s: float) -> float:
    """0-1: mostly loudness (-35..-5 LUFS), plus brightness and onset density."""
    loud = np.clip((lufs + 35.0) / 30.0, 0.0, 1.0)
    bright = np.clip((centroid - 500.0) / 3000.0, 0.0, 1.0)
    busy = np.clip(onsets_per_s / 6.0, 0.0, 1.0)
    return round(float(0.55 * loud + 0.2 * bright + 0.25 * busy), 4)


def danceability_estimate(clarity: float, bpm: float | None) -> float:
    """0-1: how clearly the beat stands out, weighted towards dance tempi (about 90-140 bpm)."""
    if not bpm:
        return 0.0
    preference = math.exp(-0.5 * (math.log2(bpm / 118.0) / 0.55) ** 2)
    return round(float(np.clip(clarity / 0.6, 0.0, 1.0) * (0.4 + 0.6 * preference)), 4)


# --- the pipeline ---------------------------------------------------------------------------------

class PipelineAnalyzer:
    """Decode once, run the shared DSP, delegate tempo/key/ML to the backend hooks below."""

    name = "base"
    version = ANALYZER_VERSION

    def __init__(self, preset: Preset) -> None:
        self.preset = preset
        single_threaded_blas()

    # Backend hooks ---------------------------------------------------------------------------
    def extra_rates(self) -> tuple[int, ...]:
        """Mono sample rates the backend needs besides dsp.DSP_RATE."""
        return ()

    def begin(self, info: SourceInfo) -> Any:
        """Per-file state for the backend."""
        return None

    def on_chunk(self, state: Any, chunk: Chunk) -> float:
        """Backend work on one chunk (key frames, beats, model patches); returns the seconds
        of it that were ML (the rest counts as DSP)."""
        return 0.0

    def tempo(self, state: Any, onset_curve: np.ndarray) -> tuple[float, float]:
        """(bpm, confidence 0-1), or (0, 0) when there is no pulse."""
        raise NotImplementedError

    def key(self, state: Any, chroma: np.ndarray) -> tuple[str, str, float] | None:
        """(key, scale, strength 0-1) or None when there is no tonal content."""
        raise NotImplementedError

    def finish_ml(self, state: Any) -> MusicnnOutput | None:
        """The MusiCNN output, or None for DSP-only presets."""
        return None

    # The shared part -------------------------------------------------------------------------
    def analyze(self, path: str) -> AnalysisResult:
        path = str(path)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with _one_line_errors(path, "analysing"):
            return self._analyze(path, cpu0, wall0)

    def analyze_spread(self, path: str) -> AnalysisResult:
        """Only what an older analysis lacks (issue 22, the background upgrade): decode once at
        MusiCNN's 16 kHz and run the models, no DSP. The result holds the embedding (to compare),
        the spread, the patch count and the MTT embedding; raises AnalysisError for DSP-only
        presets or when the file cannot be decoded."""
        path = str(path)
        stream = getattr(self, "_musicnn", None)
        if stream is None:
            raise AnalysisError(f"preset '{self.preset.name}' runs no model: it has no spread to add", path=path)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with _one_line_errors(path, "upgrading"):
            state = stream.begin()
            with open_audio(path, (MUSICNN_RATE,)) as audio:
                for chunk in audio:
                    stream.push_chunk(state, chunk)
                duration = audio.duration_s
            ml = stream.finish(state)
        if ml is None:
            raise AnalysisError("no audio for the model (shorter than one frame)", path=path)
        wall = round(time.perf_counter() - wall0, 4)
        result = AnalysisResult(duration_s=round(duration, 3), embedding=_round(ml.embedding, 5),
                                embedding_spread=ml.spread, embedding_patches=ml.patches,
                                embedding_mtt=ml.mtt_embedding, analyzer_version=f"{self.name}-{self.version}",
                                preset=self.preset.name, timings=StageTimings(ml_s=wall, total_s=wall),
                                cpu_s=round(time.process_time() - cpu0, 4))
        ensure_finite(result.to_dict())
        return result

    def _analyze(self, path: str, cpu0: float, wall0: float) -> AnalysisResult:
        metadata, _tag_duration = read_metadata(path)
        rates = (dsp.DSP_RATE, *self.extra_rates())
        spectral, chroma = dsp.SpectralAccumulator(), dsp.ChromaAccumulator()
        t_decode = t_dsp = t_ml = 0.0
        with open_audio(path, rates, keep_native=True) as audio:
            meter = LoudnessMeter(audio.info.sample_rate, audio.info.channels,
                                  audio.info.mixed_from)
            state = self.begin(audio.info)
            chunks = iter(audio)
            while True:
                t0 = time.perf_counter()
                chunk = next(chunks, None)
                t1 = time.perf_counter()
                t_decode += t1 - t0
                if chunk is None:
                    break
                x = chunk.mono[dsp.DSP_RATE]
                spectral.push(x)
                chroma.push(x)
                if chunk.native is not None:
                    meter.push(chunk.native)
                ml = self.on_chunk(state, chunk)
                t_ml += ml
                t_dsp += time.perf_counter() - t1 - ml
            info, duration = audio.info, audio.duration_s

        t0 = time.perf_counter()
        spectral.finish()
        chroma.finish()
        loud = meter.result()
        if loud.integrated is None:
            raise AnalysisError("silent: no audio above -70 LUFS (digital silence or near it)")
        flags: list[str] = []
        odf = spectral.onset_curve()
        bpm, bpm_conf = self.tempo(state, odf)
        ac = dsp.onset_autocorrelation(odf)
        if bpm > 0:
            bpm = dsp.refine_tempo(ac, bpm)
        else:
            flags.append("tempo_undetermined")
        chroma_vec = chroma.chroma()
        key = self.key(state, chroma_vec) if chroma_vec.any() else None
        if key is None:
            flags.append("no_tonal_content")
        timbre = spectral.summary()
        t1 = time.perf_counter()
        ml = self.finish_ml(state)
        tags = ml.tags if ml is not None else None
        t_ml += time.perf_counter() - t1
        t_dsp += t1 - t0

        moods = mood_estimates(tags) if tags else {}
        result = AnalysisResult(
            duration_s=round(duration, 3),
            # 0.1 bpm: finer digits differ between codecs of the same audio and mean nothing
            bpm=round(bpm, 1) if bpm > 0 else None,
            bpm_confidence=round(float(np.clip(bpm_conf, 0, 1)), 4) if bpm > 0 else 0.0,
            key=key[0] if key else None,
            scale=key[1] if key else None,
            key_strength=round(key[2], 4) if key else 0.0,
            camelot=camelot(key[0], key[1]) if key else None,
            loudness_lufs=round(loud.integrated, 2),
            loudness_range=round(loud.loudness_range, 2),
            dynamic_complexity=round(loud.dynamic_complexity, 3),
            mixramp_start=loud.mixramp_start,
            mixramp_end=loud.mixramp_end,
            danceability=danceability_estimate(dsp.pulse_clarity(ac, bpm), bpm),
            energy=energy_estimate(loud.integrated, timbre["spectral_centroid"], dsp.onset_rate(odf)),
            spectral_centroid=round(timbre["spectral_centroid"], 2),
            spectral_rolloff=round(timbre["spectral_rolloff"], 2),
            spectral_flatness=round(timbre["spectral_flatness"], 5),
            zcr=round(timbre["zcr"], 5),
            mfcc_mean=_round(timbre["mfcc_mean"], 4),
            mfcc_std=_round(timbre["mfcc_std"], 4),
            chroma=_round(chroma_vec, 4),
            embedding=_round(ml.embedding, 5) if ml is not None else None,
            tags=tags,
            valence=moods.get("valence"),
            acousticness=moods.get("acousticness"),
            instrumentalness=moods.get("instrumentalness"),
            embedding_spread=ml.spread if ml is not None else None,
            embedding_patches=ml.patches if ml is not None else None,
            embedding_mtt=ml.mtt_embedding if ml is not None else None,
            analyzer_version=f"{self.name}-{self.version}",
            preset=self.preset.name,
            metadata=metadata,
            timings=StageTimings(decode_s=round(t_decode, 4), dsp_s=round(t_dsp, 4), ml_s=round(t_ml, 4),
                                 total_s=round(time.perf_counter() - wall0, 4)),
            cpu_s=round(time.process_time() - cpu0, 4),
            flags=flags,
            source={"codec": info.codec, "sample_rate": info.sample_rate,
                    "channels": info.channels, "decoder": info.decoder},
            audio_fingerprint=audio_fingerprint_or_none(path),
        )
        ensure_finite(result.to_dict())
        return result

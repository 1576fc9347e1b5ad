"""Analyzer wiring in one place: which backend and ML runtime run, the version stored with each
result, the model check at start-up, the spec workers build their analyzer from — and building
the analyzer itself: `create_analyzer("auto", "balanced", Path("models"))`.

The settings-level helpers (``analyzer_version``, ``check_models``, ``analyzer_spec``...) import
nothing heavy: the serve process calls them without loading Essentia, TensorFlow or librosa.

Build an analyzer once per worker process (it loads the models) and reuse it for many files.
"auto" picks Essentia when it is installed, librosa otherwise; ``ml_runtime`` picks the MusiCNN
runtime (analysis.runtime: onnx, essentia or auto). Both backends run the ML presets: Essentia
on either runtime, librosa on onnxruntime. Nothing heavy is imported until this function runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from ..optional import essentia_available
from .presets import Preset, get_preset
from .runtime import resolve_ml_runtime

if TYPE_CHECKING:  # the analysis stack itself is imported only when an analyzer is built
    from .base import Analyzer
    from .musicnn import MusicnnModel

log = logging.getLogger(__name__)

BACKENDS = ("auto", "essentia", "librosa")


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown analysis backend '{backend}'",
                          hint="choose auto, essentia or librosa")
    if backend == "auto":
        return "essentia" if essentia_available() else "librosa"
    if backend == "essentia" and not essentia_available():
        raise ConfigError("analysis backend 'essentia' is not installed",
                          hint="pip install essentia-tensorflow, or use --backend librosa")
    return backend


# --- settings-level wiring (light) ----------------------------------------------------------------

def analyzer_version(settings: Any) -> str:
    """The version stored with each result: backend name + analyzer version (as the analyzers report it)."""
    from .version import ANALYZER_VERSION  # no analysis-stack import

    return f"{resolved_backend(settings)}-{ANALYZER_VERSION}"


def resolved_backend(settings: Any) -> str:
    """"essentia" or "librosa" for analysis.backend (auto: essentia when it is installed)."""
    return resolve_backend(settings.analysis.backend)


def resolved_ml_runtime(settings: Any, quiet: bool = True) -> str | None:
    """The MusiCNN runtime the workers use ("onnx" | "essentia"), None for a DSP-only preset."""
    preset = get_preset(settings.analysis.preset)
    if not preset.uses_ml:
        return None
    return resolve_ml_runtime(settings.analysis.ml_runtime, resolved_backend(settings),
                              settings.analysis.models_dir, preset.models, quiet=quiet)


def check_models(settings: Any) -> None:
    """Refuse to start an ML preset whose models are missing — never invent values. Logs the
    runtime fallback (if any) once, here in the main process."""
    runtime = resolved_ml_runtime(settings, quiet=False)
    if runtime is None:
        return
    from .models import require_model

    for name in get_preset(settings.analysis.preset).models:
        require_model(Path(settings.analysis.models_dir), name, runtime)


@dataclass(frozen=True)
class AnalyzerSpec:
    """How a worker builds its analyzer: ``factory`` is ``"module:function"``, called as
    ``factory(backend, preset, Path(models_dir))`` once per worker."""

    factory: str
    backend: str
    preset: str
    models_dir: str


def analyzer_spec(settings: Any) -> AnalyzerSpec:
    """What a worker process needs to build its analyzer (picklable; also sent to Dask workers)."""
    from .runtime import factory_target

    return AnalyzerSpec(factory=factory_target(resolved_ml_runtime(settings) or "auto"),
                        backend=resolved_backend(settings), preset=settings.analysis.preset,
                        models_dir=str(Path(settings.analysis.models_dir).resolve()))


# --- building an analyzer (in the worker) ---------------------------------------------------------

def load_musicnn(preset: Preset, models_dir: Path, runtime: str) -> list[MusicnnModel]:
    """The preset's MusiCNN models, loaded for ``runtime`` ("onnx" | "essentia")."""
    from .models import onnx_models_outdated, require_model

    # Resolve (and verify) every file before loading anything: a missing model fails cheaply.
    infos = [require_model(models_dir, name, runtime) for name in preset.models]
    if runtime == "onnx":
        from .onnx_musicnn import OnnxMusicnn

        if onnx_models_outdated(models_dir):
            log.warning("the ONNX models in %s have an older, slower layout (same results); "
                        "`playlistgen models install` rebuilds them offline", models_dir)

        return [OnnxMusicnn(info) for info in infos]
    from .essentia_backend import TfMusicnn

    return [TfMusicnn(info) for info in infos]


def create_analyzer(backend: str, preset: str, models_dir: Path | str,
                    ml_runtime: str = "auto") -> Analyzer:
    """A ready analyzer; raises ModelMissingError if the preset needs a model that is missing
    and ConfigError for a combination that cannot run."""
    spec = get_preset(preset)
    name = resolve_backend(backend)
    models_dir = Path(models_dir)
    models: list[MusicnnModel] = []
    runtime = None
    if spec.uses_ml:
        runtime = resolve_ml_runtime(ml_runtime, name, models_dir, spec.models)
        if name == "essentia":
            from .essentia_backend import load_essentia

            load_essentia()   # before onnxruntime or TF load anything (single-threaded set-up)
        models = load_musicnn(spec, models_dir, runtime)
    if name == "essentia":
        from .essentia_backend import EssentiaAnalyzer

        analyzer: Analyzer = EssentiaAnalyzer(spec, models_dir, musicnn=models)
    else:
        from .librosa_backend import LibrosaAnalyzer

        analyzer = LibrosaAnalyzer(spec, models_dir, musicnn=models)
    log.debug("analyzer %s-%s ready (preset %s, ML runtime %s)", analyzer.name,
              analyzer.version, spec.name, runtime or "none")
    return analyzer


def create_onnx_analyzer(backend: str, preset: str, models_dir: Path | str) -> Analyzer:
    """create_analyzer with ml_runtime "onnx" (an executor factory: runtime already resolved)."""
    return create_analyzer(backend, preset, models_dir, "onnx")


def create_tf_analyzer(backend: str, preset: str, models_dir: Path | str) -> Analyzer:
    """create_analyzer with ml_runtime "essentia" (an executor factory)."""
    return create_analyzer(backend, preset, models_dir, "essentia")

"""Build an analyzer: `create_analyzer("auto", "balanced", Path("models"))`.

Call it once per worker process (it loads the models) and reuse the result for many files.
"auto" picks Essentia when it is installed, librosa otherwise; ``ml_runtime`` picks the MusiCNN
runtime (analysis.runtime: onnx, essentia or auto). Both backends run the ML presets: Essentia
on either runtime, librosa on onnxruntime. Nothing heavy is imported until this function runs.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from ...errors import ConfigError
from .base import Analyzer
from .musicnn import MusicnnModel
from .presets import Preset, get_preset
from .runtime import resolve_ml_runtime

log = logging.getLogger(__name__)

BACKENDS = ("auto", "essentia", "librosa")


def essentia_available() -> bool:
    return importlib.util.find_spec("essentia") is not None


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


def load_musicnn(preset: Preset, models_dir: Path, runtime: str) -> list[MusicnnModel]:
    """The preset's MusiCNN models, loaded for ``runtime`` ("onnx" | "essentia")."""
    from .models import require_model

    # Resolve (and verify) every file before loading anything: a missing model fails cheaply.
    infos = [require_model(models_dir, name, runtime) for name in preset.models]
    if runtime == "onnx":
        from .onnx_musicnn import OnnxMusicnn

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

"""Build an analyzer: `create_analyzer("auto", "balanced", Path("models"))`.

Call it once per worker process (it loads the models) and reuse the result for many files.
"auto" picks Essentia when it is installed, librosa otherwise. Nothing heavy is imported until
this function runs.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from ...errors import ConfigError
from .base import Analyzer
from .presets import get_preset

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


def create_analyzer(backend: str, preset: str, models_dir: Path | str) -> Analyzer:
    """A ready analyzer; raises ModelMissingError if the preset needs a model that is missing."""
    spec = get_preset(preset)
    name = resolve_backend(backend)
    if name == "essentia":
        from .essentia_backend import EssentiaAnalyzer

        analyzer: Analyzer = EssentiaAnalyzer(spec, Path(models_dir))
    else:
        if spec.uses_ml:
            # Never hand out a "balanced" result without its tags: refuse instead.
            raise ConfigError(f"preset '{spec.name}' needs the MusiCNN models, which only the "
                              "Essentia backend can run",
                              hint="use --preset fast, or install essentia-tensorflow")
        from .librosa_backend import LibrosaAnalyzer

        analyzer = LibrosaAnalyzer(spec, Path(models_dir))
    log.debug("analyzer %s-%s ready (preset %s)", analyzer.name, analyzer.version, spec.name)
    return analyzer

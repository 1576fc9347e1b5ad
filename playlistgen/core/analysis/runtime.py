"""Which runtime runs MusiCNN (``analysis.ml_runtime``), decided once, without heavy imports.

* ``onnx``: onnxruntime with the ``.onnx`` models — per patch 7.5x (MSD) and 3x (MTT) faster than
  Essentia's TensorFlow here (dead filters left out, analysis.onnx_build), and the only runtime
  of the librosa backend (machines without Essentia wheels: Linux aarch64, i.e. Raspberry Pi
  and ARM NAS boxes).
* ``essentia``: Essentia's bundled TensorFlow with the frozen ``.pb`` graphs (Essentia backend
  only).
* ``auto``: onnx when onnxruntime is importable and the ONNX models are installed, else essentia.

onnxruntime missing (it is a normal dependency, so a broken install) falls back to Essentia's
TensorFlow with one warning, for ``auto`` and ``onnx`` alike; with the librosa backend there is
nothing to fall back to, so that is a ConfigError. Missing model files are the caller's
``require_model`` error, with its `models install` hint.

The daemon resolves the runtime once in the main process (logging any fallback there) and hands
the answer to its workers, which then build their analyzer with it (see ``factory_target``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...errors import ConfigError
from ..optional import onnxruntime_available
from .models import list_models

log = logging.getLogger(__name__)

ML_RUNTIMES = ("auto", "onnx", "essentia")
NO_ONNXRUNTIME = ("onnxruntime is not installed: MusiCNN runs on Essentia's TensorFlow instead "
                  "(about 2x slower; `pip install onnxruntime` to fix)")


def onnx_models_ready(models_dir: Path | str, names: tuple[str, ...]) -> bool:
    infos = {info.name: info for info in list_models(Path(models_dir), "onnx")}
    return all(name in infos and infos[name].ok for name in names)


def resolve_ml_runtime(requested: str, backend: str, models_dir: Path | str,
                       names: tuple[str, ...], *, quiet: bool = False) -> str:
    """"onnx" or "essentia" for a resolved backend ("essentia" | "librosa") and the preset's
    model names; logs a fallback (one line) unless ``quiet``."""
    say = log.debug if quiet else log.warning
    if requested not in ML_RUNTIMES:
        raise ConfigError(f"unknown ML runtime '{requested}'", hint="choose auto, onnx or essentia")
    if requested == "essentia":
        if backend != "essentia":
            raise ConfigError("ml_runtime 'essentia' needs the Essentia backend, but the backend "
                              f"is {backend}", hint="set analysis.ml_runtime to onnx or auto")
        return "essentia"
    if not onnxruntime_available():
        if backend == "essentia":
            say("%s", NO_ONNXRUNTIME)
            return "essentia"
        raise ConfigError(f"the {backend} backend runs the ML presets on onnxruntime, which is "
                          "not installed", hint="pip install onnxruntime, or use --preset fast")
    if requested == "onnx" or backend != "essentia":
        return "onnx"
    if onnx_models_ready(models_dir, names):
        return "onnx"
    say("ONNX models not installed in %s: MusiCNN runs on Essentia's TensorFlow "
        "(`playlistgen models install` builds them)", models_dir)
    return "essentia"


FACTORIES = {
    "auto": "playlistgen.core.analysis.factory:create_analyzer",
    "onnx": "playlistgen.core.analysis.factory:create_onnx_analyzer",
    "essentia": "playlistgen.core.analysis.factory:create_tf_analyzer",
}


def factory_target(ml_runtime: str) -> str:
    """The ``module:function`` a worker calls as ``f(backend, preset, models_dir)`` to build an
    analyzer with this (already resolved) runtime."""
    return FACTORIES[ml_runtime]

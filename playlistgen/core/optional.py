"""Which optional native stacks this machine has, asked without importing them (the one
"is Essentia available" check). An import guard that puts None into ``sys.modules`` (the tests
hide Essentia that way) counts as "not available"."""

from __future__ import annotations

import importlib.util


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def essentia_available() -> bool:
    return available("essentia")


def onnxruntime_available() -> bool:
    return available("onnxruntime")

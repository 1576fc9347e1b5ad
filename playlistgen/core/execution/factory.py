"""The one place that turns ``analysis.executor`` into an executor: local processes or threads
(``local.AnalysisExecutor``) or a Dask cluster (``dask.executor.DaskAnalysisExecutor``, the only
path that imports Dask). `serve` (through the Daemon) and `scan` both build theirs here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..analysis.factory import AnalyzerSpec
from .protocol import Executor


def build_executor(settings: Any, spec: AnalyzerSpec, analyzer_version: str, *,
                   on_capacity: Callable[[], None] | None = None) -> Executor:
    """The configured executor, not started. ``on_capacity`` is called when capacity grows
    without an outcome (Dask workers joined): the scheduler's ``wake``."""
    if settings.analysis.executor == "dask":
        from .dask.executor import DaskAnalysisExecutor

        return DaskAnalysisExecutor.from_settings(settings, spec, analyzer_version, on_capacity=on_capacity)
    from .local import AnalysisExecutor

    return AnalysisExecutor.from_settings(settings, spec, on_capacity=on_capacity)

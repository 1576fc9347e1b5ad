"""What every analysis executor shares: what comes back for each file (:class:`Outcome`) and the
interface the scheduler, the daemon and the resource monitor use (:class:`Executor`). Workers
build their analyzer from ``analysis.factory.AnalyzerSpec``. Local processes (``local.AnalysisExecutor``) and
Dask (``dask.executor.DaskAnalysisExecutor``) implement it; nothing outside ``execution/`` asks
which one it has."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..analysis.result import AnalysisResult


@dataclass
class Outcome:
    file_id: int
    path: str
    result: AnalysisResult | None   # its ``worker`` says where and at what cost it ran
    error: str | None               # one-line reason when failed
    requeue: bool = False           # the file was not at fault: put it back to pending
    # decoders that crashed their worker on this file (it was retried without them)
    crashed_decoders: tuple[str, ...] = ()


class Executor(Protocol):
    """The analysis executor's interface (see ``docs/architecture.md``, "execution"). Built by
    ``factory.build_executor``; whatever differs between executors is answered here, so nobody
    outside ``execution/`` branches on the kind."""

    kind: str                       # "process" | "thread" | "dask": shown in status, never branched on
    # Given at construction: called (from the executor's own thread) when capacity grows without an
    # outcome, e.g. a remote worker joined, so the scheduler need not wait for its next poll.
    on_capacity: Callable[[], None] | None

    def start(self) -> None: ...
    @property
    def capacity(self) -> int: ...  # files that may be submitted now
    def submit(self, file_id: int, path: str, task: str = "analyze") -> None: ...   # storage.jobs tasks
    def poll(self, timeout: float) -> list[Outcome]: ...
    def close(self, grace_s: float = 8.0) -> list[tuple[int, str]]: ...
    def health(self) -> dict: ...
    def wait_for_capacity(self, timeout: float) -> bool: ...   # False: none came (or none ever will)
    def worker_processes(self) -> list[tuple[int, int]]: ...   # (pid, slot) of worker processes here
    def remote_processes(self) -> list[dict]: ...   # rows of the processes panel for other machines
    def add_probes(self, metrics: Any, health: Callable[[], dict]) -> None: ...   # its own /metrics


def wait_for_outcomes(timeout: float, tick: float, take: Callable[[], list[Outcome] | None],
                      wait: Callable[[float], None]) -> list[Outcome]:
    """Both executors' poll(): ``take()`` until it returns outcomes (None: none yet, still open),
    ``wait(s)`` for progress in between; [] after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        out = take()
        if out is not None:
            return out
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        wait(min(remaining, tick))

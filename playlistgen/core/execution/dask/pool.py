"""`playlistgen worker`'s part for the app: the Dask nannies (``worker.run_workers``) run by an
asyncio loop on their own thread, so the app's main loop owns the signals (they only set a flag)
and stops this part like any other."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from .worker import run_workers

log = logging.getLogger(__name__)


class WorkerPool:
    def __init__(self, scheduler: str, nworkers: int, security: Any, *, preset: str = "",
                 refusal_file: str = "") -> None:
        self.scheduler, self.nworkers, self.security = scheduler, nworkers, security
        self.preset, self.refusal_file = preset, refusal_file
        self.error: BaseException | None = None   # why the workers ended by themselves (a refusal)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dask-workers", daemon=True)
        self._thread.start()
        self._ready.wait(10)   # the loop exists before stop() may be called

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:   # a refusal (ConfigError) or a crash: the app sees the part end
            self.error = exc

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await run_workers(self.scheduler, self.nworkers, self.security, preset=self.preset,
                          refusal_file=self.refusal_file, stopping=self._stopping)

    def alive(self) -> bool:
        """False once the workers ended by themselves (not asked to stop)."""
        return self._thread is None or self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:   # the loop closed meanwhile
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the Dask workers did not stop within %g s", timeout)

"""A Dask scheduler inside `playlistgen serve` (``analysis.executor: dask`` with an empty
``analysis.dask_scheduler``), so a user only has to start workers on the other machines.

It runs on its own event loop in a background thread, listens on ``analysis.dask_listen`` (validated
by ``config``: loopback, or TLS), fails a file after it killed ``dask_max_attempts`` workers
(Dask's ``allowed-failures``), and forgets a silent worker (cable out, machine off) after
``WORKER_TTL_S`` so its file runs elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from ....errors import ConfigError
from ...loops import BackgroundLoop
from .config import TlsFiles, split_address

log = logging.getLogger(__name__)

WORKER_TTL_S = 60
START_TIMEOUT_S = 30.0


class EmbeddedScheduler:
    def __init__(self, listen: str, tls: TlsFiles, *, max_attempts: int) -> None:
        self.listen, self.tls, self.max_attempts = listen, tls, max_attempts
        self.address: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        # _serve() runs once, until stop(); the loop then waits for a wake that never comes
        self._runner = BackgroundLoop("dask-scheduler", self._serve, interval_s=None)

    def start(self) -> str:
        """Start listening; returns the address workers connect to. Raises ConfigError when the
        address cannot be bound."""
        self._runner.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise ConfigError(f"the Dask scheduler did not start on {self.listen} within {START_TIMEOUT_S:g} s")
        if self._error is not None:
            self._runner.stop()
            raise ConfigError(f"cannot start the Dask scheduler on {self.listen}: {self._error}",
                              hint="is the port in use? set analysis.dask_listen to another address") from None
        log.info("Dask scheduler listening on %s (start workers with `playlistgen worker --scheduler %s`)",
                 self.address, self.address)
        return self.address or self.listen

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        import dask
        from distributed import Scheduler

        scheme, host, port = split_address(self.listen)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        # No dashboard, and Dask's HTTP server only answers /health, on loopback.
        with dask.config.set({"distributed.scheduler.work-stealing": False,
                              "distributed.scheduler.http.routes": ["distributed.http.health"]}):
            scheduler = Scheduler(host=host, port=port, protocol=scheme, security=self.tls.security(),
                                  dashboard=False, dashboard_address="127.0.0.1:0",
                                  allowed_failures=self.max_attempts - 1, worker_ttl=WORKER_TTL_S)
            if self.tls.configured:   # a worker certificate may only work (guard.py)
                from .guard import protect

                protect(scheduler)
            await scheduler
        try:
            self.address = scheduler.address
            self._ready.set()
            await self._stop.wait()
        finally:
            await scheduler.close(reason="playlistgen stopping")

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # loop already gone
                pass
        self._runner.stop(timeout)

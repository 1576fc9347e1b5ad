"""The Dask executor's link to the scheduler: connect (a new ``Client`` each time), register the
worker plugin, refresh the list of workers every second, notice a lost or restarted scheduler,
release a file given up on (and restart the worker stuck with it).
A mixin of :class:`~playlistgen.core.execution.dask.executor.DaskAnalysisExecutor` (its state lives there)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..worker import one_line

log = logging.getLogger("playlistgen.core.execution.dask.executor")

CONNECT_TIMEOUT_S = 5.0
WATCH_INTERVAL_S = 1.0
# A worker the scheduler lists but that never said "ready" (or "refused") this long: its
# announcement was lost (Dask drops events a worker sends while it re-registers with a restarted
# scheduler), so the plugin is registered again and every worker announces itself once more.
SILENT_WORKER_S = 20.0
MB = 1024 * 1024


class SchedulerConnection:
    """Needs the executor's ``_lock``, ``_client``, ``_workers``, ``_tasks`` ... (see DaskAnalysisExecutor)."""

    def wait_for_capacity(self, timeout: float) -> bool:
        """True once a file may be submitted (connected with a worker, or the local fallback);
        False after ``timeout`` or when closed. Used by `scan`, which has no thread to wake."""
        deadline = time.monotonic() + timeout
        while not self.capacity:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._state != "running":
                return False
            time.sleep(min(remaining, 0.1))
        return True

    def _watch_once(self) -> None:
        """The "dask-watch" loop's body, every WATCH_INTERVAL_S: connect, reconnect, refresh."""
        if self._state != "running":   # closing: never reconnect
            return
        try:
            client = self._client
            if client is None or client.status != "running":
                self._disconnected("lost the connection to the scheduler" if client else None)
                self._connect()
            else:
                self._refresh(client)
        except Exception as exc:   # e.g. the scheduler stopped answering: start over
            self._disconnected(one_line(exc))
            client, self._client = self._client, None
            if client is not None:
                threading.Thread(target=client.close, kwargs={"timeout": 2}, daemon=True).start()
        finally:
            self._attempted.set()   # from now on capacity may go to the local fallback

    def _connect(self) -> None:
        from distributed import Client

        from .worker import PLUGIN_NAME, TOPIC_READY, TOPIC_REFUSED, TOPIC_START

        old, self._client = self._client, None
        if old is not None:
            try:
                old.close(timeout=2)
            except Exception:
                pass
        try:
            client = Client(self.scheduler_address, security=self.tls.security(), timeout=CONNECT_TIMEOUT_S,
                            set_as_default=False, name="playlistgen-daemon")
        except Exception as exc:
            self._disconnected(f"cannot reach the Dask scheduler at {self.scheduler_address}: {one_line(exc)}")
            return
        try:
            for topic in (TOPIC_START, TOPIC_READY, TOPIC_REFUSED):
                client.subscribe_topic(topic, lambda event, t=topic: self._on_event(t, event))
            client.register_plugin(self._plugin, name=PLUGIN_NAME)
            self._client = client
            self._refresh(client)
        except Exception as exc:
            client.close(timeout=2)
            self._disconnected(f"Dask scheduler at {self.scheduler_address}: {one_line(exc)}")
            return
        with self._lock:
            self._connected, self._conn_error, self._conn_changed = True, None, time.time()
        log.info("connected to the Dask scheduler at %s", self.scheduler_address)

    def _refresh(self, client: Any) -> None:
        info = client.scheduler_info(n_workers=-1)
        if self._scheduler_id is not None and info.get("id") != self._scheduler_id:
            from .worker import PLUGIN_NAME  # a restarted scheduler forgot the plugin

            client.register_plugin(self._plugin, name=PLUGIN_NAME)
        self._scheduler_id = info.get("id")
        with self._lock:
            self._apply_events()   # also when idle: poll() runs only while files are in flight
            slots = self._remote_slots()
            seen = info.get("workers", {})
            for addr in list(self._workers):
                if addr not in seen:
                    del self._workers[addr]
            for addr, w in seen.items():
                entry = self._workers.setdefault(addr, {"since": time.time()})
                entry.update(name=str(w.get("name")), host=entry.get("host") or w.get("host"),
                             nthreads=w.get("nthreads", 1), running=w.get("status") == "running",
                             rss_mb=round((w.get("metrics") or {}).get("memory", 0) / MB, 1))
            grown = self._remote_slots() > slots
            silent = [addr for addr, w in self._workers.items()
                      if not w.get("pid") and addr not in self._refused and time.time() - w["since"] > SILENT_WORKER_S]
        if silent and time.monotonic() - self._reannounced_at > SILENT_WORKER_S:
            from .worker import PLUGIN_NAME

            log.info("%d Dask worker(s) never announced themselves (%s): registering the plugin again",
                     len(silent), ", ".join(silent))
            self._reannounced_at = time.monotonic()
            client.register_plugin(self._plugin, name=PLUGIN_NAME)
        if grown and self.on_capacity is not None:   # workers joined: no need to wait for the next poll
            self.on_capacity()

    def _disconnected(self, error: str | None) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
            if error:
                self._conn_error = error
            if was:
                self._conn_changed = time.time()
                log.warning("Dask scheduler unreachable (%s): %s", error,
                            "analysing locally" if self.fallback == "local" else "waiting for it")
            for key, task in list(self._tasks.items()):   # their futures are gone with the connection
                self._tasks.pop(key), self._by_file.pop(task.file_id, None)
                self._requeue(task, "the Dask scheduler connection was lost")
            self._workers.clear()

    def _release(self, future: Any, address: str | None) -> None:
        threading.Thread(target=self._cancel_and_restart, args=(future, address), daemon=True).start()

    def _cancel_and_restart(self, future: Any, address: str | None) -> None:
        """Release a file we gave up on, then restart the worker running it (``address``) or, for a
        file never started, the worker holding it unless that worker runs one of our files.

        The order matters: the cancel travels on the client's batched stream, the restart as an RPC,
        so without waiting the restart can reach the scheduler first. Dask then re-runs the file
        (still wanted) on another worker, where the cancel that follows cannot stop it: a hanging
        file keeps that worker's only thread while the scheduler sees an idle worker and sends it
        the next file, which never starts."""
        client = self._client
        if client is None:
            return
        try:
            if address is None:
                held = [w for w, keys in client.processing().items() if future.key in keys]
                with self._lock:
                    ours = {t.address for t in self._tasks.values() if t.started_at is not None}
                    address = held[0] if held and held[0] not in ours else None
                    if address:
                        self._restarts["stuck"] += 1
            future.cancel()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and client.sync(
                    client.scheduler.get_task_status, keys=[future.key]).get(future.key) == "processing":
                time.sleep(0.05)
            if address:
                client.restart_workers([address], timeout=60, raise_for_error=False)
        except KeyError:   # Dask's answer when that worker is gone already (e.g. the file crashed it)
            pass
        except Exception:   # (closing: the client is gone)
            log.log(logging.WARNING if self._state == "running" else logging.DEBUG,
                    "could not release %s / restart Dask worker %s", future.key, address, exc_info=True)

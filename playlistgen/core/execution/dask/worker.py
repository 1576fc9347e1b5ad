"""The worker side of Dask analysis: a WorkerPlugin that builds the analyzer once per worker
process, the task that analyses one file, and the runner behind `playlistgen worker`.

* **Models come from the daemon.** The plugin carries the model files named by the daemon's
  ``manifest.json`` (a few MB, sent once per worker process when it registers) with their
  sha256; the worker writes them into a local cache folder, checks every digest and builds the
  analyzer from there. A worker needs neither the library nor the database.
* **Same versions or nothing.** The plugin carries the daemon's playlistgen and analyzer
  versions; a worker whose own differ refuses in one line (both versions and the fix), tells the
  daemon (event ``playlistgen-refused``), and shuts down without being restarted by its nanny.
  ``PLAYLISTGEN_TEST_ANALYZER_VERSION`` fakes this worker's analyzer version — for tests only.
* **One analysis per process**: `playlistgen worker` starts ``--nworkers`` Dask workers, each in
  its own process under a ``distributed.Nanny`` with ``nthreads=1`` (Essentia is not
  thread-safe). The nanny restarts a worker that dies; the worker leaves if the nanny dies.
* **Files**: the task gets the file's bytes (written to a private temp folder that keeps the last
  path components, so names taken from folders are the same as on the daemon) or, with
  ``analysis.dask_path_map``, a path the worker reads itself.

TensorFlow is never imported here (Essentia brings its own). This module imports Dask: only the
Dask executor and `playlistgen worker` import it, never `serve` with another executor.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ....errors import AnalysisError, ConfigError
from ...analysis.result import WorkerStats
from ...storage.jobs import ANALYZE
from ..worker import one_line, run_analyzer

log = logging.getLogger(__name__)

PLUGIN_NAME = "playlistgen-analyzer"
TOPIC_READY = "playlistgen-ready"
TOPIC_START = "playlistgen-start"
TOPIC_REFUSED = "playlistgen-refused"
TEST_VERSION_ENV = "PLAYLISTGEN_TEST_ANALYZER_VERSION"   # test-only: fake this worker's analyzer version
REFUSAL_FILE_ENV = "PLAYLISTGEN_WORKER_REFUSAL_FILE"     # where a refused worker leaves its reason
PRESET_ENV = "PLAYLISTGEN_WORKER_PRESET"                 # `playlistgen worker --preset`
READY_WAIT_S = 300.0
WORKER_NICENESS = 5
RECONNECT_DELAY_S = 2.0
MB = 1024 * 1024


# ----------------------------------------------------------------------------- models

@dataclass(frozen=True)
class ModelBundle:
    """The daemon's model files: ``{file name: bytes}`` and their sha256."""

    files: dict[str, bytes]
    sha256: dict[str, str]

    @classmethod
    def from_dir(cls, models_dir: Path | str) -> ModelBundle:
        """``manifest.json`` and every file it names (empty when there is no manifest: preset fast)."""
        models_dir = Path(models_dir)
        manifest = models_dir / "manifest.json"
        if not manifest.is_file():
            return cls({}, {})
        names = {"manifest.json"}
        stack: list[Any] = [json.loads(manifest.read_text(encoding="utf-8")).get("models") or {}]
        while stack:   # every file named anywhere in the entries (.pb graphs, ONNX models, ...)
            value = stack.pop()
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, str) and "/" not in value and value not in (".", "..") \
                    and (models_dir / value).is_file():
                names.add(value)
        files = {name: (models_dir / name).read_bytes() for name in sorted(names)}
        return cls(files, {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})

    @property
    def digest(self) -> str:
        joined = "".join(f"{name}:{sha}\n" for name, sha in sorted(self.sha256.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    def install(self, root: Path) -> Path:
        """Write the files under ``root/<digest>`` (once; atomically) and verify every sha256."""
        target = root / self.digest[:16]
        target.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            if hashlib.sha256(data).hexdigest() != self.sha256[name]:
                raise AnalysisError(f"model file {name} arrived damaged (sha256 mismatch)",
                                    hint="restart the worker; if it persists, check the network")
            path = target / name
            if path.is_file() and _sha256(path) == self.sha256[name]:
                continue
            tmp = target / f".{name}.{os.getpid()}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, path)
            if _sha256(path) != self.sha256[name]:
                raise AnalysisError(f"model file {path} does not match its sha256 after writing")
        return target


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def model_cache_root() -> Path:
    return Path(tempfile.gettempdir()) / f"playlistgen-models-{os.getuid()}"


# ----------------------------------------------------------------------------- versions

def local_versions(backend: str) -> dict[str, str]:
    """This installation's playlistgen and analyzer versions (the test override applied)."""
    from .... import __version__
    from ...analysis.version import ANALYZER_VERSION

    analyzer = os.environ.get(TEST_VERSION_ENV) or f"{backend}-{ANALYZER_VERSION}"
    return {"playlistgen": __version__, "analyzer": analyzer}


def refusal(daemon: dict[str, str], mine: dict[str, str], preset: str, pinned: str) -> str | None:
    """One line saying why this worker must not analyse for that daemon, or None."""
    if daemon != mine:
        return (f"playlistgen worker refused: the daemon runs playlistgen {daemon['playlistgen']} with analyzer "
                f"{daemon['analyzer']}, this worker runs playlistgen {mine['playlistgen']} with analyzer "
                f"{mine['analyzer']} — install the daemon's version here (pip install "
                f"playlistgen=={daemon['playlistgen']}) or upgrade the daemon, then restart the worker")
    if pinned and pinned != preset:
        return (f"playlistgen worker refused: started with --preset {pinned}, but the daemon analyses with "
                f"preset {preset} — restart the worker with --preset {preset} or without --preset")
    return None


# ----------------------------------------------------------------------------- the plugin

_ANALYZERS: dict[tuple, Any] = {}   # per worker process: one analyzer per (spec, models)


class AnalyzerPlugin(WorkerPlugin):
    """Pickled by the daemon and set up in every worker process (see the module docstring)."""

    def __init__(self, spec: Any, versions: dict[str, str], bundle: ModelBundle) -> None:
        self.spec, self.versions, self.bundle = spec, versions, bundle
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.state, self.error, self.analyzer = "starting", None, None
        self.ready = threading.Event()

    def __getstate__(self) -> dict:
        return {"spec": self.spec, "versions": self.versions, "bundle": self.bundle}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    async def setup(self, worker: Any) -> None:
        mine = local_versions(self.spec.backend)
        reason = refusal(self.versions, mine, self.spec.preset, os.environ.get(PRESET_ENV, ""))
        if reason:
            return self._refuse(worker, reason)
        try:
            self.analyzer = await asyncio.to_thread(self._build)
        except Exception as exc:   # reported to the daemon; tasks sent here are re-queued
            self.state, self.error = "failed", f"analyzer could not start on {_host()}: {one_line(exc)}"
            log.error("%s", self.error)
            self._announce(worker, TOPIC_REFUSED, self._identity(worker, reason=self.error))
        else:
            self.state = "ready"
            self._announce(worker, TOPIC_READY, self._identity(worker))
        finally:
            self.ready.set()

    def _announce(self, worker: Any, topic: str, msg: dict, *, close: bool = False) -> None:
        """Tell the daemon (an event through the scheduler) once this worker is connected: Dask
        drops events sent during registration, which is when a joining worker sets us up."""
        async def send() -> None:
            for _ in range(600):
                stream = worker.batched_stream
                if stream is not None and stream.comm is not None and not stream.comm.closed():
                    break
                await asyncio.sleep(0.1)
            worker.log_event(topic, msg)
            if close:   # close this worker and tell its nanny not to restart it
                await asyncio.sleep(0.5)
                await worker.close(nanny=True, reason="playlistgen-refused")

        self._announcing = asyncio.ensure_future(send())

    def _build(self) -> Any:
        from ..worker import load_factory

        models = self.bundle.install(model_cache_root()) if self.bundle.files else Path(self.spec.models_dir)
        spec = replace(self.spec, models_dir=str(models))
        key = (spec, self.bundle.digest)
        if key not in _ANALYZERS:   # a re-registration (daemon or scheduler restart) reuses it
            _ANALYZERS[key] = load_factory(spec.factory)(spec.backend, spec.preset, models)
        return _ANALYZERS[key]

    def _refuse(self, worker: Any, reason: str) -> None:
        self.state, self.error = "refused", reason
        self.ready.set()
        print(reason, file=sys.stderr, flush=True)
        path = os.environ.get(REFUSAL_FILE_ENV)
        if path:
            Path(path).write_text(reason + "\n", encoding="utf-8")
        self._announce(worker, TOPIC_REFUSED, self._identity(worker, reason=reason), close=True)

    def _identity(self, worker: Any, **extra: Any) -> dict:
        return {"address": worker.address, "name": str(worker.name), "host": _host(), "pid": os.getpid(),
                "nthreads": worker.state.nthreads, **extra}


# ----------------------------------------------------------------------------- the task

def analyse_file(file_id: int, path: str, data: bytes | None, read_path: str | None,
                 task: str = ANALYZE) -> str:
    """Run on a worker: analyse one file (``task``: storage.jobs ANALYZE, or SPREAD for the
    background upgrade's MusiCNN-only part) (its bytes, or ``read_path``) and return the outcome as
    JSON text (``payload.encode``: the result, or the error, this worker's host, address and cost,
    or why this worker cannot analyse at all). Never a pickle: the daemon takes only plain data
    from workers (``guard.py``)."""
    from distributed import get_worker

    from .payload import encode

    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is not None:
        plugin.ready.wait(READY_WAIT_S)
    if plugin is None or plugin.state != "ready":
        reason = f"worker {worker.address} has no playlistgen plugin yet" if plugin is None else \
            plugin.error or f"worker {worker.address} is not ready ({plugin.state})"
        return encode(None, None, WorkerStats(pid=os.getpid(), host=_host(), address=worker.address), reason)
    _report_start(worker, {"file_id": file_id, "address": worker.address, "host": _host(), "pid": os.getpid(),
                           "at": time.time()})
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result, error, scratch = None, None, None
    try:
        if data is not None:
            scratch = tempfile.mkdtemp(prefix="playlistgen-")
            read_path = str(_scratch_path(Path(scratch), path))
            Path(read_path).parent.mkdir(parents=True, exist_ok=True)
            Path(read_path).write_bytes(data)
        result, error = run_analyzer(plugin.analyzer, read_path, task)
    except OSError as exc:   # the shipped bytes could not be staged on this worker
        error = f"{type(exc).__name__}: {one_line(exc)}"
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    info = WorkerStats(pid=os.getpid(), rss_mb=_rss_mb(), wall_s=round(time.perf_counter() - wall0, 3),
                       cpu_s=round(time.process_time() - cpu0, 3), host=_host(), address=worker.address)
    if result is not None:
        result.worker = info
    try:
        return encode(result, error, info)
    except (TypeError, ValueError) as exc:   # the analyzer left something that is not JSON data
        return encode(None, f"result is not plain data: {one_line(exc)}", info)


def _report_start(worker: Any, msg: dict) -> None:
    """Tell the daemon a file starts here, in a round trip to the scheduler before analysing: an
    event on the worker's batched stream dies with a worker that the file crashes at once, and the
    daemon would count neither that start nor that crash (nor stop the file after max_attempts).
    Not reported (scheduler unreachable): the daemon's start deadline hands the file back."""
    from distributed.utils import sync

    try:
        sync(worker.loop, worker.scheduler.log_event, topic=TOPIC_START, msg=msg, callback_timeout=10)
    except Exception as exc:
        log.warning("could not report the start of file %s to the scheduler: %s", msg["file_id"], one_line(exc))


def _scratch_path(scratch: Path, path: str) -> Path:
    """``scratch/music/<the daemon's path without its root>``: the two parent folders the
    metadata fallback reads are the same as on the daemon ("music" is a generic name it skips,
    like the root of a shallow path)."""
    parts = [p for p in PurePosixPath(path).parts[1:] if p not in ("", ".", "..")]
    return scratch.joinpath("music", *parts) if parts else scratch / "music" / "file"


def _rss_mb() -> float | None:
    try:
        import psutil

        return round(psutil.Process().memory_info().rss / MB, 1)
    except Exception:
        return None


def _host() -> str:
    return socket.gethostname()


# ----------------------------------------------------------------------------- `playlistgen worker`

async def run_workers(scheduler: str, nworkers: int, security: Any, *, preset: str = "",
                      refusal_file: str = "", memory_limit: str | int = 0,
                      stopping: asyncio.Event | None = None) -> None:
    """Start ``nworkers`` nanny-supervised single-thread workers and wait until they all end
    (refusal, or ``stopping`` set; without one, SIGINT/SIGTERM set it: the loop must then run in
    the main thread)."""
    import signal

    import dask
    from distributed import Nanny

    from .startup import explain

    env = {REFUSAL_FILE_ENV: refusal_file, PRESET_ENV: preset}
    if os.environ.get(TEST_VERSION_ENV):
        env[TEST_VERSION_ENV] = os.environ[TEST_VERSION_ENV]
    # Dask's per-worker HTTP server: /health only, on loopback (the nannies pass the config on).
    # No sampling profiler (a thread taking the GIL every 10 ms) and none of the nanny's
    # environment presets (MALLOC_TRIM_THRESHOLD_ makes numpy-heavy code slower): a worker
    # process runs exactly like a local analysis worker (bench/distributed.py measures both).
    dask.config.set({"distributed.worker.http.routes": ["distributed.http.health"],
                     "distributed.worker.profile.enabled": False,
                     "distributed.nanny.pre-spawn-environ": {}})
    if stopping is None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
    stop = asyncio.ensure_future(stopping.wait())
    # Dask workers shut down when the scheduler goes away: start new ones, which wait for it.
    while not stopping.is_set() and not (refusal_file and Path(refusal_file).exists()):
        nannies = [Nanny(scheduler, nthreads=1, security=security, env=env, name=f"{_host()}-{os.getpid()}-{i}",
                         memory_limit=memory_limit, dashboard=False, dashboard_address="127.0.0.1:0",
                         preload=["playlistgen.core.execution.dask.worker"])
                   for i in range(nworkers)]
        starting = asyncio.ensure_future(asyncio.gather(*nannies))
        await asyncio.wait([starting, stop], return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and starting.exception() is not None:   # one line, never Dask's traceback
            why, fatal = explain(starting.exception(), scheduler)   # type: ignore[arg-type]
            await asyncio.gather(*(n.close(timeout=10, reason="playlistgen-worker-cannot-join") for n in nannies
                                   if n.status.name not in ("closing", "closed", "failed")), return_exceptions=True)
            if fatal:
                stop.cancel()
                raise ConfigError(f"playlistgen worker cannot join: {why}")
            log.warning("%s; trying again in %g s", why, RECONNECT_DELAY_S)
            await asyncio.wait([stop], timeout=RECONNECT_DELAY_S)
            continue
        if starting.done():
            log.info("%d analysis worker(s) connected to %s", nworkers, scheduler)
            finished = asyncio.ensure_future(asyncio.gather(*(n.finished() for n in nannies)))
            await asyncio.wait([finished, stop], return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            starting.cancel()
            await asyncio.gather(*(n.close(timeout=10, reason="playlistgen-worker-stop") for n in nannies),
                                 return_exceptions=True)
        elif not (refusal_file and Path(refusal_file).exists()):
            log.warning("lost the scheduler %s; waiting for it to come back", scheduler)
            await asyncio.sleep(RECONNECT_DELAY_S)
    stop.cancel()


def dask_setup(worker: Any) -> None:
    """Preload hook run in each worker process: lower priority (analysis is background work),
    and leave if the nanny is gone."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:
        pass
    from ..worker import exit_with_parent

    exit_with_parent()

"""Issue 20, points 17-18: a worker's certificate can only work. A real `playlistgen serve` with
its embedded TLS scheduler, real `playlistgen worker` processes, and a hostile Dask worker
(tests/dask_hostile_worker.py) holding the worker's files: it may analyse, but it cannot act as
a client, run code on the scheduler, or get the daemon to unpickle anything it sends. And a
worker that cannot join says why in one line."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from playlistgen.core.execution.dask.config import TlsFiles
from tests.conftest import REPO, free_port, run_cli
from tests.helpers import make_song, status, wait_for
from tests.test_dask import dask_env, health, procs, worker_args  # noqa: F401 - procs is a fixture

SECRET = "the-media-server-password"


def _pid_and_secret() -> tuple[int, str | None]:   # what the finding got back: the daemon's PID and secrets
    return os.getpid(), os.environ.get("PLAYLISTGEN_MEDIASERVER__PASSWORD")


def make_certs(directory: Path) -> None:
    made = run_cli("cluster", "certs", str(directory), "--host", "127.0.0.1")
    assert made.returncode == 0, made.stderr


def worker_files(certs: Path) -> TlsFiles:
    return TlsFiles(str(certs / "ca.pem"), str(certs / "worker.pem"), str(certs / "worker.key"))


def tls_args(files: TlsFiles) -> tuple[str, ...]:
    return ("--tls-ca", files.ca, "--tls-cert", files.cert, "--tls-key", files.key)


def test_a_worker_certificate_can_only_work(tmp_path: Path, daemon_factory, procs) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from distributed import Client

    certs = tmp_path / "certs"
    make_certs(certs)
    library = tmp_path / "library"
    make_song(library / "Artist" / "01 - one.wav", 1, seconds=6.0)
    listen = f"tls://127.0.0.1:{free_port()}"
    imported, unpickled = tmp_path / "imported-worker-code", tmp_path / "unpickled-worker-data"
    daemon = daemon_factory(env=dask_env(
        PLAYLISTGEN_ANALYSIS__DASK_LISTEN=listen, PLAYLISTGEN_ANALYSIS__DASK_FALLBACK="wait",
        PLAYLISTGEN_ANALYSIS__DASK_TLS_CA=str(certs / "ca.pem"),
        PLAYLISTGEN_ANALYSIS__DASK_TLS_CERT=str(certs / "daemon.pem"),
        PLAYLISTGEN_ANALYSIS__DASK_TLS_KEY=str(certs / "daemon.key"),
        PLAYLISTGEN_MEDIASERVER__PASSWORD=SECRET, HOSTILE_IMPORT_MARKER=str(imported),
        PYTHONPATH=str(REPO)))
    daemon.wait_ready(60)
    files = worker_files(certs)
    worker = procs(worker_args(listen, *tls_args(files)), tmp_path / "worker.log")
    # the daemon analyses through the worker (dask_fallback: wait, so nothing runs locally)
    wait_for(lambda: status(daemon)["counts"]["done"] == 1, 240, "the file analysed by the TLS worker")
    assert sum(w["tasks_done"] for w in health(daemon)["workers"] if w.get("remote")) == 1

    # the worker's files as a client: refused before any code runs in the daemon
    security = files.security()
    with pytest.raises(Exception) as refused:
        with Client(listen, security=security, timeout=30, set_as_default=False) as client:
            leaked = client.run_on_scheduler(_pid_and_secret)
            pytest.fail(f"the worker's certificate ran code in the daemon: {leaked}")
    assert "refused" in str(refused.value) and "worker" in str(refused.value), refused.value

    # a worker that returns a pickle that runs code, and sends one in an event: the daemon
    # unpickles neither; the file fails with a clear reason
    worker.stop()
    hostile = procs([sys.executable, "-m", "distributed.cli.dask_worker", listen, "--nworkers", "1",
                     "--nthreads", "1", "--no-dashboard", "--preload", "tests.dask_hostile_worker",
                     "--tls-ca-file", files.ca, "--tls-cert", files.cert, "--tls-key", files.key],
                    tmp_path / "hostile.log", env={"HOSTILE_MARKER": str(unpickled), "PYTHONPATH": str(REPO)})
    make_song(library / "Artist" / "02 - two.wav", 2, seconds=6.0)
    wait_for(lambda: status(daemon)["counts"]["failed"] == 1, 240, "the hostile worker's result refused")
    assert not unpickled.exists(), "the daemon unpickled data from a worker"
    assert not imported.exists(), "the daemon imported the worker's code"
    last = health(daemon)["last_error"]["error"]
    assert "not plain data" in last or "malformed" in last, last
    hostile.stop()
    assert daemon.stop(signal.SIGTERM) == 0, daemon.log_path.read_text()[-3000:]
    log = daemon.log_path.read_text()
    assert "refused 'identity'" in log and "malformed playlistgen-ready event" in log, log[-3000:]
    assert not [line for line in log.splitlines() if " ERROR playlistgen" in line], log[-3000:]


# ----------------------------------------------------------------------------- point 18: one line

@pytest.fixture(scope="module")
def schedulers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Two real schedulers: TLS with the daemon's certificate, and plain tcp; and two cert folders."""
    import subprocess

    base = tmp_path_factory.mktemp("roles")
    ours, other = base / "ours", base / "other"
    make_certs(ours)
    make_certs(other)
    tls_port, tcp_port = free_port(), free_port()
    common = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--no-dashboard"]
    logs = [open(base / f"{name}.log", "w") for name in ("tls", "tcp")]  # noqa: SIM115 - closed below
    started = [subprocess.Popen([*common, "--port", str(tls_port), "--protocol", "tls",
                                 "--tls-ca-file", str(ours / "ca.pem"), "--tls-cert", str(ours / "daemon.pem"),
                                 "--tls-key", str(ours / "daemon.key")], stdout=logs[0], stderr=subprocess.STDOUT),
               subprocess.Popen([*common, "--port", str(tcp_port)], stdout=logs[1], stderr=subprocess.STDOUT)]
    for log_file in logs:
        wait_for(lambda f=log_file: "Scheduler at" in Path(f.name).read_text(), 60, "a scheduler listening")
    # a CA file that trusts both folders: the worker accepts the scheduler, which refuses the worker
    both = base / "both-ca.pem"
    both.write_bytes((other / "ca.pem").read_bytes() + (ours / "ca.pem").read_bytes())
    yield {"tls": f"tls://127.0.0.1:{tls_port}", "tcp": f"tcp://127.0.0.1:{tcp_port}", "ours": ours,
           "other": other, "both": both}
    for proc in started:
        proc.kill()
        proc.wait(10)
    for log_file in logs:
        log_file.close()


CASES = {   # scheduler, (ca, cert, key) or None, words the one line must hold
    "another CA's files": ("tls", ("other/ca.pem", "other/worker.pem", "other/worker.key"),
                           ("does not vouch", "copy ca.pem, worker.pem and worker.key")),
    "refused by the scheduler": ("tls", ("both", "other/worker.pem", "other/worker.key"),
                                 ("refused this worker's certificate", "copy ca.pem")),
    "certificate of another CA": ("tls", ("ours/ca.pem", "other/worker.pem", "other/worker.key"),
                                  ("not signed by the CA",)),
    "key of another certificate": ("tls", ("ours/ca.pem", "ours/worker.pem", "ours/daemon.key"),
                                   ("is not the key of",)),
    "the daemon's certificate": ("tls", ("ours/ca.pem", "ours/daemon.pem", "ours/daemon.key"),
                                 ("the daemon's certificate", "worker.pem")),
    "missing certificate": ("tls", ("ours/ca.pem", None, None), ("must be set together",)),
    "plain tcp against TLS": ("tcp-to-tls", None, ("expects TLS", "tls://")),
    "TLS against plain tcp": ("tls-to-tcp", ("ours/ca.pem", "ours/worker.pem", "ours/worker.key"),
                              ("does not speak TLS",)),
    "tcp:// with TLS files": ("tcp", ("ours/ca.pem", "ours/worker.pem", "ours/worker.key"), ("use tls://",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_worker_says_why_in_one_line(schedulers, case: str) -> None:  # type: ignore[no-untyped-def]
    target, files, words = CASES[case]
    address = {"tcp-to-tls": schedulers["tls"].replace("tls://", "tcp://"),
               "tls-to-tcp": schedulers["tcp"].replace("tcp://", "tls://")}.get(target) or schedulers[target]
    args = ["worker", "--scheduler", address, "--nworkers", "1"]
    for flag, name in zip(("--tls-ca", "--tls-cert", "--tls-key"), files or (None, None, None), strict=True):
        if name is not None:
            folder, _, file = name.partition("/")
            args += [flag, str(schedulers[folder] / file if file else schedulers[folder])]
    proc = run_cli(*args, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    reasons = [line for line in out.splitlines() if line.startswith("Error: ")]
    assert len(reasons) == 1 and all(w in reasons[0] for w in words), out
    assert "Traceback" not in out and "Nanny failed to start" not in out, out
    assert len(out.splitlines()) <= 8, out   # before: 86-98 lines


def test_a_worker_waits_for_a_scheduler_that_is_not_there_yet(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Unreachable is not refused: one line per attempt, then it joins once the scheduler starts."""
    from tests.test_dask import scheduler_args

    port = free_port()
    worker = procs(worker_args(f"tcp://127.0.0.1:{port}"), tmp_path / "worker.log",
                   env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    wait_for(lambda: "cannot reach the scheduler" in worker.output(), 120, "the worker saying it waits")
    procs(scheduler_args(port), tmp_path / "scheduler.log")
    wait_for(lambda: "analysis worker(s) connected" in worker.output(), 120, "the worker joining")
    assert worker.stop() == 0   # SIGTERM: a clean stop
    out = worker.output()
    assert "Traceback" not in out and "Nanny failed to start" not in out, out


def test_missing_certificate_files_are_one_line(tmp_path: Path, schedulers) -> None:  # type: ignore[no-untyped-def]
    """Files named in the config (not checked by click) that are not there: the worker and the
    daemon say which, in one line."""
    ours = schedulers["ours"]
    env = {"PLAYLISTGEN_ANALYSIS__DASK_TLS_CA": str(ours / "ca.pem"),
           "PLAYLISTGEN_ANALYSIS__DASK_TLS_CERT": str(tmp_path / "nowhere" / "worker.pem"),
           "PLAYLISTGEN_ANALYSIS__DASK_TLS_KEY": str(ours / "worker.key")}
    proc = run_cli("worker", "--scheduler", schedulers["tls"], "--nworkers", "1", env=env, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out
    assert [line for line in out.splitlines() if line.startswith("Error: ")] == \
        [f"Error: cannot read --tls-cert {tmp_path / 'nowhere' / 'worker.pem'}: No such file or directory — "
         "use ca.pem and the certificate and key of one `playlistgen cluster certs` folder"], out
    (tmp_path / "lib").mkdir()
    env["PLAYLISTGEN_ANALYSIS__DASK_TLS_CERT"] = str(ours / "worker.pem")   # the daemon with the workers' file
    proc = run_cli("serve", "--library", str(tmp_path / "lib"), "--port", str(free_port()), cwd=tmp_path,
                   timeout=120, env=dask_env(PLAYLISTGEN_ANALYSIS__DASK_LISTEN=f"tls://127.0.0.1:{free_port()}",
                                             **env))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in out, out
    assert "analysis.dask_tls_cert" in out and "the workers' certificate" in out, out


# ----------------------------------------------------------------------------- the pieces

def test_untrusted_messages_decode_to_plain_data_only(tmp_path: Path) -> None:
    """What Dask's own decoder would unpickle (and what the daemon's client would unpickle later)
    comes out of plain.loads as data that cannot run code; plain data comes out as it went in."""
    from distributed.core import Status, error_message
    from distributed.protocol import dumps
    from distributed.protocol.serialize import Serialize, ToPickle

    from playlistgen.core.execution.dask import plain
    from tests.dask_hostile_worker import Payload

    marker = str(tmp_path / "unpickled")
    text = '{"result": null, "note": "' + "x" * 200_000 + '"}'   # big enough to be compressed
    error = error_message(ValueError("boom"))   # Dask's error shape: a pickled exception
    msg = {"op": "task-erred", "pickled": ToPickle(Payload(marker)), "serialized": Serialize(Payload(marker)),
           "type": b"\x80\x04pickled type bytes", "text": Serialize(text), "plain": ToPickle({"a": [1, 2.5]}),
           "status": Status.running, "error": error, "nested": [Serialize(Payload(marker)), {"k": (1, "v")}]}
    got = plain.loads(dumps(msg, context={"compression": "zlib"}))
    assert not Path(marker).exists(), "decoding ran code"
    assert got["pickled"] == plain.REFUSED and got["serialized"] == plain.REFUSED
    assert got["nested"] == (plain.REFUSED, {"k": (1, "v")})   # Dask reads lists as tuples
    assert got["type"] is None   # bytes: the client would unpickle them
    assert got["text"] == text and got["plain"] == {"a": [1, 2.5]} and got["status"] is Status.running
    assert got["error"]["exception"] == "ValueError('boom')" and got["error"]["traceback"] in (None, plain.REFUSED)
    # an enum that is not one: a function of an allowed module
    fake = dumps({"x": 1})
    import msgpack

    fake[0] = msgpack.dumps({"x": {"__Enum__": True, "__module__": "distributed.protocol.pickle",
                                   "__name__": "loads", "name": "__call__"}})
    assert plain.loads(fake) == {"x": plain.REFUSED}


def test_results_and_events_from_workers_are_checked() -> None:
    from playlistgen.core.analysis.result import AnalysisResult, WorkerStats
    from playlistgen.core.execution.dask import payload, plain

    stats = WorkerStats(pid=7, host="w1", address="tls://10.0.0.2:4000")
    result = AnalysisResult(bpm=120.0, key="A", embedding=[0.5] * 4, tags={"msd": {"rock": 0.9}},
                            metadata={"artist": "X", "year": 1999}, worker=stats)
    back = payload.decode(payload.encode(result, None, stats))
    assert back.result == result and back.worker == stats and back.error is None and back.not_ready is None
    assert payload.decode(payload.encode(None, None, stats, "plugin refused")).not_ready == "plugin refused"
    bad = [plain.REFUSED, None, b"{}", "not json", "[]", '{"result": null, "error": null}',
           '{"result": {"bpm": "fast"}, "error": null, "worker": {}, "not_ready": null}',
           '{"result": {"metadata": {"artist": {"x": 1}}}, "error": null, "worker": {}, "not_ready": null}',
           '{"result": {"embedding": [true]}, "error": null, "worker": {}, "not_ready": null}',
           '{"result": null, "error": null, "worker": {"pid": "7"}, "not_ready": null}']
    for value in bad:
        with pytest.raises(payload.MalformedResult):
            payload.decode(value)
    assert payload.event({"file_id": 3, "address": "a", "extra": object()}, ("file_id", "address")) == \
        {"file_id": 3, "address": "a"}
    for msg in (plain.REFUSED, {"address": 5}, {"file_id": "3", "address": "a"}, {"address": "a", "nthreads": "9"}):
        assert payload.event(msg, ("address",)) is None


def test_the_scheduler_lets_a_worker_certificate_only_work(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """In this process: the embedded scheduler with TLS and the guard, a real Dask worker with the
    worker's files (it joins and stays), and that certificate asking for more."""
    import asyncio
    import logging

    from distributed import Worker
    from distributed.core import rpc
    from distributed.protocol.pickle import dumps

    from playlistgen.core.execution.dask import guard
    from playlistgen.core.execution.dask.scheduler import EmbeddedScheduler

    certs = tmp_path / "certs"
    make_certs(certs)
    daemon = TlsFiles(str(certs / "ca.pem"), str(certs / "daemon.pem"), str(certs / "daemon.key"))
    files = worker_files(certs)
    guard.install(guard.daemon_trust(daemon, embedded=True))
    scheduler = EmbeddedScheduler(f"tls://127.0.0.1:{free_port()}", daemon, max_attempts=2)
    caplog.set_level(logging.WARNING, logger="playlistgen.core.execution.dask.guard")
    try:
        address = scheduler.start()

        async def as_the_worker() -> dict:
            refusals: dict = {}
            r = rpc(address, connection_args=files.security().get_connection_args("client"))
            try:
                for op, kwargs in (("run_function", {"function": dumps(os.getpid)}), ("terminate", {}),
                                   ("feed", {"function": dumps(os.getpid)}), ("connection_stream", {}),
                                   ("register_scheduler_plugin", {"plugin": b""})):
                    with pytest.raises(ValueError) as refused:
                        await getattr(r, op)(**kwargs)
                    refusals[op] = str(refused.value)
            finally:
                await r.close_rpc()
            async with Worker(address, nthreads=1, security=files.security(), dashboard=False,
                              dashboard_address="127.0.0.1:0") as worker:
                # a client's operation slipped into the worker's own stream
                worker.batched_send({"op": "update-graph", "graph_header": {}, "graph_frames": [], "keys": ["x"]})
                for _ in range(200):
                    if "'update-graph'" in caplog.text:
                        break
                    await asyncio.sleep(0.05)
                refusals["stream"] = worker.status.name
            return refusals

        refusals = asyncio.run(as_the_worker())
        from distributed import Client

        with Client(address, security=daemon.security(), timeout=30, set_as_default=False) as client:
            assert client.scheduler_comm.comm.trusted   # the daemon's own certificate, both ways
            assert client.run_on_scheduler(os.getpid) == os.getpid()   # still may do everything
        assert all("refused" in refusals[op] and "worker certificate" in refusals[op]
                   for op in ("run_function", "terminate", "feed", "connection_stream", "register_scheduler_plugin"))
        assert "refused 'update-graph'" in caplog.text and refusals["stream"] == "running", caplog.text
        assert scheduler.address and scheduler._error is None   # never terminated by the worker
    finally:
        scheduler.stop()
        guard.uninstall()


def test_cluster_certs_name_roles_and_keep_the_ca_key_home(tmp_path: Path) -> None:
    from cryptography import x509

    from playlistgen.core.execution.dask.certs import role_of

    made = run_cli("cluster", "certs", str(tmp_path / "a"), "--host", "nas.local")
    assert made.returncode == 0, made.stderr
    scp = next(line for line in made.stdout.splitlines() if "scp " in line)
    assert "{ca.pem,worker.pem,worker.key}" in scp and "ca.key" not in scp and "daemon" not in scp, scp
    make_certs(tmp_path / "b")

    def load(path: Path) -> x509.Certificate:
        return x509.load_pem_x509_certificate(path.read_bytes())

    a, b = tmp_path / "a", tmp_path / "b"
    assert role_of(load(a / "worker.pem")) == "worker" and role_of(load(a / "daemon.pem")) == "daemon"
    ou = x509.oid.NameOID.ORGANIZATIONAL_UNIT_NAME
    assert load(a / "worker.pem").subject.get_attributes_for_oid(ou)[0].value == "worker"
    assert load(a / "ca.pem").subject != load(b / "ca.pem").subject   # never mistaken for another run's CA
    assert load(a / "worker.pem").issuer == load(a / "ca.pem").subject


def test_an_external_tls_scheduler_is_trusted_with_nothing(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """`analysis.dask_scheduler` on TLS: another process, so the daemon decodes all it sends as
    plain data (its client trusts no certificate) — and still analyses through it."""
    from distributed.comm import registry

    from playlistgen import __version__
    from playlistgen.core.analysis.version import ANALYZER_VERSION
    from playlistgen.core.execution.dask import guard
    from playlistgen.core.execution.dask.executor import DaskAnalysisExecutor
    from playlistgen.core.execution.local import AnalysisExecutor
    from tests.executor_helpers import spec

    certs = tmp_path / "certs"
    make_certs(certs)
    daemon = TlsFiles(str(certs / "ca.pem"), str(certs / "daemon.pem"), str(certs / "daemon.key"))
    port = free_port()
    address = f"tls://127.0.0.1:{port}"
    procs([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
           "--protocol", "tls", "--no-dashboard", "--tls-ca-file", daemon.ca, "--tls-cert", daemon.cert,
           "--tls-key", daemon.key], tmp_path / "scheduler.log")
    procs(worker_args(address, *tls_args(worker_files(certs))), tmp_path / "worker.log",
          env={"PYTHONPATH": str(REPO)})
    song = tmp_path / "lib" / "ok.txt"
    song.parent.mkdir()
    song.write_text("ok")
    s = spec()
    ex = DaskAnalysisExecutor(
        s, versions={"playlistgen": __version__, "analyzer": "scripted-" + ANALYZER_VERSION}, scheduler=address,
        listen="", tls=daemon, path_map={}, max_ship_mb=10, max_attempts=2, fallback="wait", timeout_s=60,
        local_factory=lambda: AnalysisExecutor(s, workers=1, timeout_s=8, max_memory_mb=500, max_tasks_per_child=9),
        models_dir=s.models_dir)
    try:
        ex.start()
        assert isinstance(registry.backends["tls"], guard.GuardedTLSBackend) and guard._trusted == frozenset()
        wait_for(lambda: ex.capacity == 1, 120, "the worker, through the external scheduler")
        ex.submit(1, str(song))
        outcome = None
        for _ in range(120):
            got = ex.poll(0.5)
            if got:
                outcome = got[0]
                break
        assert outcome is not None and outcome.error is None and outcome.result.metadata["command"] == "ok", outcome
        assert outcome.result.worker.host and outcome.result.worker.address.startswith("tls://")
    finally:
        assert ex.close(grace_s=0) == []
    assert not isinstance(registry.backends["tls"], guard.GuardedTLSBackend)   # restored on close

"""Analysis on a real Dask cluster on loopback: a scheduler and `playlistgen worker` processes
started here, a real `playlistgen serve` with ``analysis.executor: dask``. A worker killed with
SIGKILL mid-file, the scheduler stopped and restarted, a worker with another analyzer version,
TLS with certificates from `playlistgen cluster certs` (and, when this runs as root with
``ip netns``, a worker in its own network namespace so the bytes cross a real interface)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from playlistgen import __version__
from playlistgen.config import Settings, validate
from playlistgen.core.analysis.version import ANALYZER_VERSION
from playlistgen.core.storage import maintenance
from playlistgen.core.storage.db import connect
from playlistgen.core.storage.records import from_blob
from playlistgen.errors import ConfigError
from tests.conftest import REPO, ChildProcess, free_port, run_cli
from tests.helpers import features_per_track, make_song, status, wait_for

FAKE_VERSION = "essentia-0.0.0-test"


@pytest.fixture
def procs():  # type: ignore[no-untyped-def]
    """Start a scheduler or worker process (``prefix``: e.g. ``ip netns exec NAME``) with conftest's
    runner; all are killed (their groups too) at the end."""
    started: list[ChildProcess] = []

    def start(args: list[str], log: Path, env: dict | None = None, prefix: tuple[str, ...] = ()) -> ChildProcess:
        p = ChildProcess([*prefix, *args], log, env=env)
        started.append(p)
        return p

    yield start
    for p in reversed(started):
        p.stop(signal.SIGKILL)


def scheduler_args(port: int) -> list[str]:
    return [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
            "--no-dashboard", "--dashboard-address", "127.0.0.1:0"]


def worker_args(address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "playlistgen", "worker", "--scheduler", address, "--nworkers", "1", *extra]


def health(daemon) -> dict:  # type: ignore[no-untyped-def]
    return requests.get(daemon.url + "/api/v1/performance/async-processor/health", timeout=10).json()["executor"]


def remote(daemon) -> list[dict]:  # type: ignore[no-untyped-def]
    return [w for w in health(daemon)["workers"] if w.get("remote") and w["alive"] and w["pid"]]


def dask_env(**extra: str) -> dict:
    return {"PLAYLISTGEN_ANALYSIS__EXECUTOR": "dask", "PLAYLISTGEN_ANALYSIS__PRESET": "fast",
            "PLAYLISTGEN_ANALYSIS__WORKERS": "1", "PLAYLISTGEN_LIBRARY__SETTLE_SECONDS": "0.5",
            "PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S": "0", **extra}


# ----------------------------------------------------------------------------- safety checks (fast)

@pytest.mark.parametrize("scheduler,listen,tls,ok", [
    ("tcp://127.0.0.1:8786", "", False, True),
    ("", "", False, True),                                   # embedded, tcp on loopback
    ("tcp://192.168.1.20:8786", "", False, False),           # plain TCP on the network
    ("", "tcp://0.0.0.0:8786", False, False),
    ("tls://192.168.1.20:8786", "", False, False),           # TLS without certificates
    ("tls://192.168.1.20:8786", "", True, True),
    ("", "", True, True),                                    # embedded: tls://0.0.0.0 by default
    ("http://127.0.0.1:8786", "", False, False),
])
def test_config_refuses_unsafe_dask_addresses(scheduler: str, listen: str, tls: bool, ok: bool) -> None:
    settings = Settings()
    a = settings.analysis
    a.executor, a.dask_scheduler, a.dask_listen = "dask", scheduler, listen
    if tls:
        a.dask_tls_ca, a.dask_tls_cert, a.dask_tls_key = "ca.pem", "c.pem", "c.key"
    if ok:
        validate(settings)
    else:
        with pytest.raises(ConfigError) as err:
            validate(settings)
        assert "dask_" in err.value.one_line() and "\n" not in err.value.one_line()


def test_partial_tls_settings_refused() -> None:
    settings = Settings()
    settings.analysis.dask_tls_ca = "ca.pem"
    with pytest.raises(ConfigError, match="must be set together"):
        validate(settings)


def test_worker_and_serve_refuse_plain_tcp_on_the_network(tmp_path: Path) -> None:
    proc = run_cli("worker", "--scheduler", "tcp://10.1.2.3:8786", timeout=60)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "plain tcp://" in lines[0] and "tls://" in lines[0], proc.stderr
    (tmp_path / "lib").mkdir()
    proc = run_cli("serve", "--library", str(tmp_path / "lib"), cwd=tmp_path, timeout=60,
                   env=dask_env(PLAYLISTGEN_ANALYSIS__DASK_SCHEDULER="tcp://10.1.2.3:8786"))
    assert proc.returncode != 0 and "analysis.dask_scheduler" in proc.stderr and "Traceback" not in proc.stderr


# ----------------------------------------------------------------------------- a real cluster

SONG_S = 120.0   # long enough that a kill usually lands mid-file (fast preset: ~1 s per file)


def kill_a_busy_worker(daemon, timeout: float = 120) -> int:  # type: ignore[no-untyped-def]
    """SIGKILL a Dask worker process while it analyses a file; returns its pid (waits: on a loaded
    machine the daemon may still be registering its plugin when both workers show up)."""
    busy = wait_for(lambda: [w for w in remote(daemon) if w["busy"]], timeout, "a remote worker analysing a file")
    os.kill(busy[0]["pid"], signal.SIGKILL)
    return busy[0]["pid"]


def test_a_worker_whose_announcement_was_lost_is_asked_again(tmp_path: Path, daemon_factory, procs) -> None:  # type: ignore[no-untyped-def]
    """Dask drops an event a worker sends while it re-registers with a restarted scheduler: the
    worker's "ready" never arrives and the daemon shows it without a pid. The daemon registers its
    plugin again for such a silent worker, which announces itself once more."""
    (tmp_path / "library").mkdir()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs(scheduler_args(port), tmp_path / "scheduler.log")
    daemon = daemon_factory(env=dask_env(PLAYLISTGEN_ANALYSIS__DASK_SCHEDULER=address))
    daemon.wait_ready(60)
    lossy = procs([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1",
                   "--no-dashboard", "--preload", "tests.dask_lossy_worker"], tmp_path / "lossy.log",
                  env={"PYTHONPATH": str(REPO)})
    wait_for(lambda: "dropped the first ready" in (tmp_path / "lossy.log").read_text(), 120, "the lost announcement")
    wait_for(lambda: len(remote(daemon)) == 1, 120, "the silent worker announced again")
    assert "never announced themselves" in daemon.log_path.read_text()
    lossy.stop()
    assert daemon.stop(signal.SIGTERM) == 0, daemon.log_path.read_text()[-3000:]


def test_cluster_kill_fallback_restart_and_refusal(tmp_path: Path, daemon_factory, procs) -> None:  # type: ignore[no-untyped-def]
    library = tmp_path / "library"
    for i in range(10):
        make_song(library / "Artist" / f"{i:02d} - a{i}.wav", i, seconds=SONG_S)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = procs(scheduler_args(port), tmp_path / "scheduler.log")
    workers = [procs(worker_args(address), tmp_path / f"worker{i}.log") for i in range(2)]
    daemon = daemon_factory(env=dask_env(PLAYLISTGEN_ANALYSIS__DASK_SCHEDULER=address))
    daemon.wait_ready(60)
    wait_for(lambda: len(remote(daemon)) == 2, 120, "two remote workers")

    # a worker killed mid-file: Dask runs the file elsewhere; nothing is lost or done twice. A kill
    # can land just after the file finished (the worker still shows busy until the daemon collects
    # the result): then no crash happened, so kill again while files remain.
    for attempt in range(3):
        if attempt and status(daemon)["counts"]["done"] == 10:
            break
        kill_a_busy_worker(daemon)
        try:
            wait_for(lambda: health(daemon)["restarts"].get("crash", 0) >= 1, 20, "the crash to be counted")
            break
        except AssertionError:
            if status(daemon)["counts"]["done"] == 10:
                break
            wait_for(lambda: len(remote(daemon)) == 2, 120, "the replacement worker")
    wait_for(lambda: status(daemon)["counts"]["done"] == 10, 240, "all files analysed after the kill")
    h = health(daemon)
    assert h["restarts"].get("crash", 0) >= 1 and h["failed"] == 0, h
    assert h["dask"]["files_shipped"] >= 10 and h["dask"]["bytes_shipped"] >= 10 * SONG_S * 22050 * 2
    assert status(daemon)["analysis"]["analysed"] == 10
    # visible in /metrics and in the dashboard's processes panel (resource-usage)
    metrics = requests.get(daemon.url + "/metrics", timeout=10).text
    assert "playlistgen_dask_bytes_shipped_total" in metrics and 'playlistgen_dask_worker_tasks_total{' in metrics
    def remote_rows() -> int:  # the killed worker's nanny starts a replacement, which joins a little later
        rows = requests.get(daemon.url + "/api/v1/performance/resource-usage", timeout=10).json()["processes"]
        return sum(1 for r in rows if r.get("remote") and r["host"] and r["pid"])

    wait_for(lambda: remote_rows() == 2, 60, "both remote workers in the processes panel")

    # the scheduler goes away: health says so, new files are analysed locally
    scheduler.stop(signal.SIGKILL)
    wait_for(lambda: not health(daemon)["dask"]["connected"], 60, "daemon noticed the scheduler is gone")
    assert health(daemon)["dask"]["mode"] == "local-fallback"
    for i in range(10, 12):
        make_song(library / "Artist" / f"{i:02d} - b{i}.wav", i, seconds=10.0)
    wait_for(lambda: status(daemon)["counts"]["done"] == 12, 180, "local fallback analysed the new files")
    assert health(daemon)["dask"]["files_local"] >= 2

    # it comes back: the workers and the daemon reconnect, analysis is remote again
    shipped = health(daemon)["dask"]["files_shipped"]
    procs(scheduler_args(port), tmp_path / "scheduler2.log")
    wait_for(lambda: health(daemon)["dask"]["connected"] and len(remote(daemon)) == 2, 180, "reconnected")
    for i in range(12, 14):
        make_song(library / "Artist" / f"{i:02d} - c{i}.wav", i, seconds=10.0)
    wait_for(lambda: status(daemon)["counts"]["done"] == 14, 180, "remote analysis after the restart")
    assert health(daemon)["dask"]["files_shipped"] >= shipped + 2

    # a worker with another analyzer version is refused, with one line naming both versions
    refused = procs(worker_args(address), tmp_path / "refused.log",
                    env={"PLAYLISTGEN_TEST_ANALYZER_VERSION": FAKE_VERSION})
    refused.proc.wait(120)
    assert refused.proc.returncode not in (0, None)
    out = refused.output()
    ours = health(daemon)
    assert "refused" in out and FAKE_VERSION in out and "pip install playlistgen==" in out, out
    wait_for(lambda: health(daemon)["dask"]["refused"], 30, "the daemon saw the refusal")
    assert health(daemon)["dask"]["refused"][0]["reason"].count("analyzer") >= 2

    assert daemon.stop(signal.SIGTERM) == 0, daemon.log_path.read_text()[-3000:]
    db = tmp_path / "playlistgen.db"
    assert features_per_track(db) == [1] * 14
    assert maintenance.check_database(db) == []
    for w in workers:
        w.stop()
    assert ours["state"] == "running"


def test_scan_analyses_on_the_dask_cluster(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    """`scan` uses the configured executor: with ``analysis.executor: dask`` and
    ``dask_fallback: wait`` nothing can be analysed in the scan process itself, so both files
    being analysed means the cluster's worker did it (scan waits for that worker to join)."""
    library = tmp_path / "library"
    for i in range(2):
        make_song(library / f"{i:02d} - tiny.wav", 400 + i, seconds=4.0)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs(scheduler_args(port), tmp_path / "scheduler.log")
    worker = procs(worker_args(address), tmp_path / "worker.log")
    env = dask_env(PLAYLISTGEN_ANALYSIS__DASK_SCHEDULER=address, PLAYLISTGEN_ANALYSIS__DASK_FALLBACK="wait")
    proc = run_cli("scan", str(library), cwd=tmp_path, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "analysed 2, failed 0" in proc.stdout, proc.stdout + proc.stderr
    assert features_per_track(tmp_path / "playlistgen.db") == [1, 1]
    assert "Starting Worker plugin playlistgen-analyzer" in worker.output()   # registered by the scan


# ----------------------------------------------------------------------------- TLS (+ a namespace)

class NetNs:
    """A private network namespace joined to this one by a veth pair (root + `ip netns` only)."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 10000}"
        self.name, self.host_if, self.ns_if = f"pg13-{tag}", f"pg13h{tag}", f"pg13n{tag}"
        subnet = random.randint(1, 250)
        self.host_ip, self.ns_ip = f"10.213.{subnet}.1", f"10.213.{subnet}.2"

    def create(self) -> bool:
        if os.geteuid() != 0 or not shutil.which("ip"):
            return False
        cmds = [f"ip netns add {self.name}", f"ip link add {self.host_if} type veth peer name {self.ns_if}",
                f"ip link set {self.ns_if} netns {self.name}", f"ip addr add {self.host_ip}/24 dev {self.host_if}",
                f"ip link set {self.host_if} up", f"ip netns exec {self.name} ip link set lo up",
                f"ip netns exec {self.name} ip addr add {self.ns_ip}/24 dev {self.ns_if}",
                f"ip netns exec {self.name} ip link set {self.ns_if} up"]
        for cmd in cmds:
            if subprocess.run(cmd.split(), capture_output=True, timeout=20).returncode != 0:
                self.delete()
                return False
        return True

    def bytes_in_out(self) -> tuple[int, int]:
        stats = Path(f"/sys/class/net/{self.host_if}/statistics")
        return int((stats / "rx_bytes").read_text()), int((stats / "tx_bytes").read_text())

    def delete(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=20)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=20)


@pytest.fixture
def netns():  # type: ignore[no-untyped-def]
    ns = NetNs()
    created = ns.create()
    yield ns if created else None
    if created:
        ns.delete()


def test_tls_cluster_with_certs_and_models_from_the_daemon(tmp_path: Path, daemon_factory, procs,  # type: ignore[no-untyped-def]
                                                           netns) -> None:
    certs = tmp_path / "certs"
    made = run_cli("cluster", "certs", str(certs), "--host", netns.host_ip if netns else "127.0.0.1")
    assert made.returncode == 0, made.stderr
    assert "playlistgen worker --scheduler tls://" in made.stdout and "scp " in made.stdout
    assert (certs / "worker.key").stat().st_mode & 0o777 == 0o600
    assert run_cli("cluster", "certs", str(certs)).returncode != 0   # never overwrites silently

    library = tmp_path / "library"
    make_song(library / "Artist" / "Album" / "01 - one.wav", 1, seconds=12.0)
    make_song(library / "Artist" / "Album" / "02 - two.wav", 2, seconds=12.0)
    host = netns.host_ip if netns else "127.0.0.1"
    listen = f"tls://{host}:{free_port()}"
    daemon = daemon_factory(env=dask_env(
        PLAYLISTGEN_ANALYSIS__PRESET="balanced", PLAYLISTGEN_ANALYSIS__DASK_LISTEN=listen,
        PLAYLISTGEN_ANALYSIS__DASK_TLS_CA=str(certs / "ca.pem"),
        PLAYLISTGEN_ANALYSIS__DASK_TLS_CERT=str(certs / "daemon.pem"),
        PLAYLISTGEN_ANALYSIS__DASK_TLS_KEY=str(certs / "daemon.key")))
    daemon.wait_ready(60)
    before = netns.bytes_in_out() if netns else (0, 0)
    no_models = tmp_path / "worker-has-no-models"
    no_models.mkdir()
    procs(worker_args(listen, "--tls-ca", str(certs / "ca.pem"), "--tls-cert", str(certs / "worker.pem"),
                      "--tls-key", str(certs / "worker.key")), tmp_path / "worker.log",
          env={"PLAYLISTGEN_ANALYSIS__MODELS_DIR": str(no_models)},
          prefix=("ip", "netns", "exec", netns.name) if netns else ())
    wait_for(lambda: status(daemon)["counts"]["done"] == 2, 300, "both files analysed over TLS")
    h = health(daemon)
    assert h["dask"]["tls"] and h["dask"]["files_shipped"] == 2 and h["dask"]["files_local"] == 0, h
    assert sum(w["tasks_done"] for w in h["workers"] if w.get("remote")) == 2
    conn = connect(tmp_path / "playlistgen.db")
    embeddings = conn.execute("SELECT count(*) FROM features WHERE embedding IS NOT NULL").fetchall()[0][0]
    tags = conn.execute("SELECT count(DISTINCT track_id) FROM tags").fetchall()[0][0]
    assert embeddings == 2 and tags == 2   # the MusiCNN models travelled from the daemon
    # the same numbers as a local analysis of the same file (and the same names from its folders)
    one = library / "Artist" / "Album" / "01 - one.wav"
    local = json.loads(run_cli("analyze", "--json", "--preset", "balanced", str(one), timeout=300).stdout)
    local = local[0] if isinstance(local, list) else local
    columns = ("bpm", "key", "scale", "loudness_lufs", "energy", "danceability", "spectral_centroid")
    row = conn.execute(f"SELECT {', '.join(columns)}, embedding, t.artist, t.album, t.title FROM features f "
                       "JOIN tracks t ON t.id = f.track_id JOIN files ON files.track_id = t.id "
                       "WHERE files.path = ?", (str(one),)).fetchall()[0]
    assert dict(zip(columns, row[:len(columns)], strict=True)) == {c: local[c] for c in columns}
    assert np.allclose(from_blob(row[len(columns)]), local["embedding"], atol=1e-6)
    assert list(row[-3:]) == [local["metadata"][k] for k in ("artist", "album", "title")]
    if netns:
        rx, tx = netns.bytes_in_out()
        shipped = h["dask"]["bytes_shipped"]
        assert tx - before[1] > shipped, "the audio crossed the veth pair"
        assert rx - before[0] > 0
        print(f"netns: {tx - before[1]} bytes out, {rx - before[0]} in over {netns.host_if}; shipped {shipped}")
    assert daemon.stop(signal.SIGTERM) == 0


# ----------------------------------------------------------------------------- the executor itself

def scripted_cluster(tmp_path: Path, procs, timeout_s: float = 8, **kwargs):  # type: ignore[no-untyped-def]
    """A scheduler, two `playlistgen worker` processes and, in this process, a Dask executor with
    the scripted test analyzer (tests/executor_helpers.py); returns it (not started) and the files."""
    from playlistgen.core.execution.dask.config import TlsFiles
    from playlistgen.core.execution.dask.executor import DaskAnalysisExecutor
    from playlistgen.core.execution.local import AnalysisExecutor
    from tests.executor_helpers import spec

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs(scheduler_args(port), tmp_path / "scheduler.log")
    for i in range(2):
        procs(worker_args(address), tmp_path / f"worker{i}.log", env={"PYTHONPATH": str(REPO)})
    scripts = {"ok": "ok", "hang": "sleep 120", "segv": "segv", "slow": "sleep 10"}
    files = {name: tmp_path / "lib" / f"{name}.txt" for name in scripts}
    files["ok"].parent.mkdir()
    for name, path in files.items():
        path.write_text(scripts[name])
    s = spec()
    ex = DaskAnalysisExecutor(
        s, versions={"playlistgen": __version__, "analyzer": "scripted-" + ANALYZER_VERSION}, scheduler=address,
        listen="", tls=TlsFiles(), path_map={}, max_ship_mb=10, max_attempts=2, fallback="wait", timeout_s=timeout_s,
        local_factory=lambda: AnalysisExecutor(s, workers=1, timeout_s=8, max_memory_mb=500, max_tasks_per_child=9),
        models_dir=s.models_dir, **kwargs)
    return ex, files


def outcomes_of(ex, file_ids: set[int], timeout: float, what: str) -> dict:  # type: ignore[no-untyped-def]
    """Poll until every file in ``file_ids`` has its outcome: exactly one each, none for others."""
    got: dict = {}

    def step() -> bool:
        for o in ex.poll(0.5):
            assert o.file_id in file_ids and o.file_id not in got, f"unexpected or second outcome {o} ({got})"
            got[o.file_id] = o
        return got.keys() == file_ids

    wait_for(step, timeout, what)
    return got


def test_executor_timeout_and_a_file_that_kills_every_worker(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    """The executor in this process with the scripted test analyzer on two real workers: a
    normal file, a file that hangs (per-file timeout, its worker restarted), and one that
    segfaults every worker it touches (failed after dask_max_attempts, the others unharmed).
    Every file submitted ends in exactly one outcome, and a timed-out file is not run again
    elsewhere (it once was, blocking a worker, so that a later file never started)."""
    ex, files = scripted_cluster(tmp_path, procs)
    try:
        ex.start()
        wait_for(lambda: ex.capacity == 2, 120, "two workers")
        for i, name in enumerate(("ok", "hang", "segv")):
            ex.submit(i, str(files[name]))
        got = outcomes_of(ex, {0, 1, 2}, 240, "three outcomes")
        ok, hang, segv = got[0], got[1], got[2]
        assert ok.error is None and ok.result.metadata["command"] == "ok" and ok.result.worker.host
        assert hang.error == "timed out after 8 s" and not hang.requeue
        assert segv.error.startswith("analysis killed 2 Dask worker(s)") and not segv.requeue, segv.error
        h = ex.health()
        assert h["restarts"]["timeout"] == 1 and h["restarts"].get("crash", 0) >= 1
        assert h["dask"]["files_shipped"] == 3 and h["failed"] == 2 and h["succeeded"] == 1
        wait_for(lambda: ex.capacity == 2, 120, "the stuck and crashed workers were replaced")
        assert outcomes_of(ex, set(), 1, "no late outcome") == {}
        # two files at once: one per worker, so neither may sit behind a re-run of the hanging file
        ex.submit(9, str(files["ok"]))
        # a worker that mounts the library reads it itself (dask_path_map): no bytes shipped
        ex.path_map = {str(files["ok"].parent): str(files["ok"].parent)}
        ex.submit(10, str(files["ok"]))
        done = outcomes_of(ex, {9, 10}, 60, "two files after that")
        assert done[9].error is None and done[10].error is None, done
        # a file above dask_max_ship_mb is analysed here
        ex.path_map, ex.max_ship_bytes = {}, 1
        ex.submit(11, str(files["ok"]))
        local = outcomes_of(ex, {11}, 120, "the big file, locally")[11]
        assert local.error is None and local.result.worker.host
        d = ex.health()["dask"]
        assert (d["files_shipped"], d["files_path_mapped"], d["files_local"]) == (4, 1, 1), d
    finally:
        assert ex.close(grace_s=0) == []


def test_executor_hands_back_a_file_no_worker_starts(tmp_path: Path, procs) -> None:  # type: ignore[no-untyped-def]
    """A file no worker starts within start_timeout_s is handed back (one re-queue outcome) and
    never runs later. Its worker is left alone when it is busy with one of our files, and
    restarted when its only thread is taken by a task nobody waits for any more (a "zombie")."""
    from playlistgen.core.execution.dask.worker import analyse_file

    ex, files = scripted_cluster(tmp_path, procs, timeout_s=30, start_timeout_s=2)
    starts: list[tuple[int, str, int]] = []
    on_start = ex._on_start
    ex._on_start = lambda msg: (starts.append((msg["file_id"], msg["address"], msg["pid"])), on_start(msg))[1]  # type: ignore[method-assign]

    def started(file_id: int) -> str | None:
        ex.health()   # applies the workers' events (and never consumes outcomes)
        return next((address for f, address, _ in starts if f == file_id), None)

    try:
        ex.start()
        wait_for(lambda: ex.capacity == 2, 120, "two workers")
        # both workers busy with our files: a third waits, is handed back, no worker is restarted
        for file_id in (1, 2):
            ex.submit(file_id, str(files["slow"]))
            wait_for(lambda f=file_id: started(f), 60, f"slow file {file_id} started")
        ex.submit(3, str(files["ok"]))
        got = outcomes_of(ex, {1, 2, 3}, 60, "two results and a re-queue")
        assert got[1].error is None and got[2].error is None, got
        assert got[3].requeue and "no Dask worker started it within 2 s" in got[3].error, got[3]
        assert "stuck" not in ex.health()["restarts"] and started(3) is None

        # a zombie: a file still running on a worker although nobody waits for it any more, while
        # our slow file keeps the other worker busy, so Dask sends the next file to the zombie
        ex.submit(5, str(files["slow"]))
        wait_for(lambda: started(5), 60, "slow file started")
        zombie = ex._client.submit(analyse_file, 90, "/zombie.txt", b"sleep 120", None, pure=False)
        zombie_at = wait_for(lambda: started(90), 60, "the zombie started")
        zombie.cancel()
        ex.submit(4, str(files["ok"]))
        got = outcomes_of(ex, {4, 5}, 60, "a re-queue and a result")
        assert got[4].requeue and got[5].error is None, got
        assert ex.health()["restarts"]["stuck"] == 1
        ex.start_timeout_s = 30   # from here on, files must start (on a loaded machine too)
        wait_for(lambda: ex.capacity == 2 and zombie_at not in {w["address"] for w in ex.health()["workers"]}, 120,
                 "the zombie's worker replaced")
        ex.submit(4, str(files["ok"]))   # as the job queue does with a re-queued file
        again = outcomes_of(ex, {4}, 60, "the re-queued file analysed")[4]
        assert again.error is None and again.result.metadata["command"] == "ok", again
        assert [f for f, *_ in starts].count(4) == 1   # handed back only while not started: analysed once

        # a worker that dies after finishing a file, before its result was fetched: Dask runs the
        # file again (its result lived on that worker only); meanwhile poll() is not blocked, and
        # no crash is counted against the file
        crashes = ex.health()["restarts"].get("crash", 0)
        (files["ok"].parent / "six.txt").write_text("sleep 6")
        ex.submit(6, str(files["ok"].parent / "six.txt"))
        wait_for(lambda: started(6), 60, "file 6 started")
        wait_for(lambda: any(ex._client.who_has().values()), 60, "file 6 finished, result not fetched")
        os.kill(next(pid for f, _, pid in starts if f == 6), signal.SIGKILL)
        six = outcomes_of(ex, {6}, 120, "file 6 after its worker died")[6]
        assert six.error is None and six.result.metadata["command"] == "sleep", six
        assert [f for f, *_ in starts].count(6) == 2 and ex.health()["restarts"].get("crash", 0) == crashes
    finally:
        assert ex.close(grace_s=0) == []


def test_dask_is_imported_only_by_the_dask_executor() -> None:
    """`playlistgen --help` and the serve process with another executor never import Dask."""
    code = ("import sys; from playlistgen.cli import cli; import playlistgen.daemon, playlistgen.api, "
            "playlistgen.core.observe.metrics, playlistgen.core.observe.resources, playlistgen.commands.worker; "
            "from playlistgen.config import load_settings; load_settings(environ={}); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
    assert run_cli("worker", "--help").returncode == 0

"""Shared fixtures: real SQLite files in tmp_path, a real daemon process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from playlistgen.core.storage.db import Database

REPO = Path(__file__).resolve().parents[1]


def child_env(extra: dict | None = None) -> dict:
    """The environment for a child `playlistgen`: no stray PLAYLISTGEN_* from the caller, the
    models `make test` installed in the repository (real models, converted offline), and the data
    folder of keys given nowhere (the database...) in the child's own working folder, not in ~."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYLISTGEN_")}
    env["PLAYLISTGEN_ANALYSIS__MODELS_DIR"] = str(REPO / "models")
    env["PLAYLISTGEN_DATA_DIR"] = "."
    env.update(extra or {})
    return env


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "test.db", pool_min=1, pool_max=4, batch_size=32)
    yield db
    db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `playlistgen` entry point in a child process."""
    return subprocess.run([sys.executable, "-m", "playlistgen", *args], cwd=cwd, env=child_env(env),
                          capture_output=True, text=True, timeout=timeout)


class ChildProcess:
    """A real child process (a daemon, a Dask scheduler or worker) with its output in a log file,
    in a session of its own: :meth:`stop` signals it, waits, and then kills its whole group, so
    no grandchild (an analysis worker) outlives a test."""

    def __init__(self, argv: list[str], log_path: Path, *, env: dict | None = None, cwd: Path | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=child_env(env), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


PLAYLISTGEN = (sys.executable, "-m", "playlistgen")


class Daemon(ChildProcess):
    """A real `playlistgen serve` process on a free port (``launcher``: how to start playlistgen)."""

    def __init__(self, workdir: Path, *args: str, env: dict | None = None,
                 launcher: tuple[str, ...] = PLAYLISTGEN) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([*launcher, "serve", "--port", str(self.port), *args], workdir / "daemon.log",
                         env=env, cwd=workdir)

    def wait_ready(self, timeout: float = 20) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited early:\n{self.output()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code in (200, 503):
                    return time.monotonic() - started
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"daemon not ready after {timeout}s:\n{self.output()}")


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator:
    started: list[Daemon] = []

    def start(*args: str, env: dict | None = None, workdir: Path | None = None) -> Daemon:
        d = Daemon(workdir or tmp_path, *args, env=env)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop(9)


@pytest.fixture(scope="session")
def supysonic(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A real Subsonic server (supysonic, own cached virtualenv) on a free loopback port, serving a
    small tagged library: ``.url``, ``.user``, ``.password``, ``.library``, ``.songs`` (the files),
    ``.rescan()``. Skips loudly when its virtualenv cannot be built (no package index)."""
    from .subsonic_server import running_server

    with running_server(tmp_path_factory.mktemp("supysonic")) as server:
        yield server


@pytest.fixture(scope="session")
def supysonic_db(supysonic, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A playlistgen database with the supysonic library analysed (preset fast). Copy it before
    changing it: other tests share it."""
    db = tmp_path_factory.mktemp("supysonic-db") / "playlistgen.db"
    proc = run_cli("scan", str(supysonic.library), "--preset", "fast", "--workers", "1",
                   env={"PLAYLISTGEN_DATABASE__PATH": str(db)}, cwd=db.parent, timeout=600)
    assert proc.returncode == 0, proc.stderr
    check = Database(db)
    try:
        statuses = check.query("SELECT status, count(*) FROM files GROUP BY status")
    finally:
        check.close()
    assert statuses == [("done", len(supysonic.songs))], f"library not analysed: {statuses}\n{proc.stderr[-2000:]}"
    return db


# ---- the synthetic library (tests/playlist_fixtures.py): one database per test module ----

@pytest.fixture(scope="module")
def populated_library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, dict, Path]]:
    """(db, facts, root): a real database at ``root/test.db`` holding the synthetic library of
    ``playlist_fixtures.populate`` (files under ``root/library``). Shared by a module's tests:
    copy it or use another fixture to change what is stored."""
    from tests.playlist_fixtures import populated_library as populated

    yield from populated(tmp_path_factory.mktemp("library"))


def library_settings(root: Path, **playlists: object):  # type: ignore[no-untyped-def]
    """Settings for a library under ``root`` (``populated_library``'s layout): its folder, its
    database, playlists written to ``root/playlists``; ``playlists`` sets playlists.* keys."""
    from playlistgen.config import Settings

    settings = Settings()
    settings.library.paths = [str(root / "library")]
    settings.database.path = str(root / "test.db")
    settings.playlists.output_dir = str(root / "playlists")
    for key, value in playlists.items():
        setattr(settings.playlists, key, value)
    return settings


# ---- issue 19: the HTTP app, built by playlistgen.app as `serve` builds it (without the daemon) ----

@pytest.fixture
def make_app(tmp_path: Path) -> Iterator:
    """``make_app(settings=None, db=None, **parts)`` → ``App.for_api(...)``: a fresh database in
    tmp_path and default settings unless given; ``parts`` are for_api's (metrics, cache,
    mediaserver, http...). Every app made is stopped at the end (its database closed)."""
    from playlistgen.app import App
    from playlistgen.config import Settings

    made: list = []

    def make(settings: Settings | None = None, db: Database | None = None, **parts: object) -> App:
        settings = settings or Settings()
        db = db or Database(tmp_path / "api.db", pool_min=1, pool_max=4)
        app = App.for_api(settings, db, **parts)
        made.append(app)
        return app

    yield make
    for app in reversed(made):
        app.stop()


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    """The API's parts on an empty database in tmp_path (``app.api`` is the Flask app)."""
    return make_app()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    """Flask's test client of ``app``."""
    return app.api.test_client()

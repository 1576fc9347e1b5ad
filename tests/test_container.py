"""Issue 21, points 13-16: what a newcomer hit with the Docker image, tested without Docker.

13: a root-owned bind mount (`-v /srv/playlists:/playlists`) is not writable by the image's uid
    10001: start-up and doctor say so, and a save answers a JSON error naming the folder and the
    fix instead of a 500. Here the daemon runs as `nobody` (setpriv) when the tests run as root,
    else the folder is made read-only (chmod 0555).
14: doctor reports TensorFlow as optional when the models are installed (the image leaves it out).
15: no musicnn wheel cache in the models folder; a .dockerignore that keeps .venv out of the context.
16: api.allowed_hosts through the environment, in the exact form the README gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from playlistgen.config import load_settings
from tests.conftest import REPO, child_env, free_port, run_cli
from tests.helpers import make_song, wait_for


@dataclass
class OtherUser:
    """Runs playlistgen as a user who cannot write into ``locked`` (a folder inside ``home``)."""

    home: Path
    locked: Path
    prefix: list[str]

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, sys.executable, "-m", "playlistgen", *args]


@pytest.fixture
def other_user() -> Iterator[OtherUser]:
    home = Path(tempfile.mkdtemp(prefix="playlistgen-user-"))
    home.chmod(0o755)
    locked = home / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot run playlistgen as another user")
        import pwd

        user = pwd.getpwnam("nobody")
        os.chown(home, user.pw_uid, user.pw_gid)   # `locked` stays root's, mode 0755: as a bind mount
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    else:
        locked.chmod(0o555)
        prefix = []
    try:
        yield OtherUser(home, locked, prefix)
    finally:
        locked.chmod(0o755)
        shutil.rmtree(home, ignore_errors=True)


def _own(user: OtherUser, *paths: Path) -> None:
    """Files made by the tests (as root) handed to the other user."""
    if user.prefix:
        stat = user.home.stat()
        for top in paths:
            for path in [top, *top.rglob("*")] if top.is_dir() else [top]:
                os.chown(path, stat.st_uid, stat.st_gid)


def test_save_into_an_unwritable_output_folder_names_the_folder_and_the_fix(other_user: OtherUser) -> None:
    home, locked = other_user.home, other_user.locked
    library = home / "library"
    for i in range(3):
        make_song(library / f"{i}.wav", i, seconds=3.0)
    scan = run_cli("scan", str(library), "--preset", "fast", "--workers", "1", cwd=home, timeout=300)
    assert scan.returncode == 0, scan.stderr[-2000:]
    _own(other_user, library, *home.glob("playlistgen.db*"))
    port = free_port()
    env = child_env({"HOME": str(home), "PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR": str(locked),
                     "PLAYLISTGEN_ANALYSIS__EXECUTOR": "thread", "PLAYLISTGEN_ANALYSIS__PRESET": "fast",
                     "PLAYLISTGEN_LIBRARY__WATCH": "false"})
    log_path = home / "daemon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(other_user.argv("serve", "--library", str(library), "--port", str(port)),
                                cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return requests.get(url + "/health", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, 60, "the daemon up")
        answer = requests.post(url + "/api/v1/playlists", timeout=60,
                               json={"strategy": "random", "size": 2, "save": True, "name": "mix"})
        body = answer.json()
        assert answer.status_code == 503, (answer.status_code, body)
        assert body["error"]["code"] == "folder_not_writable", body
        assert str(locked) in body["error"]["message"] and "playlists.output_dir" in body["error"]["message"]
        assert f"chown -R {os.geteuid() if not other_user.prefix else 65534}" in body["error"]["hint"], body
        assert "--user" in body["error"]["hint"], body
        # nothing half-saved: the playlist row went with the file
        assert requests.get(url + "/api/v1/playlists", timeout=10).json()["total"] == 0
    finally:
        proc.terminate()
        proc.wait(30)
    log_text = log_path.read_text()
    assert "Traceback" not in log_text, log_text
    # start-up said it before anybody saved
    assert f"playlists.output_dir '{locked}' is not writable" in log_text, log_text


def test_doctor_names_an_unwritable_output_and_database_folder(other_user: OtherUser) -> None:
    locked = other_user.locked
    env = child_env({"HOME": str(other_user.home), "PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR": str(locked),
                     "PLAYLISTGEN_DATABASE__PATH": str(locked / "playlistgen.db")})
    proc = subprocess.run(other_user.argv("doctor"), cwd=other_user.home, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout
    assert proc.returncode != 0
    assert f"[FAIL] playlists   output folder {locked}" in out, out
    assert f"[FAIL] database    {locked / 'playlistgen.db'}" in out, out
    assert out.count("chown -R") >= 2 and "docker run --user" in out, out


def test_unwritable_database_folder_is_one_line_with_the_fix(other_user: OtherUser) -> None:
    """A root-owned /data: the daemon (and every command) stops with one line naming the fix."""
    db = other_user.locked / "playlistgen.db"
    proc = subprocess.run(other_user.argv("db", "init", "--db", str(db)), cwd=other_user.home,
                          env=child_env({"HOME": str(other_user.home)}), capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and str(other_user.locked) in lines[0] and "chown -R" in lines[0], lines


# ---- 14 ------------------------------------------------------------------------------------------
def test_doctor_reports_tensorflow_as_optional_when_the_models_are_installed(tmp_path: Path) -> None:
    if not (REPO / "models" / "manifest.json").is_file():
        pytest.skip("models not installed: run `make models`")
    hidden = tmp_path / "hide"
    (hidden / "tensorflow").mkdir(parents=True)   # as in the image: no TensorFlow to import
    (hidden / "tensorflow" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'tensorflow'\")\n")
    (tmp_path / "library").mkdir()
    env = {"PYTHONPATH": os.pathsep.join([str(hidden), str(REPO)]),
           "PLAYLISTGEN_LIBRARY__PATHS": str(tmp_path / "library")}
    proc = run_cli("doctor", cwd=tmp_path, env=env, timeout=300)
    assert "[ok  ] tensorflow" in proc.stdout and "optional" in proc.stdout, proc.stdout
    assert "[FAIL] tensorflow" not in proc.stdout


def test_tensorflow_is_needed_while_the_models_are_not_built() -> None:
    from playlistgen.commands.doctor import _tensorflow_check

    check = _tensorflow_check(False, "not installed, does NOT import", models_installed=False)
    assert not check.ok and "playlistgen[convert]" in check.fix and "models install" in check.fix


# ---- 16 ------------------------------------------------------------------------------------------
def test_allowed_hosts_from_the_environment_as_the_readme_gives_it(daemon_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    form = "PLAYLISTGEN_API__ALLOWED_HOSTS='[myserver, myserver.lan]'"
    assert form in readme
    value = form.split("=", 1)[1].strip("'")
    settings = load_settings(None, environ={"PLAYLISTGEN_API__ALLOWED_HOSTS": value})
    assert settings.api.allowed_hosts == ["myserver", "myserver.lan"]
    (tmp_path / "library").mkdir()
    daemon = daemon_factory("--library", str(tmp_path / "library"),
                            env={"PLAYLISTGEN_API__ALLOWED_HOSTS": value})
    daemon.wait_ready(60)
    for host, expected in ((f"myserver:{daemon.port}", 200), (f"myserver.lan:{daemon.port}", 200),
                           (f"other:{daemon.port}", 403)):
        answer = requests.get(daemon.url + "/api/v1/library/status", headers={"Host": host}, timeout=10)
        assert answer.status_code == expected, (host, answer.status_code, answer.text)


# ---- 15 ------------------------------------------------------------------------------------------
def test_models_install_without_the_wheel_cache_leaves_only_the_models(tmp_path: Path) -> None:
    from playlistgen.core.analysis.models import WHEEL_NAME

    wheel = REPO / "models" / ".cache" / WHEEL_NAME
    if not wheel.is_file():
        pytest.skip("no cached musicnn wheel (make models keeps one in models/.cache)")
    target = tmp_path / "models"
    proc = run_cli("models", "install", "--models-dir", str(target), "--wheel", str(wheel), "--no-wheel-cache",
                   cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "msd_musicnn.onnx", "msd_musicnn.pb",
                                                         "mtt_musicnn.onnx", "mtt_musicnn.pb"]
    assert "msd_musicnn" in proc.stdout and " ok " in proc.stdout, proc.stdout

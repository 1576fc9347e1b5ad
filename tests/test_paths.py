"""Issue 21, point 3: where relative paths point does not depend on the folder playlistgen is
started in. A path on the command line is relative to the current folder, a path in a config file
to that file's folder, an environment path to the current folder; a key given nowhere lives in the
per-user data folder ($PLAYLISTGEN_DATA_DIR, else $XDG_DATA_HOME/playlistgen, else
~/.local/share/playlistgen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playlistgen.config import data_dir, load_settings
from playlistgen.config_paths import checkout_models
from tests.conftest import child_env
from tests.helpers import make_song

REPO = Path(__file__).resolve().parents[1]
MODELS_INSTALLED = (REPO / "models" / "manifest.json").is_file()


def plain_env(home: Path, **extra: str) -> dict:
    """A child's environment as a newcomer's shell has it: no PLAYLISTGEN_* at all (not even the
    test suite's models folder), HOME in a temporary folder, no XDG_* variables."""
    env = {k: v for k, v in child_env().items() if not k.startswith(("PLAYLISTGEN_", "XDG_"))}
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "playlistgen", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not MODELS_INSTALLED, reason="models not installed: run `make models`")
def test_scan_from_the_home_folder_with_the_repo_config_finds_the_models(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_song(home / "Music" / "a.wav", 1, seconds=4.0)
    # the repository's config.yaml names ./models: relative to the config file, not to ~
    proc = run(["--config", str(REPO / "config.yaml"), "scan", "Music", "--db", "my.db", "--workers", "1"],
               cwd=home, env=plain_env(home))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "analysed 1, failed 0" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert (home / "my.db").is_file()   # --db on the command line: relative to the current folder
    assert not (home / "models").exists()


@pytest.mark.skipif(not MODELS_INSTALLED, reason="models not installed: run `make models`")
def test_scan_from_the_home_folder_without_a_config_finds_the_checkouts_models(tmp_path: Path) -> None:
    """The newcomer's case: `make models` in the checkout, then `playlistgen scan ~/Music` from ~."""
    home = tmp_path / "home"
    make_song(home / "Music" / "a.wav", 1, seconds=4.0)
    proc = run(["scan", "Music", "--workers", "1"], cwd=home, env=plain_env(home))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "analysed 1, failed 0" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    data = home / ".local" / "share" / "playlistgen"
    assert (data / "playlistgen.db").is_file() and not (data / "models").exists()
    assert sorted(p.name for p in home.iterdir()) == [".local", "Music"]


def test_database_path_in_a_config_elsewhere_is_next_to_that_config(tmp_path: Path) -> None:
    conf, elsewhere = tmp_path / "etc", tmp_path / "cwd"
    conf.mkdir()
    elsewhere.mkdir()
    (conf / "config.yaml").write_text("database:\n  path: ./x.db\n")
    proc = run(["--config", str(conf / "config.yaml"), "db", "init"], cwd=elsewhere, env=plain_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (conf / "x.db").is_file() and not (elsewhere / "x.db").exists()


def test_without_a_config_the_database_goes_to_the_xdg_data_folder(tmp_path: Path) -> None:
    cwd, xdg = tmp_path / "cwd", tmp_path / "xdg"
    cwd.mkdir()
    proc = run(["db", "init"], cwd=cwd, env=plain_env(tmp_path, XDG_DATA_HOME=str(xdg)))
    assert proc.returncode == 0, proc.stderr
    assert (xdg / "playlistgen" / "playlistgen.db").is_file()
    assert list(cwd.iterdir()) == []
    # and without XDG_DATA_HOME: ~/.local/share/playlistgen
    proc = run(["db", "init"], cwd=cwd, env=plain_env(tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "home" / ".local" / "share" / "playlistgen" / "playlistgen.db").is_file()


def test_precedence_of_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf, cwd = tmp_path / "conf", tmp_path / "cwd"
    conf.mkdir()
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cfg = conf / "config.yaml"
    cfg.write_text("database:\n  path: db/x.db\nanalysis:\n  models_dir: ./models\n"
                   "library:\n  paths: [./music, /abs/music, '~/Music']\n")
    environ = {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    s = load_settings(str(cfg), environ=environ)
    assert s.database.path == str(conf / "db" / "x.db")                     # config file: its folder
    assert s.analysis.models_dir == str(conf / "models")
    assert s.library.paths == [str(conf / "music"), "/abs/music", os.path.expanduser("~/Music")]
    assert s.playlists.output_dir == str(tmp_path / "xdg" / "playlistgen" / "playlists")   # given nowhere
    assert s.analysis.dask_tls_ca == "" and s.mpd.music_directory == ""    # empty stays "none"
    assert s.config_file == str(cfg)
    s = load_settings(str(cfg), environ={**environ, "PLAYLISTGEN_DATABASE__PATH": "env.db"},
                      overrides={"analysis": {"models_dir": "cli-models"}})
    assert s.database.path == str(cwd / "env.db")                           # environment: current folder
    assert s.analysis.models_dir == str(cwd / "cli-models")                 # command line: current folder
    s = load_settings(None, environ={**environ, "PLAYLISTGEN_DATA_DIR": "state"})
    assert s.config_file == "" and s.database.path == str(cwd / "state" / "playlistgen.db")
    assert data_dir({"HOME": "/h"}) == Path("/h/.local/share/playlistgen")
    assert data_dir({"HOME": "/h", "XDG_DATA_HOME": "relative"}) == Path("/h/.local/share/playlistgen")  # spec


def test_doctor_shows_the_resolved_paths(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "config.yaml").write_text("database:\n  path: ./x.db\nplaylists:\n  output_dir: out\n")
    proc = run(["--config", str(conf / "config.yaml"), "doctor"], cwd=tmp_path,
               env=plain_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "xdg")))
    out = proc.stdout
    assert f"config file {conf / 'config.yaml'}" in out, out
    assert str(conf / "x.db") in out and str(conf / "out") in out, out
    # models given nowhere: the data folder's, or (none there) the checkout's that `make models` built
    assert f"models      {checkout_models() or tmp_path / 'xdg' / 'playlistgen' / 'models'}:" in out, out


def test_health_shows_the_resolved_paths(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"library:\n  paths: [lib]\ndatabase:\n  path: {tmp_path / 'api.db'}\n")
    settings = load_settings(str(cfg), environ={"HOME": str(tmp_path)})
    body = make_app(settings).api.test_client().get("/health").get_json()
    assert body["paths"] == {"config_file": str(cfg), "database": str(tmp_path / "api.db"),
                             "library": [str(tmp_path / "lib")],
                             "models_dir": str(checkout_models() or tmp_path / ".local" / "share" / "playlistgen"
                                               / "models"),
                             "output_dir": str(tmp_path / ".local" / "share" / "playlistgen" / "playlists"),
                             "data_dir": str(tmp_path / ".local" / "share" / "playlistgen")}


def test_health_shows_the_paths_only_to_a_caller_with_the_key(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(None, environ={"HOME": str(tmp_path), "PLAYLISTGEN_API__KEY": "k"})
    client = make_app(settings).api.test_client()
    assert "paths" not in client.get("/health").get_json()
    assert client.get("/health", headers={"X-API-Key": "k"}).get_json()["paths"]["database"] == settings.database.path


def test_models_in_the_data_folder_come_before_the_checkouts(tmp_path: Path) -> None:
    data, empty = tmp_path / "data", tmp_path / "nothing"
    (data / "models").mkdir(parents=True)
    (data / "models" / "manifest.json").write_text("{}")
    config = tmp_path / "empty.yaml"
    config.write_text("{}\n")
    s = load_settings(str(config), environ={"PLAYLISTGEN_DATA_DIR": str(data)})
    assert s.analysis.models_dir == str(data / "models")
    s = load_settings(str(config), environ={"PLAYLISTGEN_DATA_DIR": str(empty)})
    assert s.analysis.models_dir == str(checkout_models() or empty / "models")

"""The real `playlistgen` entry point in child processes: help, import weight, one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import run_cli
from tests.helpers import wait_for

HEAVY = ("essentia", "tensorflow", "librosa")


def imported_modules(stderr: str) -> set[str]:
    """Top-level module names from `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s+(.*)$", line)
        if match:
            names.add(match.group(1).strip().split(".")[0])
    return names


def test_help_is_light_and_has_examples() -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "playlistgen", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "Examples:" in proc.stdout and "serve" in proc.stdout and "db" in proc.stdout
    modules = imported_modules(proc.stderr)
    assert "click" in modules  # the parser saw real import lines
    assert not modules & set(HEAVY), modules & set(HEAVY)


@pytest.mark.parametrize("command", [["serve"], ["db"], ["db", "backup"], ["doctor"]])
def test_every_command_help_has_an_example(command: list[str]) -> None:
    proc = run_cli(*command, "--help")
    assert proc.returncode == 0 and "Example" in proc.stdout


def _mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_serve_process_loads_no_heavy_module(tmp_path: Path, daemon_factory) -> None:
    """The daemon process itself never loads Essentia, TensorFlow or librosa (numba/llvmlite);
    only its analysis workers do. Read from the kernel's memory map of each process, so the
    workers' own imports cannot be mistaken for the parent's."""
    (tmp_path / "library").mkdir()
    daemon = daemon_factory()
    daemon.wait_ready()
    parent = psutil.Process(daemon.proc.pid)
    # a worker that loaded Essentia, or the check below would prove nothing
    wait_for(lambda: [p for p in parent.children() if "essentia" in _mapped_libraries(p.pid)], 60,
             "a worker to load its analyzer (Essentia)")
    maps = _mapped_libraries(parent.pid)
    for heavy in ("essentia", "tensorflow", "llvmlite"):
        assert heavy not in maps, f"the daemon process loaded {heavy}"
    assert "apsw" in maps  # the map does list what the daemon really uses


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_missing_database_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run_cli("db", "check", "--db", str(tmp_path / "nope.db"), cwd=tmp_path))
    assert "does not exist" in line and "db init" in line


def test_bad_config_key_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("api:\n  prot: 1\n")
    line = one_line_error(run_cli("db", "stats", cwd=tmp_path))
    assert "api.prot" in line and "did you mean 'api.port'" in line


def test_bad_env_value_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run_cli("db", "init", cwd=tmp_path, env={"PLAYLISTGEN_API__PORT": "99999"}))
    assert "'api.port' must be at most 65535" in line


def test_serve_refuses_missing_library(tmp_path: Path) -> None:
    line = one_line_error(run_cli("serve", "--library", str(tmp_path / "missing"), cwd=tmp_path))
    assert "does not exist" in line and "mkdir -p" in line


def test_serve_refuses_public_bind_without_key(tmp_path: Path) -> None:
    (tmp_path / "library").mkdir()
    line = one_line_error(run_cli("serve", "--host", "0.0.0.0", cwd=tmp_path))
    assert "api.key" in line


def test_db_commands_end_to_end(tmp_path: Path) -> None:
    from playlistgen.core.storage.migrate import latest_version

    versions = ", ".join(str(v) for v in range(1, latest_version() + 1))
    assert f"applied migrations {versions};" in run_cli("db", "init", cwd=tmp_path).stdout
    assert "already at schema version" in run_cli("db", "init", cwd=tmp_path).stdout
    assert run_cli("db", "check", cwd=tmp_path).returncode == 0
    stats = run_cli("db", "stats", "--json", cwd=tmp_path)
    assert '"table": "files"' in stats.stdout
    backup = run_cli("db", "backup", str(tmp_path / "copy.db"), cwd=tmp_path)
    assert backup.returncode == 0 and (tmp_path / "copy.db").is_file()
    assert run_cli("db", "check", "--db", str(tmp_path / "copy.db"), cwd=tmp_path).returncode == 0
    assert run_cli("db", "vacuum", cwd=tmp_path).returncode == 0


def test_db_check_reports_corruption(tmp_path: Path) -> None:
    run_cli("db", "init", cwd=tmp_path)
    db = tmp_path / "playlistgen.db"
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # clobber the second page
    db.write_bytes(bytes(data))
    proc = run_cli("db", "check", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "problem" in proc.stderr or "malformed" in proc.stderr


def test_doctor_reports_and_says_what_to_fix(tmp_path: Path) -> None:
    proc = run_cli("doctor", cwd=tmp_path, timeout=300,
                   env={"PLAYLISTGEN_ANALYSIS__MODELS_DIR": str(tmp_path / "no-models")})
    out = proc.stdout
    for name in ("python", "essentia", "librosa", "apsw", "database", "library", "inotify", "models"):
        assert re.search(rf"\[(ok  |FAIL)\] {name}", out), name
    assert re.search(r"\[ok  \] apsw\s+\d", out)  # a version number
    # the library (given nowhere: in the data folder, here the child's folder) and the models do
    # not exist in an empty folder: doctor says what to do
    assert "[FAIL] library" in out and f"mkdir -p {tmp_path / 'library'}" in out
    assert "playlistgen models install" in out
    assert proc.returncode != 0

"""The project's own files install what it needs: every package ships, the Dockerfile names
files and commands that exist, and the README's config reference matches Settings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_for_the_wheel() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "playlistgen").rglob("__init__.py")}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"


def test_requirements_lock_pins_every_dependency_exactly() -> None:
    lines = [ln for ln in (REPO / "requirements.lock").read_text().splitlines() if ln and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", ln) for ln in lines), lines
    pinned = {ln.split("==")[0].lower().replace("_", "-") for ln in lines}
    for required in ("essentia-tensorflow", "tensorflow-cpu", "librosa", "watchdog", "flask", "apsw",
                     "cachetools", "psutil", "pytest", "waitress", "click", "prometheus-client"):
        assert required in pinned, required


def _docker_stages() -> dict[str, str]:
    text = (REPO / "Dockerfile.optimized").read_text()
    parts = re.split(r"^FROM .* AS (\w+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_dockerfile_copies_files_that_exist_and_runs_real_commands() -> None:
    from click.testing import CliRunner

    from playlistgen.cli import cli

    text = (REPO / "Dockerfile.optimized").read_text()
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M):
        for source in line.split()[:-1]:
            assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    commands = set(re.findall(r"bin/playlistgen ((?:models )?\w+)", text))
    commands |= set(re.findall(r'"playlistgen", "(\w+)"', text))
    assert commands >= {"models install", "serve"}
    for command in commands:
        result = CliRunner().invoke(cli, [*command.split(), "--help"])
        assert result.exit_code == 0, f"`playlistgen {command}` does not exist"


def test_dockerfile_env_overrides_are_real_keys_and_runtime_has_no_tensorflow() -> None:
    from playlistgen.config import load_settings

    stages = _docker_stages()
    assert list(stages) == ["builder", "runtime"]
    runtime = stages["runtime"]
    runtime_code = "\n".join(ln for ln in runtime.splitlines() if not ln.lstrip().startswith("#"))
    assert "tensorflow" not in runtime_code.lower() and "convert" not in runtime_code
    assert "convert]" in stages["builder"] and "convert]" not in runtime
    assert re.search(r"^USER (?!root)\w+", runtime, flags=re.M) and "HEALTHCHECK" in runtime and "/health" in runtime
    env = dict(re.findall(r"(PLAYLISTGEN_[A-Z_]+)=(\S+)", runtime))
    env["PLAYLISTGEN_API__KEY"] = "test"
    config_file = env.pop("PLAYLISTGEN_CONFIG")
    assert config_file == "/etc/playlistgen/config.yaml"
    settings = load_settings(str(REPO / "config.yaml"), environ=env)  # unknown keys would raise
    assert settings.library.paths == ["/library"] and settings.api.host == "0.0.0.0"
    assert settings.database.path == "/data/playlistgen.db" and settings.analysis.models_dir == "/opt/models"
    volumes = re.search(r"^VOLUME (.+)$", runtime, flags=re.M).group(1)
    for path in ("/library", "/data", "/playlists"):
        assert path in volumes


def test_makefile_mirrors_the_dockerfile() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "-c requirements.lock" in makefile and "models install" in makefile
    assert "playlistgen serve" in makefile


# ---- issue 21, point 15: a small build context and an image without the wheel cache ----------
def _dockerignore() -> list[str]:
    path = REPO / ".dockerignore"
    assert path.is_file(), "add a .dockerignore: a used checkout would send .venv (GBs) as build context"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_dockerignore_keeps_the_context_small_and_what_the_image_copies() -> None:
    import fnmatch

    patterns = _dockerignore()
    for heavy in (".venv", ".cache", "models", "library", "*.db", "playlists", ".git", "**/__pycache__"):
        assert heavy in patterns, heavy
    copied = {source for line in re.findall(r"^COPY (?!--from)(.+)$", (REPO / "Dockerfile.optimized").read_text(),
                                            flags=re.M) for source in line.split()[:-1]}
    excluded = [(s, p) for s in copied for p in patterns if not p.startswith("!") and fnmatch.fnmatch(s, p)]
    assert excluded == [], f"the Dockerfile copies what .dockerignore leaves out: {excluded}"


def test_image_builds_the_models_without_keeping_the_wheel() -> None:
    builder = _docker_stages()["builder"]
    install = re.search(r"playlistgen models install[^\n\\&]*", builder).group(0)
    assert "--no-wheel-cache" in install, install

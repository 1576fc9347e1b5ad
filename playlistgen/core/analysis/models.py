"""The offline ML models: build them from the ``musicnn`` wheel, describe them, check them.

No model hub is reachable, so the MusiCNN graphs are built locally from the TF1 checkpoints
shipped in the PyPI package ``musicnn==0.1.0`` (fetched with ``pip download``, never installed:
it pins numpy<1.17). The conversion imports TensorFlow, which must never happen in a process
that uses Essentia, so it runs in a child process (``convert_musicnn``). This module imports
neither TensorFlow nor Essentia.

Each model comes in two formats from the same checkpoint, for the two runtimes of
``analysis.ml_runtime``: a frozen TensorFlow graph (``.pb``, run by Essentia's bundled
TensorFlow) and an ONNX model (``.onnx``, run by onnxruntime; see analysis.onnx_build). Both are
built in the same child process; the manifest records each file's sha256 (the ONNX one under the
model's ``"onnx"`` key). Layout of ``models_dir``::

    msd_musicnn.pb  msd_musicnn.onnx  mtt_musicnn.pb  mtt_musicnn.onnx  manifest.json
    .cache/musicnn-0.1.0-py3-none-any.whl   (kept for offline re-installs; not with keep_wheel=False)
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ModelMissingError

logger = logging.getLogger(__name__)

SOURCE_PACKAGE = "musicnn"
SOURCE_VERSION = "0.1.0"
SOURCE = f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"
WHEEL_NAME = f"{SOURCE_PACKAGE}-{SOURCE_VERSION}-py3-none-any.whl"
MANIFEST = "manifest.json"
CACHE_DIR = ".cache"
CONVERTER = "playlistgen.core.analysis.convert_musicnn"
CONVERT_TIMEOUT_S = 600
PIP_TIMEOUT_S = 300
CHECKPOINT_FILES = (".meta", ".index", ".data-00000-of-00001")
INSTALL_HINT = "run `playlistgen models install`"
RUNTIMES = ("essentia", "onnx")     # the model formats: .pb for Essentia-TF, .onnx for onnxruntime
ONNX_IO = {"input": "mel", "output_tags": "tags", "output_embedding": "embedding"}
# The ONNX graph's layout version (analysis.onnx_build), kept in the manifest: `install` rebuilds
# ONNX models of an older layout (same outputs, slower). 2: dead filters left out (~4x faster).
ONNX_BUILD = 2


@dataclass(frozen=True)
class ModelSpec:
    """How one model is built from the wheel and what its graph looks like."""

    name: str
    checkpoint: str  # folder inside the wheel's musicnn/ package
    labels_var: str  # list variable in musicnn/configuration.py
    input: str = "model/Placeholder"
    output_tags: str = "model/Sigmoid"
    output_embedding: str = "model/dense/BiasAdd"
    embedding_size: int = 200
    sample_rate: int = 16000
    n_labels: int = 50

    @property
    def file(self) -> str:
        return f"{self.name}.pb"

    @property
    def onnx_file(self) -> str:
        return f"{self.name}.onnx"


SPECS: dict[str, ModelSpec] = {
    "msd_musicnn": ModelSpec("msd_musicnn", "MSD_musicnn", "MSD_LABELS"),
    "mtt_musicnn": ModelSpec("mtt_musicnn", "MTT_musicnn", "MTT_LABELS"),
}


@dataclass(frozen=True)
class ModelInfo:
    """One installed (or expected) model; ``status`` is "ok", "missing" or "corrupt"."""

    name: str
    path: Path
    labels: tuple[str, ...]
    sha256: str
    input: str
    output_tags: str
    output_embedding: str
    status: str
    embedding_size: int = 200
    sample_rate: int = 16000
    runtime: str = "essentia"        # which runtime reads this file: "essentia" (.pb) or "onnx"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def size_bytes(self) -> int | None:
        try:
            return self.path.stat().st_size
        except OSError:
            return None


# ---------------------------------------------------------------------------------------------
# Reading the manifest


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_manifest(models_dir: Path) -> dict[str, Any] | None:
    """The manifest as a dict, or None when absent or unreadable (treated as not installed)."""
    path = models_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable model manifest %s: %s", path, exc)
        return None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        logger.warning("ignoring model manifest %s: no 'models' mapping", path)
        return None
    return data


def _status(path: Path, sha256: str) -> str:
    if not path.is_file():
        return "missing"
    return "ok" if sha256 and file_sha256(path) == sha256 else "corrupt"


def _info_from_entry(models_dir: Path, name: str, entry: dict[str, Any],
                     runtime: str = "essentia") -> ModelInfo:
    spec = SPECS.get(name)
    if runtime == "onnx":
        sub = entry.get("onnx")
        # No "onnx" key: built before the ONNX models existed, so they count as missing.
        entry = {**entry, **sub} if isinstance(sub, dict) else {
            **entry, **ONNX_IO, "file": f"{name}.onnx", "sha256": "", "missing": True}
    path = models_dir / str(entry.get("file", f"{name}.pb"))
    sha256 = str(entry.get("sha256", ""))
    labels = tuple(str(label) for label in entry.get("labels", ()))
    status = "missing" if entry.get("missing") else _status(path, sha256)
    if status == "ok" and spec is not None and len(labels) != spec.n_labels:
        status = "corrupt"  # a hand-edited manifest would silently misname every tag
    return ModelInfo(
        name=name, path=path, labels=labels, sha256=sha256,
        input=str(entry.get("input", "model/Placeholder")),
        output_tags=str(entry.get("output_tags", "model/Sigmoid")),
        output_embedding=str(entry.get("output_embedding", "model/dense/BiasAdd")),
        status=status,
        embedding_size=int(entry.get("embedding_size", 200)),
        sample_rate=int(entry.get("sample_rate", 16000)),
        runtime=runtime,
    )


def _missing_info(models_dir: Path, spec: ModelSpec, runtime: str = "essentia") -> ModelInfo:
    io = ONNX_IO if runtime == "onnx" else {"input": spec.input, "output_tags": spec.output_tags,
                                            "output_embedding": spec.output_embedding}
    file = spec.onnx_file if runtime == "onnx" else spec.file
    return ModelInfo(name=spec.name, path=models_dir / file, labels=(), sha256="", **io,
                     status="missing", embedding_size=spec.embedding_size,
                     sample_rate=spec.sample_rate, runtime=runtime)


def list_models(models_dir: Path, runtime: str = "essentia") -> list[ModelInfo]:
    """Every model in the manifest plus every expected one, with its verified status, in the
    format of ``runtime`` ("essentia": the .pb graphs, "onnx": the .onnx models)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown model runtime {runtime!r}")
    models_dir = Path(models_dir)
    manifest = read_manifest(models_dir) or {"models": {}}
    entries = manifest["models"]
    infos = [_info_from_entry(models_dir, name, entry, runtime)
             for name, entry in entries.items() if isinstance(entry, dict)]
    infos += [_missing_info(models_dir, spec, runtime)
              for name, spec in SPECS.items() if name not in entries]
    return sorted(infos, key=lambda info: info.name)


def all_models(models_dir: Path) -> list[ModelInfo]:
    """Every model in every format (for `models list`)."""
    return [info for runtime in RUNTIMES for info in list_models(models_dir, runtime)]


def require_model(models_dir: Path, name: str, runtime: str = "essentia") -> ModelInfo:
    """The model ``name`` in ``runtime``'s format if it is installed and intact;
    ModelMissingError otherwise."""
    models_dir = Path(models_dir)
    if name not in SPECS:
        raise ModelMissingError(f"unknown model '{name}' (known: {', '.join(sorted(SPECS))})",
                                path=str(models_dir))
    info = next(i for i in list_models(models_dir, runtime) if i.name == name)
    what = f"model '{name}'" + (" (ONNX)" if runtime == "onnx" else "")
    if info.status == "missing":
        raise ModelMissingError(f"{what} is not installed in {models_dir}",
                                hint=INSTALL_HINT, path=str(info.path))
    if info.status != "ok":
        raise ModelMissingError(f"{what} in {models_dir} is {info.status} "
                                "(checksum does not match the manifest)",
                                hint=f"{INSTALL_HINT} --force", path=str(info.path))
    return info


# ---------------------------------------------------------------------------------------------
# Installing


def _log_progress(message: str) -> None:
    logger.info("%s", message)


def install_models(models_dir: Path, *, wheel: Path | None = None, force: bool = False,
                   progress: Callable[[str], None] = _log_progress, keep_wheel: bool = True) -> list[ModelInfo]:
    """Build the MusiCNN models into ``models_dir`` (idempotent) and return them. ``keep_wheel``
    False: the wheel (29 MB) is downloaded into a temporary folder and not kept in ``.cache``
    (the Docker image: nothing but the models ships)."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    if not force and _installed(models_dir):
        progress(f"models already installed in {models_dir} (checksums match); nothing to do")
        return list_models(models_dir)
    with tempfile.TemporaryDirectory(prefix=".install-", dir=models_dir) as tmp:
        work = Path(tmp)
        cache = models_dir / CACHE_DIR if keep_wheel else work / "download"
        wheel_path = _obtain_wheel(models_dir, wheel, progress, cache)
        source_sha256 = file_sha256(wheel_path)
        labels = _extract_wheel(wheel_path, work)
        progress(f"converting {', '.join(SPECS)} (TensorFlow runs in child processes)")
        built = _convert_all(work, models_dir)
    manifest = _manifest(source_sha256, labels, built)
    _write_atomically(models_dir / MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")
    progress(f"wrote {models_dir / MANIFEST}")
    infos = list_models(models_dir)
    bad = [f"{info.name} ({runtime})" for runtime in RUNTIMES
           for info in list_models(models_dir, runtime) if not info.ok]
    if bad:
        raise ModelMissingError(f"models {', '.join(bad)} failed verification after install",
                                hint=f"{INSTALL_HINT} --force", path=str(models_dir))
    return infos


def _installed(models_dir: Path) -> bool:
    manifest = read_manifest(models_dir)
    if manifest is None or manifest.get("source") != SOURCE:
        return False
    for runtime in RUNTIMES:
        infos = {info.name: info for info in list_models(models_dir, runtime)}
        if not all(infos[name].ok for name in SPECS):
            return False
    return all(_onnx_build(manifest, name) == ONNX_BUILD for name in SPECS)


def onnx_models_outdated(models_dir: Path) -> bool:
    """True when the installed ONNX models were built with an older graph layout."""
    manifest = read_manifest(Path(models_dir))
    return manifest is not None and any(_onnx_build(manifest, name) not in (0, ONNX_BUILD)
                                        for name in SPECS)


def _onnx_build(manifest: dict[str, Any], name: str) -> int:
    """The layout version of an installed ONNX model (1: before versions were recorded)."""
    entry = manifest.get("models", {}).get(name, {}).get("onnx")
    return int(entry.get("build", 1)) if isinstance(entry, dict) else 0


def _manual_wheel_hint(models_dir: Path) -> str:
    return (f"download {WHEEL_NAME} on a machine with internet access and run "
            f"`playlistgen models install --wheel PATH` (or copy it into {models_dir / CACHE_DIR}/)")


def _obtain_wheel(models_dir: Path, wheel: Path | None, progress: Callable[[str], None], cache: Path) -> Path:
    """The wheel to build from: the given one (copied into ``cache`` when that is the models'
    own .cache), the cached one, or pip's (downloaded into ``cache``)."""
    cached = cache / WHEEL_NAME
    if wheel is not None:
        wheel = Path(wheel)
        _check_wheel(wheel, models_dir)
        if cache != models_dir / CACHE_DIR:
            progress(f"using wheel {wheel}")
            return wheel
        if not cached.exists() or not cached.samefile(wheel):
            cache.mkdir(parents=True, exist_ok=True)
            _copy_atomically(wheel, cached)  # keeps later re-installs offline
        progress(f"using wheel {wheel}")
        return cached
    if cached.is_file():
        _check_wheel(cached, models_dir)
        progress(f"using cached wheel {cached}")
        return cached
    progress(f"downloading {SOURCE} with pip (the wheel only; it is not installed)")
    _pip_download(cache, models_dir)
    _check_wheel(cached, models_dir)
    return cached


def _pip_download(cache: Path, models_dir: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", SOURCE, "-d", str(cache)]
    logger.debug("running %s", cmd)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                check=False)
    except subprocess.TimeoutExpired:
        raise ModelMissingError(f"pip download {SOURCE} timed out after {PIP_TIMEOUT_S}s",
                                hint=_manual_wheel_hint(models_dir), path=str(cache)) from None
    if result.returncode != 0 or not (cache / WHEEL_NAME).is_file():
        last = _last_line(result.stderr or result.stdout)
        raise ModelMissingError(f"could not download {SOURCE} with pip ({last})",
                                hint=_manual_wheel_hint(models_dir), path=str(cache))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _check_wheel(wheel: Path, models_dir: Path) -> None:
    """Refuse anything that is not a readable musicnn wheel with the checkpoints we need."""
    needed = {f"musicnn/{spec.checkpoint}/{name}" for spec in SPECS.values()
              for name in CHECKPOINT_FILES} | {"musicnn/configuration.py"}
    try:
        with zipfile.ZipFile(wheel) as zf:
            missing = needed - set(zf.namelist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelMissingError(f"{wheel} is not a readable wheel ({exc})",
                                hint=_manual_wheel_hint(models_dir), path=str(wheel)) from None
    if missing:
        raise ModelMissingError(f"{wheel} is not the {SOURCE} wheel (lacks {sorted(missing)[0]})",
                                hint=_manual_wheel_hint(models_dir), path=str(wheel))


def _extract_wheel(wheel: Path, work: Path) -> dict[str, tuple[str, ...]]:
    """Unpack the checkpoint folders into ``work`` and return the label lists by model name."""
    with zipfile.ZipFile(wheel) as zf:
        for spec in SPECS.values():
            target = work / spec.checkpoint
            target.mkdir()
            for name in CHECKPOINT_FILES:
                # Fixed member names, written to fixed paths: no path traversal from the archive.
                (target / name).write_bytes(zf.read(f"musicnn/{spec.checkpoint}/{name}"))
        config_source = zf.read("musicnn/configuration.py").decode("utf-8")
    return {spec.name: parse_labels(config_source, spec.labels_var, spec.n_labels)
            for spec in SPECS.values()}


def parse_labels(config_source: str, variable: str, expected: int) -> tuple[str, ...]:
    """A list of strings assigned to ``variable`` in musicnn's configuration.py (never imported:
    importing the package would pull in its pinned TensorFlow/numpy code)."""
    for node in ast.walk(ast.parse(config_source)):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            labels = ast.literal_eval(node.value)
            if (not isinstance(labels, list) or len(labels) != expected
                    or not all(isinstance(label, str) for label in labels)):
                raise ModelMissingError(f"musicnn configuration.py: {variable} is not a list "
                                        f"of {expected} strings")
            return tuple(labels)
    raise ModelMissingError(f"musicnn configuration.py has no {variable}")


def _converter_env() -> dict[str, str]:
    env = dict(os.environ)
    # Make `-m playlistgen...` importable even when the package is not installed.
    package_root = str(Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    env.setdefault("ORT_DISABLE_TELEMETRY", "1")   # the converter checks its ONNX model in onnxruntime
    return env


Built = dict[str, dict[str, tuple[Path, str]]]   # {name: {runtime: (file, sha256)}}


def _convert_all(work: Path, models_dir: Path) -> Built:
    """Convert every checkpoint in parallel child processes, each writing the frozen graph and
    the ONNX model; return {name: {"essentia": (file, sha256), "onnx": (file, sha256)}}."""
    env = _converter_env()
    jobs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for spec in SPECS.values():
            cmd = [sys.executable, "-m", CONVERTER, "--checkpoint-dir",
                   str(work / spec.checkpoint), "--out", str(work / spec.file),
                   "--onnx-out", str(work / spec.onnx_file)]
            logger.debug("running %s", cmd)
            # stderr goes to a file: two children writing into pipes nobody reads could block.
            with (work / f"{spec.name}.log").open("wb") as log:
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
            jobs[spec.name] = proc
        for name, proc in jobs.items():
            _wait_converter(name, proc, work / f"{name}.log", models_dir)
    finally:
        for proc in jobs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    built: Built = {}
    for name in jobs:
        built[name] = {}
        for runtime, file in (("essentia", SPECS[name].file), ("onnx", SPECS[name].onnx_file)):
            final = models_dir / file
            os.replace(work / file, final)  # same filesystem: work/ lives inside models_dir
            built[name][runtime] = (final, file_sha256(final))
    return built


def _wait_converter(name: str, proc: subprocess.Popen[bytes], log: Path,
                    models_dir: Path) -> None:
    try:
        proc.wait(timeout=CONVERT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ModelMissingError(f"converting {name} took longer than {CONVERT_TIMEOUT_S}s",
                                path=str(models_dir)) from None
    if proc.returncode != 0:
        stderr = log.read_text(encoding="utf-8", errors="replace")
        logger.error("converter for %s failed:\n%s", name, stderr)
        raise ModelMissingError(f"converting {name} failed (exit {proc.returncode}): "
                                f"{_last_line(stderr)}",
                                hint="check that tensorflow imports in this venv "
                                     "(`python -c 'import tensorflow'`)",
                                path=str(models_dir))


def _manifest(source_sha256: str, labels: dict[str, tuple[str, ...]],
              built: Built) -> dict[str, Any]:
    models = {}
    for name, spec in SPECS.items():
        path, sha256 = built[name]["essentia"]
        onnx_path, onnx_sha256 = built[name]["onnx"]
        models[name] = {
            "file": path.name, "sha256": sha256, "labels": list(labels[name]),
            "input": spec.input, "output_tags": spec.output_tags,
            "output_embedding": spec.output_embedding,
            "embedding_size": spec.embedding_size, "sample_rate": spec.sample_rate,
            "onnx": {"file": onnx_path.name, "sha256": onnx_sha256, **ONNX_IO, "build": ONNX_BUILD},
        }
    return {"source": SOURCE, "source_sha256": source_sha256, "models": models}


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_atomically(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)

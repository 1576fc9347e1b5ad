"""`playlistgen doctor`: check the environment and say what to fix.

Each dependency is imported in a child process: a crash there (Essentia aborts the process when
TensorFlow was imported first) must not take the doctor down, and the parent stays light.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import click

from ..core.folders import ownership_fix, unwritable
from ..errors import ConfigError
from .common import settings_from_ctx

# (import name, distribution name, what breaks without it)
DEPENDENCIES = [
    ("essentia", "essentia-tensorflow", "the default analyzer backend"),
    ("librosa", "librosa", "the librosa analyzer backend"),
    ("onnxruntime", "onnxruntime", "the fast MusiCNN runtime (and the librosa backend's ML presets)"),
    ("tensorflow", "tensorflow-cpu", "`models install` (model conversion only)"),   # see _tensorflow_check
    ("apsw", "apsw", "the database"),
    ("flask", "flask", "the HTTP API"),
    ("waitress", "waitress", "the HTTP server"),
    ("watchdog", "watchdog", "watching the library"),
    ("cachetools", "cachetools", "the feature cache"),
    ("psutil", "psutil", "resource metrics"),
    ("soundfile", "soundfile", "streaming decode"),
    ("mutagen", "mutagen", "reading tags"),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _imports(module: str) -> tuple[bool, str]:
    env = {"ORT_DISABLE_TELEMETRY": "1", **os.environ}   # importing onnxruntime starts its telemetry
    try:
        proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                              text=True, timeout=120, env=env)
    except OSError as exc:   # e.g. a service user who may not run this interpreter again
        return False, f"cannot run {sys.executable}: {exc.strerror}"
    if proc.returncode == 0:
        return True, ""
    lines = (proc.stderr or "").strip().splitlines()
    return False, lines[-1] if lines else f"exit code {proc.returncode}"


def _writable_db(path: Path) -> Check:
    folder = path.parent
    if path.exists():
        ok = os.access(path, os.R_OK | os.W_OK)
        return Check("database", ok, f"{path} exists, {'writable' if ok else 'NOT writable'}",
                     "" if ok else f"fix permissions: chmod u+rw {path}, or {ownership_fix(folder)}")
    if folder.is_dir():
        problem = unwritable(folder)
        return Check("database", problem is None, f"{path} will be created "
                     f"({'folder writable' if problem is None else problem})",
                     "" if problem is None else ownership_fix(folder))
    return Check("database", False, f"{path} will be created (folder {folder} missing)",
                 f"mkdir -p {folder}, or set database.path")


def _writable_output(folder: str) -> Check:
    problem = unwritable(folder)
    state = "writable" if Path(folder).is_dir() else "will be created"
    return Check("playlists", problem is None, f"output folder {folder} " + (state if problem is None else problem),
                 "" if problem is None else ownership_fix(folder))


def _tensorflow_check(ok: bool, detail: str, models_installed: bool) -> Check:
    """TensorFlow only converts the models (`models install`): with them installed it is optional,
    as in the Docker image, which leaves it out on purpose."""
    if ok or models_installed:
        return Check("tensorflow", True, detail if ok else detail + " (optional: needed only to build the "
                     "models, which are installed)")
    return Check("tensorflow", False, detail, "needed once, to build the models: install the convert extra "
                 "(pip install 'playlistgen[convert]' or `make setup`) and run `playlistgen models install`, "
                 "or copy built models into analysis.models_dir")


def _inotify_limit() -> Check:
    limit_file = Path("/proc/sys/fs/inotify/max_user_watches")
    if not limit_file.exists():
        return Check("inotify", True, "not Linux: watchdog uses the platform's own watcher")
    limit = int(limit_file.read_text().strip())
    ok = limit >= 100_000
    return Check("inotify", ok, f"max_user_watches = {limit} (one watch per folder)",
                 "" if ok else "raise it: sudo sysctl fs.inotify.max_user_watches=524288 "
                               "(or set library.polling: true)")


def run_checks(settings_error: ConfigError | None, settings) -> list[Check]:  # type: ignore[no-untyped-def]
    checks = [Check("python", sys.version_info[:2] == (3, 11),
                    f"{platform.python_version()} ({sys.executable})",
                    "" if sys.version_info[:2] == (3, 11) else "use Python 3.11 (essentia-tensorflow wheels)")]
    models_installed = settings is not None and (Path(settings.analysis.models_dir) / "manifest.json").is_file()
    for module, dist, purpose in DEPENDENCIES:
        ok, why = _imports(module)
        detail = f"{_version(dist)}, {'imports' if ok else 'does NOT import: ' + why}"
        if module == "tensorflow":
            checks.append(_tensorflow_check(ok, detail, models_installed))
            continue
        checks.append(Check(module, ok, detail, "" if ok else f"needed for {purpose}: run `make setup`"))
    if settings_error is not None:
        checks.append(Check("config", False, settings_error.message, settings_error.hint))
        return checks
    checks.append(Check("config", True, f"valid; config file {settings.config_file or '(none)'}; "
                        f"data folder {settings.data_dir} (relative paths: see README, Configuration)"))
    checks.append(_writable_db(Path(settings.database.path)))
    checks.append(_writable_output(settings.playlists.output_dir))
    for lib in settings.library.paths:
        p = Path(lib)
        ok = p.is_dir() and os.access(p, os.R_OK | os.X_OK)
        checks.append(Check("library", ok, f"{lib} {'readable' if ok else 'missing or unreadable'}",
                            "" if ok else f"mkdir -p {lib}, or fix library.paths"))
    models_dir = Path(settings.analysis.models_dir)
    manifest = models_dir / "manifest.json"
    installed = manifest.is_file()
    checks.append(Check("models", installed, f"{models_dir}: {'installed' if installed else 'not installed'}",
                        "" if installed else "run `playlistgen models install`"))
    checks.append(_inotify_limit())
    from .mediaserver import doctor_line  # issue 11: the media-server link

    checks.append(Check("mediaserver", *doctor_line(settings)))
    checks.append(_similarity_check(settings))
    return checks


def _similarity_check(settings) -> Check:  # type: ignore[no-untyped-def]
    """Which projection "sounds like" uses (issue 22): informative, never a failure."""
    path = Path(settings.database.path)
    if not path.exists():
        return Check("similarity", True, "no database yet (the shipped projection until the library has its own)")
    from ..core.similarity.refit import status
    from ..core.storage.db import Database

    try:
        db = Database.from_settings(settings)
    except Exception as exc:   # the database check above reports what is wrong with the file
        return Check("similarity", True, f"not readable ({exc})")
    try:
        body = status(db, settings.similarity)
    finally:
        db.close()
    note = ("" if body["source"] == "library" or body["tracks_with_embedding"] == 0 else
            f"; a library fit needs {body['min_tracks']} tracks with spreads, {body['tracks_with_spread']} have one")
    return Check("similarity", True, f"in use: {body['in_use']}{note}")


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check Python, dependencies, database, library folders, models and inotify; say what to fix.

    \b
    Example:
      playlistgen doctor
    """
    settings, error = None, None
    try:
        settings = settings_from_ctx(ctx)
    except ConfigError as exc:
        error = exc
    checks = run_checks(error, settings)
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"[{mark}] {check.name:<11} {check.detail}")
        if check.fix:
            click.echo(f"       fix: {check.fix}")
    failed = [c for c in checks if not c.ok]
    if failed:
        raise click.ClickException(f"{len(failed)} problem(s): see the 'fix:' lines above")
    click.echo("everything looks fine")

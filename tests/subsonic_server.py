"""A real Subsonic server for tests: supysonic from PyPI in a virtualenv of its own.

The virtualenv is created once and cached under ``<repo>/.cache/supysonic-<version>`` (not the
project's venv: supysonic pins its own Flask/peewee). Each server gets its own folder with a
``supysonic.conf`` (supysonic reads it from the working directory), its own SQLite database and a
free loopback port. See DESIGN.md §7.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
SUPYSONIC_VERSION = "0.7.9"
WAITRESS_VERSION = "3.0.2"
EXTENSIONS = "mp3 flac ogg opus wav m4a"


class SupysonicUnavailable(RuntimeError):
    """The virtualenv could not be built (no network / no index): tests skip with this reason."""


def ensure_venv(cache_root: Path | None = None) -> Path:
    """The cached virtualenv with supysonic; built on first use (a file lock guards parallel runs)."""
    root = (cache_root or REPO / ".cache") / f"supysonic-{SUPYSONIC_VERSION}"
    marker = root / ".complete"
    if marker.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".supysonic-{SUPYSONIC_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        steps = ([sys.executable, "-m", "venv", str(root)],
                 [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  f"supysonic=={SUPYSONIC_VERSION}", f"waitress=={WAITRESS_VERSION}"])
        for step in steps:
            proc = subprocess.run(step, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                shutil.rmtree(root, ignore_errors=True)
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise SupysonicUnavailable(f"cannot build the supysonic {SUPYSONIC_VERSION} virtualenv "
                                           f"({' '.join(step[:3])}...): {' | '.join(tail)}")
        marker.write_text(SUPYSONIC_VERSION)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SubsonicServer:
    """One running supysonic: ``url``, ``user``, ``password``, ``library`` (the scanned folder)."""

    venv: Path
    workdir: Path
    library: Path
    user: str = "alice"
    password: str = "s3cret pass"
    folder_name: str = "music"
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen | None = None
    songs: list[dict] = field(default_factory=list)  # build_library's rows

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _cli(self, *args: str) -> str:
        proc = subprocess.run([str(self.venv / "bin" / "supysonic-cli"), *args], cwd=self.workdir,
                              capture_output=True, text=True, timeout=300, env=self._env())
        if proc.returncode != 0:
            raise RuntimeError(f"supysonic-cli {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout}")
        return proc.stdout

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLAYLISTGEN_", "VIRTUAL_ENV"))}
        env["HOME"] = str(self.workdir)  # no ~/.supysonic of the user's leaks in
        return env

    def configure(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "cache").mkdir(exist_ok=True)
        (self.workdir / "supysonic.conf").write_text(
            "[base]\n"
            f"database_uri = sqlite:///{self.workdir / 'supysonic.db'}\n"
            f"scanner_extensions = {EXTENSIONS}\n"
            "[webapp]\n"
            f"cache_dir = {self.workdir / 'cache'}\n"
            "mount_webui = false\n"
            "log_level = WARNING\n"
            "[daemon]\n"
            f"socket = {self.workdir / 'daemon.sock'}\n"
            "run_watcher = false\n")
        self._cli("user", "add", self.user, "-p", self.password)
        self._cli("folder", "add", self.folder_name, str(self.library))

    def rescan(self) -> None:
        """Scan the library folder again (after files were added, changed or removed)."""
        self._cli("folder", "scan", "--force", "--foreground", self.folder_name)

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.workdir / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "supysonic-server"), "-S", "waitress", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=self.workdir, env=self._env(), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"supysonic exited early:\n{(self.workdir / 'server.log').read_text()}")
            try:
                answer = requests.get(f"{self.url}/rest/ping.view", timeout=1,
                                      params={"u": self.user, "p": self.password, "c": "tests", "v": "1.12.0",
                                              "f": "json"}).json()
                if answer["subsonic-response"]["status"] == "ok":
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"supysonic did not answer ping within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()


# The test library: tagged, generated songs playlistgen analyses too (preset fast keeps it cheap).
LIBRARY_SONGS = (
    # (relative path, artist, album, title, bpm, tonic, mode, musicbrainz recording id or None)
    ("Alpha Band/First Light/01 Morning.flac", "Alpha Band", "First Light", "Morning", 96, 0, "major", None),
    ("Alpha Band/First Light/02 Noon.flac", "Alpha Band", "First Light", "Noon", 120, 7, "major",
     "0b7c5a1e-0000-4000-8000-000000000002"),
    ("Beta Trio/Nocturnes/01 Dusk.ogg", "Beta Trio", "Nocturnes", "Dusk", 84, 9, "minor", None),
    ("Beta Trio/Nocturnes/02 Midnight.ogg", "Beta Trio", "Nocturnes", "Midnight", 140, 4, "minor", None),
    ("Gamma/Singles/Gamma - Ünïcode Sóng.flac", "Gamma", "Singles", "Ünïcode Sóng", 128, 2, "major", None),
    ("Delta/Live/01 Encore.flac", "Delta", "Live", "Encore", 110, 5, "minor", None),
)


def build_library(root: Path, seconds: float = 8.0) -> list[dict]:
    """Write LIBRARY_SONGS (audio from tests/audio_fixtures, tags with mutagen); return their rows."""
    import mutagen

    from .audio_fixtures import song, write

    rows = []
    for rel, artist, album, title, bpm, tonic, mode, mbid in LIBRARY_SONGS:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, song(seconds=seconds, sr=22050, bpm=bpm, tonic=tonic, mode=mode), 22050)
        tagged = mutagen.File(path, easy=True)
        tagged["artist"], tagged["album"], tagged["title"] = artist, album, title
        tagged["tracknumber"] = rel.rsplit("/", 1)[-1][:2] if rel.rsplit("/", 1)[-1][:2].isdigit() else "1"
        if mbid:
            tagged["musicbrainz_trackid"] = mbid
        tagged.save()
        rows.append({"path": str(path), "rel": rel, "artist": artist, "album": album, "title": title,
                     "mbid": mbid})
    return rows


def start_server(venv: Path, workdir: Path, library: Path) -> SubsonicServer:
    server = SubsonicServer(venv=venv, workdir=workdir, library=library)
    server.configure()
    server.rescan()
    server.start()
    return server


@contextmanager
def running_server(root: Path) -> Iterator[SubsonicServer]:
    """A real supysonic serving a fresh tagged library under ``root`` (``.songs``: its files),
    stopped on exit; the test is skipped, loudly, when its virtualenv cannot be built."""
    import pytest

    try:
        venv = ensure_venv()
    except SupysonicUnavailable as exc:
        pytest.skip(f"NO REAL SUBSONIC SERVER: {exc}")
    songs = build_library(root / "library")
    server = start_server(venv, root / "server", root / "library")
    server.songs = songs
    try:
        yield server
    finally:
        server.stop()

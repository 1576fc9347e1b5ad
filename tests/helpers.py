"""Helpers shared by several test modules (test modules never import each other)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import requests

from playlistgen.core.storage.db import connect
from tests import audio_fixtures as af

SR = 22050
ENV = {
    "PLAYLISTGEN_ANALYSIS__PRESET": "fast",
    "PLAYLISTGEN_ANALYSIS__WORKERS": "2",
    "PLAYLISTGEN_LIBRARY__SETTLE_SECONDS": "0.5",
    "PLAYLISTGEN_LIBRARY__RESCAN_INTERVAL_S": "0",
}


def status(daemon) -> dict:  # type: ignore[no-untyped-def]
    return requests.get(daemon.url + "/api/v1/library/status", timeout=5).json()


def features_per_track(db_path: Path) -> list[int]:
    conn = connect(db_path)
    return [n for (n,) in conn.execute("SELECT count(*) FROM features GROUP BY track_id, analyzer_version")]


def make_song(path: Path, i: int, seconds: float = 6.0) -> Path:
    """A short, distinct track: chords in a key, a beat, and a little seeded noise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = af.song(seconds, SR, 1, bpm=80 + (i * 7) % 90, tonic=i % 12, mode="minor" if i % 2 else "major")
    audio = audio + af.noise(seconds, SR, 1, 0.01, seed=i)[: len(audio)]
    return af.write(path, audio.astype(np.float32), SR)


def wait_for(predicate, timeout: float = 90, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def scanned_long_file(workdir: Path) -> Path:
    """A 6-minute FLAC in ``workdir/library``, scanned into ``workdir``'s database (preset fast): long
    enough for a test to act while a tag write verifies its copy."""
    from tests.conftest import run_cli

    lib = workdir / "library"
    lib.mkdir()
    path = af.write_long(lib / "long.flac", 6.0)
    res = run_cli("scan", "library", cwd=workdir, env=ENV, timeout=600)
    assert res.returncode == 0, res.stderr
    return path

"""Issue 21, point 4: commands that need no ML neither load TensorFlow nor print its CUDA noise.

Essentia-tensorflow links TensorFlow's C library: whatever imports Essentia (its FFmpeg decodes
m4a/AAC for `tags write`'s audio check) loads it, and its CUDA probing warned on every machine
without a GPU. Files libsndfile reads never touch Essentia."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import audio_fixtures as af
from tests.conftest import child_env, run_cli
from tests.helpers import make_song

# `playlistgen ARGS…` in a child that, on exit, reports whether TensorFlow got in: as a Python
# module (sys.modules) or as a native library mapped into the process (/proc/self/maps).
HARNESS = """
import atexit, runpy, sys
report = sys.argv.pop(1)
def _report():
    maps = open('/proc/self/maps').read()
    with open(report, 'w') as fh:
        fh.write(' '.join(name for name, hit in (('tensorflow-module', 'tensorflow' in sys.modules),
                                                 ('libtensorflow', 'libtensorflow' in maps),
                                                 ('essentia', 'essentia' in sys.modules)) if hit))
atexit.register(_report)
sys.argv[0] = 'playlistgen'
runpy.run_module('playlistgen', run_name='__main__')
"""

NOISE = ("tensorflow", "cuda", "cudart", "dso_loader", "oneDNN")


def playlistgen_traced(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    report = tmp_path / "loaded.txt"
    proc = subprocess.run([sys.executable, "-c", HARNESS, str(report), *args], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=300)
    return proc, set(report.read_text().split()) if report.exists() else {"no report"}


def scanned_library(tmp_path: Path, *extra: str) -> Path:
    lib = tmp_path / "lib"
    wav = make_song(lib / "a.wav", 1, seconds=4.0)
    af.write(lib / "b.flac", af.song(4.0, 22050, 2, bpm=100, tonic=3), 22050)
    if "m4a" in extra:
        af.ffmpeg_convert(wav, lib / "c.m4a", "-c:a", "aac", "-b:a", "128k")
    proc = run_cli("scan", str(lib), "--preset", "fast", "--workers", "1", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return lib


@pytest.mark.parametrize("dry_run", [True, False])
def test_tags_write_on_flac_and_wav_loads_no_tensorflow(tmp_path: Path, dry_run: bool) -> None:
    lib = scanned_library(tmp_path)
    proc, loaded = playlistgen_traced(tmp_path, "tags", "write", *(["--dry-run"] if dry_run else []), str(lib))
    assert proc.returncode == 0, proc.stderr
    assert ("would-change" if dry_run else "written") in proc.stdout, proc.stdout + proc.stderr
    assert loaded == set(), loaded
    assert not [w for w in NOISE if w.lower() in proc.stderr.lower()], proc.stderr


@pytest.mark.skipif(not af.ffmpeg(), reason="ffmpeg missing: cannot make the m4a fixture (make ffmpeg)")
def test_tags_write_on_m4a_is_quiet(tmp_path: Path) -> None:
    """m4a needs Essentia's decoder (and so TensorFlow's library, linked into it): no noise."""
    lib = scanned_library(tmp_path, "m4a")
    proc, loaded = playlistgen_traced(tmp_path, "tags", "write", "--dry-run", str(lib))
    assert proc.returncode == 0, proc.stderr
    assert "c.m4a" in proc.stdout, proc.stdout + proc.stderr
    assert "tensorflow-module" not in loaded, loaded   # the Python package never
    assert not [w for w in NOISE if w.lower() in proc.stderr.lower()], proc.stderr

"""`playlistgen tags write` on mp3, flac, ogg, opus and m4a: values read back with mutagen and with
ffprobe, the decoded audio is identical, read-only files are skipped, Ctrl+C leaves the original."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import mutagen
import pytest
import requests

from playlistgen.core.integrations.tags.writer import read_values, write_tags
from tests import audio_fixtures as af
from tests.conftest import child_env, run_cli
from tests.helpers import scanned_long_file, status, wait_for
from tests.tagged_library import make_song, set_tags

ENV = {"PLAYLISTGEN_ANALYSIS__PRESET": "fast", "PLAYLISTGEN_ANALYSIS__WORKERS": "2"}
FORMATS = ("mp3", "flac", "ogg", "opus", "m4a")

pytestmark = pytest.mark.skipif(not af.ffmpeg() or not shutil.which("ffprobe"),
                                reason="ffmpeg/ffprobe are not installed (make ffmpeg)")


def _samples(path: Path) -> str:
    from playlistgen.core.integrations.tags.writer import _decode
    return _decode(str(path))[0]


def _ffprobe_tags(path: Path) -> dict[str, str]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json",
                          str(path)], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    tags = dict(data.get("format", {}).get("tags", {}))
    for stream in data.get("streams", []):
        tags.update(stream.get("tags", {}))
    return {k.lower(): v for k, v in tags.items()}


def _library(root: Path) -> dict[str, Path]:
    src = make_song(root / "src" / "src.wav", 5, seconds=6.0, sr=44100)
    files = {}
    for i, ext in enumerate(FORMATS):
        dst = root / "library" / f"song {i}.{ext}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        codec = {"mp3": ["-c:a", "libmp3lame"], "flac": [], "ogg": ["-c:a", "libvorbis"],
                 "opus": ["-c:a", "libopus", "-b:a", "64k"], "m4a": ["-c:a", "aac", "-b:a", "96k"]}[ext]
        files[ext] = af.ffmpeg_convert(src, dst, *codec)
        set_tags(files[ext], artist="Someone", title=f"Song {i}", genre="My Own Genre")
    shutil.rmtree(root / "src")
    return files


def test_tags_write_every_format(tmp_path: Path) -> None:
    files = _library(tmp_path)
    res = run_cli("scan", "library", cwd=tmp_path, env=ENV, timeout=300)
    assert res.returncode == 0 and "analysed 5," in res.stdout, res.stdout + res.stderr
    before = {ext: (p.read_bytes(), _samples(p)) for ext, p in files.items()}

    res = run_cli("tags", "write", "library", "--dry-run", cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("would-change:") == 5 and "bpm: - ->" in res.stdout
    assert all(p.read_bytes() == before[ext][0] for ext, p in files.items())   # dry run wrote nothing

    files["flac"].chmod(0o444)
    res = run_cli("tags", "write", "library", cwd=tmp_path, env=ENV)
    assert res.returncode == 0, res.stderr
    assert f"skipped: {files['flac']}: read-only file" in res.stderr
    assert files["flac"].read_bytes() == before["flac"][0]
    assert res.stdout.count("written:") == 4
    files["flac"].chmod(0o644)
    res = run_cli("tags", "write", str(files["flac"]), "--key-notation", "camelot", cwd=tmp_path, env=ENV)
    assert res.returncode == 0 and "written:" in res.stdout, res.stderr

    for ext, path in files.items():
        assert _samples(path) == before[ext][1], f"{ext}: the audio changed"
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        values = read_values(mutagen.File(path), ["bpm", "key", "replaygain_track_gain", "replaygain_track_peak"])
        assert values["bpm"] and 40 <= int(values["bpm"]) <= 250
        assert values["key"] and (values["key"][-1] in "AB" if ext == "flac" else values["key"][0] in "ABCDEFG")
        assert values["replaygain_track_gain"].endswith(" dB")
        assert 0 < float(values["replaygain_track_peak"]) <= 1.5
        probe = _ffprobe_tags(path)
        found = {v for v in probe.values()}
        assert values["key"] in found, (ext, probe)
        assert values["bpm"] in found or ext == "m4a", (ext, probe)   # ffprobe does not list MP4 'tmpo'
        assert values["replaygain_track_gain"] in found or ext == "mp3" and any(
            "replaygain" in k for k in probe), (ext, probe)
        assert probe.get("genre") == "My Own Genre"    # never overwritten without --fields genre
        assert probe.get("title", "").startswith("Song")
    assert list((tmp_path / "library").glob(".*")) == []      # no temporary file left
    res = run_cli("scan", "library", cwd=tmp_path, env=ENV, timeout=300)
    assert "analysed 0," in res.stdout, res.stdout                # retagged: analysis kept


def test_mood_and_genre_only_when_asked(tmp_path: Path) -> None:
    path = make_song(tmp_path / "song.flac", 2)
    set_tags(path, genre="Bossa")
    record = {"bpm": 121.6, "key": "F#", "scale": "minor", "camelot": "11A", "loudness_lufs": -12.5,
              "tags": {"msd": {"jazz": 0.4, "chill": 0.3, "rock": 0.05, "happy": 0.2}}}
    out = write_tags(str(path), record, ["bpm", "key", "mood"], threshold=0.1)
    assert out.status == "written"
    tags = mutagen.File(path)
    assert tags["BPM"] == ["122"] and tags["INITIALKEY"] == ["F#m"] and tags["GENRE"] == ["Bossa"]
    assert tags["MOOD"] == ["chill; happy"] and tags["PLAYLISTGEN_TAGS"] == ["jazz; chill; happy"]
    assert write_tags(str(path), record, ["bpm", "key", "mood"]).status == "unchanged"
    assert write_tags(str(path), record, ["genre"]).status == "written"
    assert mutagen.File(path)["GENRE"] == ["Jazz"]
    path.parent.chmod(0o555)
    try:
        out = write_tags(str(path), {**record, "bpm": 90.0}, ["bpm"])
        assert out.status == "skipped" and out.reason.startswith("read-only folder")
    finally:
        path.parent.chmod(0o755)


def test_interrupted_write_leaves_the_original(tmp_path: Path) -> None:
    """Ctrl+C while the verified copy is being made: the original is byte-identical, no temp file."""
    path = scanned_long_file(tmp_path)
    lib = path.parent
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    proc = subprocess.Popen([sys.executable, "-m", "playlistgen", "tags", "write", "library",
                             "--fields", "bpm,key"], cwd=tmp_path, env=child_env(ENV),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(lib.glob(".long.playlistgen-*")):
        time.sleep(0.002)
    assert list(lib.glob(".long.playlistgen-*")), "the temporary copy never appeared"
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert list(lib.glob(".*")) == []


def test_serve_with_write_tags_tags_each_new_analysis_and_keeps_it(tmp_path: Path, daemon_factory) -> None:
    """library.write_tags: true — the daemon writes the analysis into each file it analyses, and the
    retag this causes is recognised by the audio fingerprint (no second analysis)."""
    src = make_song(tmp_path / "src.wav", 3, seconds=6.0, sr=44100)
    library = tmp_path / "library"
    library.mkdir()
    paths = [af.ffmpeg_convert(src, library / f"new {ext}.{ext}", *codec)
             for ext, codec in (("flac", []), ("mp3", ["-c:a", "libmp3lame"]))]
    for i, path in enumerate(paths):
        set_tags(path, artist="Someone", title=f"New {i}", genre="Kept Genre")
    samples = {p: _samples(p) for p in paths}
    daemon = daemon_factory(env={**ENV, "PLAYLISTGEN_LIBRARY__WRITE_TAGS": "true",
                                 "PLAYLISTGEN_LIBRARY__SETTLE_SECONDS": "0.5"})
    daemon.wait_ready(60)
    wait_for(lambda: status(daemon)["counts"]["done"] == 2, 120, "both files analysed")

    def tagged() -> bool:
        return all(read_values(mutagen.File(p), ["bpm"])["bpm"] for p in paths)

    wait_for(tagged, 60, "the daemon to write the tags")
    for path in paths:
        values = read_values(mutagen.File(path), ["bpm", "key", "replaygain_track_gain"])
        assert values["key"] and values["replaygain_track_gain"].endswith(" dB"), (path, values)
        assert _samples(path) == samples[path], f"{path}: the audio changed"
        assert mutagen.File(path, easy=True)["genre"] == ["Kept Genre"]
    analysed = status(daemon)["analysis"]["analysed"]
    # a rescan after the tag writes keeps the analysis: nothing is queued or analysed again
    before = status(daemon)["last_scan"]
    assert requests.post(daemon.url + "/api/v1/library/scan", timeout=10).status_code == 202
    wait_for(lambda: status(daemon)["last_scan"] != before, 60, "the rescan")
    after = status(daemon)
    assert after["counts"]["done"] == 2 and after["counts"]["pending"] == 0
    assert after["analysis"]["analysed"] == analysed == 2
    assert list(library.glob(".*")) == []      # no temporary file left

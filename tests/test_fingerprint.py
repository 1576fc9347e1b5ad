"""The audio fingerprint ignores tags and nothing else; a retagged file keeps its analysis and only
its metadata is re-read — in the library code and end to end in a real `playlistgen serve`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from mutagen.id3 import TIT2
from mutagen.wave import WAVE

from playlistgen.config import LibrarySettings
from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.audio.fingerprint import audio_fingerprint
from playlistgen.core.library.reconcile import Library
from playlistgen.core.storage.db import Database, connect
from playlistgen.core.storage.jobs import JobQueue
from tests import audio_fixtures as af
from tests.helpers import ENV, status, wait_for
from tests.tagged_library import make_library, make_song, set_tags

VERSION = "test-1"


def _file(tmp_path: Path, ext: str) -> Path:
    src = make_song(tmp_path / "src.wav", 3, seconds=3.0, sr=44100)
    if ext == "wav":
        return src
    if ext in ("opus", "m4a"):
        if not af.ffmpeg():
            pytest.skip("ffmpeg is not installed (make ffmpeg)")
        codec = {"opus": ["-c:a", "libopus", "-b:a", "64k"], "m4a": ["-c:a", "aac", "-b:a", "96k"]}[ext]
        return af.ffmpeg_convert(src, tmp_path / f"song.{ext}", *codec)
    shutil.copy(src, tmp_path / "tmp.wav")
    import soundfile as sf
    audio, sr = sf.read(tmp_path / "tmp.wav", dtype="float32")
    return af.write(tmp_path / f"song.{ext}", audio, sr)


@pytest.mark.parametrize("ext", ["mp3", "flac", "ogg", "opus", "m4a", "wav"])
def test_tags_do_not_change_it_audio_does(tmp_path: Path, ext: str) -> None:
    path = _file(tmp_path, ext)
    before = audio_fingerprint(path)
    if ext == "wav":
        wav = WAVE(path)
        wav.add_tags()
        wav.tags.add(TIT2(encoding=3, text="x" * 5000))
        wav.save()
    else:   # a big comment block: Ogg pages are renumbered, MP4 atoms move, ID3 padding grows
        set_tags(path, title="x" * 5000, artist="Someone", genre="Jazz")
        set_tags(path, title="short")
    assert audio_fingerprint(path) == before
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01            # one bit of the audio
    changed = tmp_path / f"changed.{ext}"
    changed.write_bytes(data)
    assert audio_fingerprint(changed) != before


def _analyse_all(queue: JobQueue) -> int:
    jobs = queue.claim(1000)
    for job in jobs:
        queue.complete(job, AnalysisResult.from_dict({
            "duration_s": 4.0, "bpm": 120.0, "preset": "fast", "analyzer_version": VERSION,
            "metadata": {"title": "old"}, "audio_fingerprint": audio_fingerprint(job.path),
            "mfcc_mean": [0.0] * 13, "tags": {"msd": {"rock": 0.9}}})).result(10)
    return len(jobs)


def test_library_keeps_analysis_of_retagged_files(tmp_path: Path, database: Database) -> None:
    root = tmp_path / "music"
    settings = LibrarySettings(paths=[str(root)])
    library, queue = Library(database, settings, VERSION), JobQueue(database, VERSION)
    song = make_song(root / "song.flac", 1)
    copy = root / "copy.flac"
    shutil.copy(song, copy)
    other = make_song(root / "other.ogg", 2)
    library.reconcile()
    assert _analyse_all(queue) == 2           # the copy is linked to the first analysis
    track_of = dict(database.query("SELECT path, track_id FROM files"))
    playlist_track = track_of[str(other)]

    set_tags(other, title="New title", artist="New artist")    # the only file of its track
    set_tags(song, title="Retagged")                             # its copy keeps the old tags
    report = library.reconcile()
    assert (report.retagged, report.queued) == (2, 0)
    rows = dict(database.query("SELECT f.path, t.title FROM files f JOIN tracks t ON t.id = f.track_id "
                               "WHERE f.status = 'done'"))
    assert rows == {str(song): "Retagged", str(copy): "old", str(other): "New title"}
    after = dict(database.query("SELECT path, track_id FROM files"))
    assert after[str(other)] == playlist_track               # updated in place: playlists keep it
    assert after[str(song)] != after[str(copy)]               # split from the copy, features copied
    assert database.query("SELECT count(*) FROM features")[0][0] == 3
    assert database.query("SELECT count(*) FROM tags")[0][0] == 3

    # changed audio is analysed again
    make_song(other, 7)
    report = library.reconcile()
    assert (report.retagged, report.queued) == (0, 1)


def test_retagging_50_analysed_files_runs_no_analysis(tmp_path: Path, daemon_factory) -> None:
    library = tmp_path / "library"
    paths = make_library(library, 50)
    daemon = daemon_factory("--library", str(library), env=ENV)
    daemon.wait_ready()
    wait_for(lambda: status(daemon)["counts"]["done"] == 50, 300, "50 files analysed")
    assert status(daemon)["analysis"]["analysed"] == 50
    db_path = tmp_path / "playlistgen.db"
    features_before = connect(db_path).execute("SELECT id, track_id FROM features ORDER BY id").fetchall()

    for i, path in enumerate(paths):   # as Picard would: new titles, a genre, a bigger tag block
        set_tags(path, title=f"Retitled {i}", genre="Chiptune", composer="x" * 2000)

    def retitled() -> bool:
        body = requests.get(daemon.url + "/api/v1/tracks", params={"q": "Retitled", "limit": 100}, timeout=5).json()
        return len(body["tracks"]) == 50
    wait_for(retitled, 120, "new titles visible in the API")
    s = status(daemon)
    assert s["analysis"]["analysed"] == 50 and s["counts"]["pending"] == 0 and s["counts"]["done"] == 50
    assert connect(db_path).execute("SELECT id, track_id FROM features ORDER BY id").fetchall() == features_before
    track = requests.get(daemon.url + "/api/v1/tracks", params={"q": "Retitled 7"}, timeout=5).json()["tracks"][0]
    assert track["title"] == "Retitled 7" and track["bpm"] is not None

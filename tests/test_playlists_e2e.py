"""End to end through a real `playlistgen serve`: upload songs over HTTP, the watcher picks them up,
they are analysed, and then they are searchable and make playlists (M3U8 saved for media servers)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import requests

from tests import audio_fixtures as af
from tests.helpers import ENV, SR, wait_for


def wav_bytes(i: int) -> bytes:
    audio = af.song(5.0, SR, 1, bpm=90 + 10 * i, tonic=i % 12, mode="minor" if i % 2 else "major")
    buffer = io.BytesIO()
    import soundfile as sf

    sf.write(buffer, audio.astype(np.float32), SR, format="WAV")
    return buffer.getvalue()


def test_uploads_are_analysed_and_make_playlists(tmp_path: Path, daemon_factory) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "library").mkdir()
    daemon = daemon_factory(env={**ENV, "PLAYLISTGEN_PLAYLISTS__OUTPUT_DIR": str(tmp_path / "playlists"),
                                 "PLAYLISTGEN_PLAYLISTS__INDEX_CHECK_S": "0"})
    daemon.wait_ready()
    names = ["Ångström Dawn.wav", "Night Drive.wav", "Third Song.wav"]
    for i, name in enumerate(names):
        r = requests.post(daemon.url + "/api/v1/library/upload", files={"file": (name, wav_bytes(i))}, timeout=30)
        assert r.status_code == 201, r.text
    bad = requests.post(daemon.url + "/api/v1/library/upload", files={"file": ("../x.wav", b"RIFF")}, timeout=30)
    assert bad.status_code == 400

    def analysed() -> list[dict]:
        tracks = requests.get(daemon.url + "/api/v1/tracks?limit=10", timeout=5).json()["tracks"]
        return tracks if len(tracks) == 3 else []

    tracks = wait_for(analysed, 90, "the uploads to be analysed")
    assert {Path(t["path"]).name for t in tracks} == set(names)
    found = requests.get(daemon.url + "/api/v1/tracks?q=angstrom", timeout=5).json()
    assert found["total"] == 1
    r = requests.post(daemon.url + "/api/v1/playlists",
                      json={"strategy": "radio", "seeds": [found["tracks"][0]["id"]], "size": 3, "save": True},
                      timeout=30)
    assert r.status_code == 201, r.text
    saved = Path(r.json()["playlist"]["file"])
    text = saved.read_text(encoding="utf-8")
    assert text.startswith("#EXTM3U") and text.count("#EXTINF:") == 3
    # playlists.relative_paths auto: the playlist folder is outside the library, so every entry
    # is an absolute path that exists
    entries = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert len(entries) == 3 and all(Path(e).is_absolute() and Path(e).is_file() for e in entries)

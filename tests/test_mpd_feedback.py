"""MPD radio listens (issue 23.2): against a real MPD (Debian's `mpd`, null output), a song left
after a second is recorded as a skip from MPD's own elapsed time, one heard to its end as a play,
and a song skipped twice is never offered by the radio again. The radio is stepped by the test
(its loop would do the same every second) so each check follows a known MPD state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mpd import MPDClient

from playlistgen.app import App
from playlistgen.config import Settings
from tests.conftest import run_cli
from tests.helpers import wait_for
from tests.mpd_server import Mpd
from tests.tagged_library import make_library

pytestmark = pytest.mark.skipif(not shutil.which("mpd"), reason="mpd is not installed (make mpd)")
SONGS, SECONDS = 8, 60


def _playing(client: MPDClient, uri: str | None = None) -> bool:
    """Playing (``uri``, when given) with MPD's clock past the start."""
    status = client.status()
    current = client.currentsong().get("file")
    return status.get("state") == "play" and float(status.get("elapsed", 0)) > 0.2 and (
        uri is None or current == uri)


def _skip(client: MPDClient, radio, uri: str) -> None:  # type: ignore[no-untyped-def]
    """Play ``uri`` from the queue (added again when needed), let the radio see it, then `next`."""
    queue = [s["file"] for s in client.playlistinfo()]
    song_id = client.addid(uri) if uri not in queue else client.playlistinfo()[queue.index(uri)]["id"]
    client.playid(song_id)
    wait_for(lambda: _playing(client, uri), 15, f"MPD to play {uri}")
    radio.step()
    client.next()
    wait_for(lambda: client.currentsong().get("file") not in (None, uri), 15, "the next song")
    radio.step()


def test_skips_are_recorded_and_a_song_skipped_twice_is_not_offered_again(tmp_path: Path) -> None:
    lib = tmp_path / "library"
    make_library(lib, SONGS, formats=("flac", "ogg"), seconds=SECONDS)
    db_path = tmp_path / "library.db"
    res = run_cli("scan", str(lib), "--db", str(db_path), cwd=tmp_path,
                  env={"PLAYLISTGEN_ANALYSIS__PRESET": "fast"}, timeout=300)
    assert res.returncode == 0 and f"analysed {SONGS}," in res.stdout, res.stdout + res.stderr
    server = Mpd(tmp_path, lib)
    server.start()
    settings = Settings()
    settings.library.paths, settings.database.path = [str(lib)], str(db_path)
    settings.mpd.port, settings.mpd.min_queue, settings.mpd.history = server.port, 2, 2
    app = App.for_radio(settings, seeds=["Artist 1 - Song 1"])
    radio, store = app.services.mpd, app.services.playlists.feedback
    try:
        client = server.client()
        client.update()
        wait_for(lambda: len([e for e in client.listall() if "file" in e]) == SONGS, 30, "mpd to index the library")
        assert radio.step() >= 2
        victim = client.playlistinfo()[1]["file"]
        victim_id = radio._track_ids([victim])[0]

        _skip(client, radio, victim)
        first = [e for e in store.events() if e["track_id"] == victim_id]
        assert [(e["kind"], e["source"], e["user"]) for e in first] == [("skip", "mpd", None)]
        assert first[0]["position_s"] < 30                       # MPD's elapsed, not a wall-clock guess
        _skip(client, radio, victim)
        assert store.skipped(None).skips[victim_id] == 2
        assert radio.health()["skips_recorded"] >= 2   # + the songs the test jumped away from

        # every song not skipped is offered, the twice-skipped one never (not even once the library runs short)
        skipped = {e["track_id"] for e in store.events() if e["kind"] == "skip"}
        offered = radio.continuations(SONGS, [], -1)
        assert victim not in offered and len(offered) == SONGS - len(skipped), (offered, skipped)
        for _ in range(3):
            assert victim not in radio.continuations(3, [s["file"] for s in client.playlistinfo()], -1)

        # a song heard to its end is a play
        other = next(u for u in offered if u != client.currentsong().get("file"))
        client.playid(client.addid(other))
        wait_for(lambda: _playing(client, other), 15, f"MPD to play {other}")
        radio.step()
        client.seekcur(SECONDS - 4)
        wait_for(lambda: float(client.status().get("elapsed", 0)) >= SECONDS - 4, 10, "the seek")
        radio.step()
        wait_for(lambda: client.currentsong().get("file") != other, 20, "the song to end")
        radio.step()
        other_id = radio._track_ids([other])[0]
        assert [e["kind"] for e in store.events([other_id])] == ["play"]
    finally:
        app.stop()
        server.stop()

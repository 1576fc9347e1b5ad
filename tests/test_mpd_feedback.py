"""MPD radio listens (issue 23.2): against a real MPD (Debian's `mpd`, null output), a song left
after a second is recorded as a skip from MPD's own elapsed time, one heard to its end as a play;
a song skipped once is left out while others remain and comes back when the radio runs short, a
song skipped twice is never offered again, and a library of twice-skipped songs is said once. The
radio is stepped by the test (its loop would do the same every second) so each check follows a
known MPD state."""

from __future__ import annotations

import logging
import shutil
import time
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


def _scanned_library_and_mpd(tmp_path: Path, seconds: float) -> tuple[Mpd, Settings]:
    """SONGS songs of ``seconds`` scanned (preset fast), a started MPD over them, and settings for
    a radio on both (min_queue 2, history 2)."""
    lib = tmp_path / "library"
    make_library(lib, SONGS, formats=("flac", "ogg"), seconds=seconds)
    db_path = tmp_path / "library.db"
    res = run_cli("scan", str(lib), "--db", str(db_path), cwd=tmp_path,
                  env={"PLAYLISTGEN_ANALYSIS__PRESET": "fast"}, timeout=300)
    assert res.returncode == 0 and f"analysed {SONGS}," in res.stdout, res.stdout + res.stderr
    server = Mpd(tmp_path, lib)
    server.start()
    settings = Settings()
    settings.library.paths, settings.database.path = [str(lib)], str(db_path)
    settings.mpd.port, settings.mpd.min_queue, settings.mpd.history = server.port, 2, 2
    return server, settings


def test_skips_are_recorded_and_a_song_skipped_twice_is_not_offered_again(tmp_path: Path) -> None:
    server, settings = _scanned_library_and_mpd(tmp_path, SECONDS)
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

        # asked for the whole library: the songs skipped once come back, the twice-skipped one never
        offered = radio.continuations(SONGS, [], -1)
        assert victim not in offered and len(offered) == SONGS - 1, offered
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


def test_one_skip_is_soft_two_are_hard_and_a_library_skipped_through_is_said_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The radio's choice among skipped songs (issue 23: "MPD radio stops offering a track skipped
    twice"); the skips are stored with known times (recording them from MPD is tested above)."""
    server, settings = _scanned_library_and_mpd(tmp_path, 10)
    settings.playlists.artist_gap = settings.playlists.album_gap = 0   # the skip rules alone decide
    app = App.for_radio(settings, seeds=["Artist 1 - Song 1"])
    radio, store = app.services.mpd, app.services.playlists.feedback
    try:
        client = server.client()
        client.update()
        wait_for(lambda: len([e for e in client.listall() if "file" in e]) == SONGS, 30, "mpd to index the library")
        assert radio.step() >= 2
        uris = sorted(e["file"] for e in client.listall() if "file" in e)
        ids = dict(zip(uris, radio._track_ids(uris), strict=True))
        seed = next(u for u in uris if u.startswith("Artist 1/01 "))   # "Artist 1 - Song 1"
        old, recent, twice = [u for u in uris if u != seed][:3]
        now = time.time()
        store.record(ids[old], "skip", "mpd", position_s=2, at=now - 3000)      # skipped once, long ago
        store.record(ids[recent], "skip", "mpd", position_s=2, at=now - 60)     # skipped once, just now
        store.record(ids[twice], "skip", "mpd", position_s=2, at=now - 2000)
        store.record(ids[twice], "skip", "mpd", position_s=3, at=now - 1000)
        radio.history.clear()   # the history rule is tests/test_mpd.py's; here only skips leave songs out

        clean = SONGS - 3
        few = radio.continuations(clean, [], -1)            # enough unskipped songs: no skipped one
        assert len(few) == clean and not {old, recent, twice} & set(few), few
        more = radio.continuations(clean + 1, [], -1)       # one short: the least recently skipped comes back
        assert old in more and recent not in more and twice not in more, more
        everything = radio.continuations(SONGS, [], -1)     # all that can come back: never the twice-skipped
        assert set(everything) == set(uris) - {twice}, everything
        assert not radio.health()["exhausted_by_skips"]

        # every song skipped twice: nothing to add, said once (and in /health), however often it polls
        for uri in uris:
            for _ in range(2):
                store.record(ids[uri], "skip", "mpd", position_s=1)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="playlistgen.core.integrations.mpd"):
            for _ in range(4):
                assert radio.continuations(2, [], -1) == []
                radio.step()
        said = [r for r in caplog.records if "skipped twice" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]
        assert radio.health()["exhausted_by_skips"]

        store.record(ids[recent], "play", "mpd", position_s=10)   # a full play forgives its skips
        assert radio.continuations(2, [], -1) == [recent]
        assert not radio.health()["exhausted_by_skips"]
    finally:
        app.stop()
        server.stop()

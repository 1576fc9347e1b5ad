"""Skips and full plays as feedback (issue 23.2): the rules, the store over a real SQLite file,
the v8 → v9 migration, and radio / for_you leaving out what a listener skipped, on the real
library of tests/playlist_fixtures.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from playlistgen.config import Settings
from playlistgen.core.feedback.events import FeedbackStore, listener_of
from playlistgen.core.feedback.rules import PLAY, SKIP, FeedbackRules
from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService
from playlistgen.core.storage.db import Database, connect
from playlistgen.core.storage.migrate import current_version, migrate
from tests.conftest import library_settings


def test_verdict_threshold_and_half_length() -> None:
    rules = FeedbackRules(skip_threshold_s=30, play_fraction=0.9)
    assert rules.verdict(5, 240) == SKIP
    assert rules.verdict(29.9, 240) == SKIP
    assert rules.verdict(31, 240) is None           # heard, no opinion
    assert rules.verdict(220, 240) == PLAY
    assert rules.verdict(12, 20) is None            # a 20 s song: its first half is the skip window
    assert rules.verdict(8, 20) == SKIP
    assert rules.verdict(38, 40, slack_s=2.5) == PLAY
    assert rules.verdict(10, None) == SKIP          # no length known: the threshold alone
    assert rules.verdict(None, 240) is None


def test_listener_names() -> None:
    assert listener_of("Admin", "admin") is None and listener_of(None, "admin") is None
    assert listener_of("alice", "admin") == "alice"


def test_store_counts_skips_since_the_last_play_per_listener(database: Database) -> None:
    database.write(lambda c: c.execute("INSERT INTO tracks (id, title, fingerprint) "
                                       "VALUES (1, 'a', 'f1'), (2, 'b', 'f2'), (3, 'c', 'f3')"))
    store = FeedbackStore(database, FeedbackRules(avoid_days=30))
    now = time.time()
    store.record(1, SKIP, "mpd", position_s=3, at=now - 100)
    store.record(1, SKIP, "mpd", position_s=4, at=now - 50)
    store.record(2, SKIP, "mpd", at=now - 100)
    store.record(2, PLAY, "mpd", at=now - 10)          # a later full play cancels the skip
    store.record(3, SKIP, "mpd", at=now - 40 * 86400)  # outside the 30-day window
    store.record(3, SKIP, "subsonic", user="alice", at=now - 5)
    assert store.skipped(None, now).skips == {1: 2}
    assert store.skipped("alice", now).skips == {3: 1}
    assert store.skipped(None, now).track_ids(min_skips=2) == [1]
    assert not FeedbackStore(database, FeedbackRules(avoid_days=0)).skipped(None, now)
    with pytest.raises(ValueError):
        store.record(1, "like", "mpd")


def test_playback_reports_estimate_the_position_between_reports(database: Database) -> None:
    """OpenSubsonic playbackReport sessions (core/feedback/playback.py), on a clock the test moves."""
    from playlistgen.core.feedback.playback import REPORTING_TTL_S, PlaybackReports

    database.write(lambda c: c.execute("INSERT INTO tracks (id, title, fingerprint) "
                                       "VALUES (1, 'a', 'f1'), (2, 'b', 'f2'), (3, 'c', 'f3')"))
    clock = [1000.0]
    reports = PlaybackReports(FeedbackStore(database, FeedbackRules(skip_threshold_s=30)), clock=lambda: clock[0])
    assert not reports.reporting(None)
    reports.report(None, 1, 200.0, "starting", 0.0)
    reports.report(None, 1, 200.0, "playing", 0.0, rate=2.0)
    clock[0] += 10                                                  # 10 s at double speed: 20 s in
    assert reports.report(None, 2, 200.0, "starting", 0.0) == [(1, SKIP, 20.0)]
    reports.report(None, 2, 200.0, "playing", 0.0)
    clock[0] += 40
    assert reports.report(None, 3, 200.0, "starting", 0.0) == []    # left at 40 s: neither skip nor play
    reports.report(None, 3, 200.0, "playing", 5.0)
    clock[0] += 3
    assert reports.report(None, 3, 200.0, "starting", 0.0) == []    # restarted early: wanted again, no skip
    reports.report(None, 3, 200.0, "playing", 0.0)
    clock[0] += 185
    assert reports.report(None, 3, 200.0, "stopped", 0.0) == [(3, PLAY, 185.0)]   # a stop that resets to 0
    assert reports.reporting(None) and not reports.reporting("alice")
    clock[0] += REPORTING_TTL_S + 1
    assert not reports.reporting(None)


def test_v8_database_keeps_its_data_through_migration_9(tmp_path: Path) -> None:
    conn = connect(tmp_path / "v8.db")
    migrate(conn, target=8)
    assert current_version(conn) == 8
    conn.execute("INSERT INTO tracks (id, title, artist, fingerprint) VALUES (7, 'Song', 'Artist', 'f7')")
    conn.execute("INSERT INTO mediaserver_songs (server_id, track_id, play_count, seen_at) VALUES ('s7', 7, 4, 1)")
    assert migrate(conn) == [9]
    assert conn.execute("SELECT title, artist FROM tracks").fetchall() == [("Song", "Artist")]
    assert conn.execute("SELECT server_id, track_id, play_count FROM mediaserver_songs").fetchall() == [("s7", 7, 4)]
    conn.execute("INSERT INTO listening_events (track_id, kind, source) VALUES (7, 'skip', 'mpd')")
    assert conn.execute("SELECT kind, user, at > 0 FROM listening_events").fetchall() == [("skip", None, 1)]
    conn.close()


# --- radio listens -------------------------------------------------------------------------------------

@pytest.fixture
def service(populated_library) -> PlaylistService:  # type: ignore[no-untyped-def]
    db, _facts, root = populated_library
    db.write(lambda c: c.execute("DELETE FROM listening_events"))
    yield PlaylistService(db, library_settings(root))
    db.write(lambda c: c.execute("DELETE FROM listening_events"))


def _radio(service: PlaylistService, seed: int, listener: str | None = None, size: int = 15) -> dict:
    return service.generate(PlaylistRequest.of("radio", service.settings, seeds=[seed], size=size,
                                               listener=listener, random_seed=1))


def test_radio_leaves_out_a_skipped_track_and_ranks_its_neighbours_lower(service: PlaylistService) -> None:
    seed = int(service.catalog().track_ids[0])
    before = [t["id"] for t in _radio(service, seed)["tracks"]]
    skipped = before[1]                               # the seed's closest neighbour
    service.feedback.record(skipped, SKIP, "mpd", position_s=4)
    after = _radio(service, seed)
    ids = [t["id"] for t in after["tracks"]]
    assert skipped not in ids and ids[0] == seed
    notes = after["playlist"]["notes"]
    assert "left out 1 track(s) you skipped recently" in notes, notes
    assert after["playlist"]["feedback_left_out"] == 1
    # the skipped track's neighbours come later than they did (or not at all)
    assert any("sound like ones you skipped" in n for n in notes), notes
    # a seed the user names is never left out
    assert [t["id"] for t in _radio(service, skipped)["tracks"]][0] == skipped
    # a later full play cancels the skip
    service.feedback.record(skipped, PLAY, "mpd")
    assert skipped in [t["id"] for t in _radio(service, seed)["tracks"]]


def test_another_users_skips_shape_only_their_radio(service: PlaylistService) -> None:
    seed = int(service.catalog().track_ids[0])
    before = [t["id"] for t in _radio(service, seed)["tracks"]]
    service.feedback.record(before[1], SKIP, "subsonic", user="alice", position_s=2)
    assert [t["id"] for t in _radio(service, seed)["tracks"]] == before
    assert before[1] not in [t["id"] for t in _radio(service, seed, listener="alice")["tracks"]]


def test_feedback_off_and_strategies_that_do_not_listen(service: PlaylistService, populated_library) -> None:  # type: ignore[no-untyped-def]
    db, _facts, root = populated_library
    seed = int(service.catalog().track_ids[0])
    before = [t["id"] for t in _radio(service, seed)["tracks"]]
    similar = service.generate(PlaylistRequest.of("similarity", service.settings, seeds=[seed], size=5))
    service.feedback.record(before[1], SKIP, "mpd")
    settings = library_settings(root)
    settings.feedback.avoid_days = 0
    assert [t["id"] for t in _radio(PlaylistService(db, settings), seed)["tracks"]] == before
    again = service.generate(PlaylistRequest.of("similarity", service.settings, seeds=[seed], size=5))
    assert again["tracks"] == similar["tracks"]    # "similar to" is a lookup, not a radio: skips do not count


def test_for_you_leaves_out_skipped(service: PlaylistService) -> None:
    everything = service.generate(PlaylistRequest.of("for_you", service.settings, size=40, random_seed=3))
    victim = everything["tracks"][0]["id"]
    service.feedback.record(victim, SKIP, "subsonic")
    again = service.generate(PlaylistRequest.of("for_you", service.settings, size=40, random_seed=3))
    assert victim not in [t["id"] for t in again["tracks"]]
    assert "left out 1 track(s) you skipped recently" in again["playlist"]["notes"]


def test_settings_have_the_feedback_section() -> None:
    f = Settings().feedback
    assert (f.skip_threshold_s, f.play_fraction, f.avoid_days, f.neighbours) == (30.0, 0.9, 30.0, 5)

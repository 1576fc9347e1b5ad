"""Strategy for_you over a real SQLite library with a listening history in mediaserver_songs, and
the scheduled mixes (due times with an injected clock, refresh in place)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from playlistgen.config import Settings
from playlistgen.core.playlists.schedule import MixScheduler
from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService
from playlistgen.core.storage.db import Database
from playlistgen.errors import ConfigError
from tests.conftest import library_settings

DAY = 86400.0


def settings_for(root: Path, schedule: list | None = None) -> Settings:
    (root / "playlists").mkdir(exist_ok=True)
    return library_settings(root, schedule=schedule or [])


def set_history(db: Database, rows: list[tuple[int, int, float | None, float | None]]) -> None:
    """(track id, play count, last played, starred) as the media-server link stores them."""
    def write(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute("DELETE FROM mediaserver_songs")
        conn.executemany("INSERT INTO mediaserver_songs(server_id, track_id, method, play_count, last_played, "
                         "starred, seen_at) VALUES (?, ?, 'path', ?, ?, ?, ?)",
                         [(f"srv-{t}", t, n, last, star, time.time()) for t, n, last, star in rows])
    db.write(write)


def generate(service: PlaylistService, body: dict) -> dict:
    return service.generate(PlaylistRequest.parse(body, service.settings))


def test_without_history_it_says_so_and_mixes_the_whole_library(populated_library) -> None:  # type: ignore[no-untyped-def]
    db, _, root = populated_library
    set_history(db, [])
    out = generate(PlaylistService(db, settings_for(root)), {"strategy": "for_you", "size": 12, "random_seed": 5})
    assert len(out["tracks"]) == 12
    assert any("no listening history" in n for n in out["playlist"]["notes"])
    assert out["playlist"]["name"] == "Library mix"
    assert len({t["artist"] for t in out["tracks"]}) >= 6  # a mix, not one corner of the library


def test_seeds_come_from_history_and_recent_plays_are_left_out(populated_library) -> None:  # type: ignore[no-untyped-def]
    db, facts, root = populated_library
    by_style = facts["by_style"]
    now = time.time()
    recent = by_style["chill"][:4]
    most = by_style["jazz"][:4]
    starred = by_style["ambient"][:2]
    set_history(db, [*[(t, 1, now - DAY * (i + 1), None) for i, t in enumerate(recent)],
                     *[(t, 40 + i, now - 60 * DAY, None) for i, t in enumerate(most)],
                     *[(t, 0, None, now - 90 * DAY) for t in starred]])
    service = PlaylistService(db, settings_for(root))
    out = generate(service, {"strategy": "for_you", "size": 15, "random_seed": 2, "seed_count": 6})
    info = out["playlist"]["for_you"]
    assert set(info["seeds"]["recent"]) <= set(recent) and info["seeds"]["recent"]
    assert set(info["seeds"]["most_played"]) <= set(most) and info["seeds"]["most_played"]
    assert set(info["seeds"]["starred"]) <= set(starred) and info["seeds"]["starred"]
    assert sum(len(v) for v in info["seeds"].values()) == 6
    ids = [t["id"] for t in out["tracks"]]
    assert len(ids) == 15 and not set(ids) & set(recent)  # played in the last 7 days
    assert info["excluded_recently_played"] == len(recent)
    assert not any("no listening history" in n for n in out["playlist"]["notes"])
    seed_styles = set(by_style["chill"]) | set(by_style["jazz"]) | set(by_style["ambient"])
    assert sum(t in seed_styles for t in ids) >= 12  # neighbours of the seeds, not random tracks
    artists = [t["artist"] for t in out["tracks"]]
    assert all(a != b for a, b in zip(artists, artists[1:], strict=False))  # the usual diversity

    only_most = generate(service, {"strategy": "for_you", "size": 10, "random_seed": 2,
                                   "params": {"recent_weight": 0, "starred_weight": 0, "seed_count": 3}})
    seeds = only_most["playlist"]["for_you"]["seeds"]
    assert seeds["recent"] == [] and seeds["starred"] == [] and len(seeds["most_played"]) == 3
    assert sum(t["id"] in set(by_style["jazz"]) for t in only_most["tracks"]) >= 6  # mostly the seeds' style

    keep = generate(service, {"strategy": "for_you", "size": 10, "random_seed": 2, "exclude_played_days": 0})
    assert keep["playlist"]["for_you"]["excluded_recently_played"] == 0


def test_scheduled_mix_due_times_and_refresh_in_place(populated_library) -> None:  # type: ignore[no-untyped-def]
    db, facts, root = populated_library
    set_history(db, [(t, 3, time.time() - 30 * DAY, None) for t in facts["by_style"]["rock"][:3]])
    clock = {"now": datetime(2026, 3, 1, 6, 59)}
    settings = settings_for(root, [{"name": "Morning mix", "strategy": "for_you", "at": "07:00", "size": 8},
                                   {"name": "Chill evening", "strategy": "mood", "tags": ["chill"], "at": "19:30",
                                    "size": 5}])
    mixes = MixScheduler(PlaylistService(db, settings), settings, now=lambda: clock["now"])
    assert mixes.due() == [] and mixes.seconds_to_next() == 60.0  # 07:00 is one minute away: poll cap
    clock["now"] = datetime(2026, 3, 1, 7, 0, 30)
    assert [m.name for m in mixes.due()] == ["Morning mix"]
    first = mixes.run_due()
    assert len(first) == 1 and first[0]["ok"] and not first[0]["refreshed"]
    clock["now"] = datetime(2026, 3, 1, 18, 0)
    assert mixes.due() == []  # done for today; the evening mix is later
    assert mixes.seconds_to_next() == 60.0
    again = mixes.run(["Morning mix"])[0]
    assert again["refreshed"] and again["playlist_id"] == first[0]["playlist_id"]
    assert db.query("SELECT count(*) FROM playlists WHERE name = 'Morning mix'")[0][0] == 1
    assert len(list(Path(settings.playlists.output_dir).glob("Morning mix*.m3u8"))) == 1
    items = db.query("SELECT count(*) FROM playlist_items WHERE playlist_id = ?", (again["playlist_id"],))[0][0]
    assert items == again["tracks"] == 8
    assert [m.name for m in mixes.due(datetime(2026, 3, 1, 19, 31))] == ["Chill evening"]
    assert [m.name for m in mixes.due(datetime(2026, 3, 2, 7, 1))] == ["Morning mix"]  # the next day


def test_a_bad_schedule_entry_is_refused_when_serve_starts(populated_library) -> None:  # type: ignore[no-untyped-def]
    db, _, root = populated_library
    settings = settings_for(root, [{"name": "Oops", "strategy": "for_yuo", "at": "07:00"}])
    with pytest.raises(ConfigError) as caught:
        MixScheduler(PlaylistService(db, settings), settings)
    assert "playlists.schedule[0]" in caught.value.message and "for_you" in caught.value.one_line()


def test_an_empty_mix_is_not_saved_and_stays_due(populated_library) -> None:  # type: ignore[no-untyped-def]
    db, _, root = populated_library
    settings = settings_for(root, [{"name": "Impossible", "strategy": "filter", "at": "07:00",
                                    "filters": {"bpm": [300, 400]}}])
    mixes = MixScheduler(PlaylistService(db, settings), settings, now=lambda: datetime(2026, 3, 1, 8, 0))
    result = mixes.run()[0]
    assert not result["ok"] and result["error"]["code"] == "empty_mix"
    assert db.query("SELECT count(*) FROM playlists WHERE name = 'Impossible'")[0][0] == 0
    assert [m.name for m in mixes.due()] == ["Impossible"]

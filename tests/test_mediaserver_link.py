"""The media-server link and playlist push against a real Subsonic server (supysonic on loopback)
and a real playlistgen database with the same library analysed (preset fast)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from playlistgen.app import App
from playlistgen.config import load_settings
from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from playlistgen.core.integrations.mediaserver.service import MediaServerService, hook_playlists
from playlistgen.core.playlists.service import PlaylistRequest, PlaylistService
from playlistgen.core.storage.db import Database
from playlistgen.errors import MediaServerError

from .conftest import free_port
from .helpers import wait_for


def _settings(tmp_path: Path, server, **mediaserver):  # type: ignore[no-untyped-def]
    ms = {"url": server.url, "user": server.user, "password": server.password, **mediaserver}
    return load_settings(None, environ={}, overrides={
        "library": {"paths": [str(server.library)]}, "database": {"path": str(tmp_path / "pg.db")},
        "playlists": {"output_dir": str(tmp_path / "playlists")}, "mediaserver": ms})


@pytest.fixture
def db_copy(supysonic_db: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    shutil.copy(supysonic_db, tmp_path / "pg.db")
    (tmp_path / "playlists").mkdir()
    db = Database(tmp_path / "pg.db")
    yield db
    db.close()


def test_link_matches_every_song_by_path(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    service = MediaServerService(db_copy, _settings(tmp_path, supysonic))
    report = service.link_now()
    n = len(supysonic.songs)
    assert report["songs"] == n and report["by_method"]["path"] == n and report["unmatched"] == 0
    status = service.status()
    assert status["server"]["version"] == "1.12.0"
    assert status["songs_seen"] == n and status["linked"]["total"] == n and status["unmatched"]["count"] == 0
    assert status["last_link"]["duration_s"] > 0 and status["last_error"] is None
    # every server song points at the track of the same file
    rows = db_copy.query("SELECT s.path, f.path FROM mediaserver_songs s JOIN files f ON f.track_id = s.track_id")
    assert sorted(str(supysonic.library / s) for s, _ in rows) == sorted(f for _, f in rows)
    # linking again is idempotent: same rows, nothing removed
    again = service.link_now()
    assert again["by_method"] == report["by_method"] and again["removed"] == 0
    assert db_copy.query("SELECT count(*) FROM mediaserver_songs")[0][0] == n


def test_path_map_change_falls_back_to_suffix_and_tags(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The server now sees the files under another root, and one file has another name here:
    # the path suffix links the others, artist + title + duration links the renamed one.
    renamed = next(s for s in supysonic.songs if s["rel"].startswith("Gamma/"))
    db_copy.write(lambda c: c.execute("UPDATE files SET path = ? WHERE path = ?",
                                      (str(Path(renamed["path"]).with_name("elsewhere.flac")), renamed["path"])))
    gone = next(s for s in supysonic.songs if s["rel"].startswith("Delta/"))
    db_copy.write(lambda c: c.execute("UPDATE files SET status = 'missing' WHERE path = ?", (gone["path"],)))
    service = MediaServerService(db_copy, _settings(tmp_path, supysonic, path_map={"": "/srv/music"}))
    report = service.link_now()
    n = len(supysonic.songs)
    assert report["by_method"] == {"path": 0, "suffix": n - 2, "mbid": 0, "tags": 1}
    assert report["unmatched"] == 1
    by_path = dict(db_copy.query("SELECT path, method FROM mediaserver_songs"))
    assert by_path[renamed["rel"]] == "tags"
    unmatched = service.status()["unmatched"]["first"]
    assert [u["path"] for u in unmatched] == [gone["rel"]]
    assert "no library file with that path or file name" in unmatched[0]["reason"]
    assert "no track with the same artist and title" in unmatched[0]["reason"]


def test_songs_whose_files_are_not_analysed_yet_say_so(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 21.11: queued, being analysed, or on disk and not reconciled yet: "not analysed yet"
    (each then waits for that file, see test_mediaserver_pending.py); a failed analysis says so."""
    by_rel = {s["rel"]: s["path"] for s in supysonic.songs}
    queued, analysing, unseen, failed = (by_rel[r] for r in (
        "Alpha Band/First Light/01 Morning.flac", "Beta Trio/Nocturnes/01 Dusk.ogg",
        "Beta Trio/Nocturnes/02 Midnight.ogg", "Delta/Live/01 Encore.flac"))

    def change(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute("UPDATE files SET status = 'pending' WHERE path = ?", (queued,))
        conn.execute("UPDATE files SET status = 'analysing' WHERE path = ?", (analysing,))
        conn.execute("DELETE FROM files WHERE path = ?", (unseen,))
        conn.execute("UPDATE files SET status = 'failed', error = 'decoder: truncated frame' WHERE path = ?",
                     (failed,))

    db_copy.write(change)
    service = MediaServerService(db_copy, _settings(tmp_path, supysonic))
    report = service.link_now()
    assert report["unmatched"] == 4 and report["not_analysed_yet"] == 3
    reasons = {u["path"]: u["reason"] for u in service.status()["unmatched"]["first"]}
    rel = {path: r for r, path in by_rel.items()}
    assert {rel[p]: reasons[rel[p]] for p in (queued, analysing, unseen)} == dict.fromkeys(
        (rel[queued], rel[analysing], rel[unseen]), "not analysed yet")
    assert reasons[rel[failed]].startswith("its library file could not be analysed (decoder: truncated frame)")
    assert service.status()["unmatched"]["not_analysed_yet"] == 3
    # the queued file's analysis lands (as the writer records it): its song is linked by path
    db_copy.write(lambda c: c.execute("UPDATE files SET status = 'done' WHERE path = ?", (queued,)))
    assert service.link_analysed([queued, analysing]) == 1
    linked = db_copy.query("SELECT method FROM mediaserver_songs WHERE path = ?", (rel[queued],))
    assert linked == [("path",)] and service.status()["unmatched"]["not_analysed_yet"] == 2


def test_wrong_password_is_logged_once_and_degrades(supysonic, db_copy, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, supysonic, password="wrong-password-123")
    service = MediaServerService(db_copy, settings)
    caplog.set_level(logging.DEBUG, logger="playlistgen.core.integrations.mediaserver")
    for _ in range(3):
        with pytest.raises(MediaServerError) as caught:
            service.link_now()
    assert caught.value.subsonic_code == 40
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and supysonic.url in errors[0].getMessage()
    assert "wrong-password-123" not in caplog.text
    health = service.health()
    assert health["ready"] and health["degraded"] and "mediaserver.password" in health["error"]
    assert service.status()["last_error"] == health["error"]
    # the API: /health says degraded but stays 200 (analysis and API go on), status shows the error
    client = App.for_api(settings, db_copy, mediaserver=service).api.test_client()
    answer = client.get("/health")
    assert answer.status_code == 200 and answer.get_json()["status"] == "degraded"
    assert answer.get_json()["components"]["mediaserver"]["degraded"]
    body = client.get("/api/v1/mediaserver/status").get_json()
    assert "refused user 'alice'" in body["last_error"] and "wrong-password-123" not in str(body)
    failed = client.post("/api/v1/mediaserver/link?wait=true")
    assert failed.status_code == 502 and failed.get_json()["error"]["code"] == "mediaserver_error"


def test_server_down_degrades(db_copy, tmp_path, supysonic) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(None, environ={}, overrides={
        "library": {"paths": [str(supysonic.library)]},
        "mediaserver": {"url": f"http://127.0.0.1:{free_port()}", "user": "u", "password": "pw"}})
    service = MediaServerService(db_copy, settings)
    with pytest.raises(MediaServerError, match="connection refused"):
        service.link_now()
    assert service.health()["degraded"]


def _server_playlists(server) -> dict:  # type: ignore[no-untyped-def]
    client = SubsonicClient(server.url, server.user, server.password)
    return {p["id"]: p for p in client.get_playlists()}


def test_push_repush_update_in_place_and_delete(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, supysonic)
    playlists = PlaylistService(db_copy, settings)
    service = hook_playlists(playlists, db_copy, settings)
    service.link_now()
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    theirs = client.create_or_update_playlist("not ours", [s["id"] for s in client.iter_songs()][:2])

    saved = playlists.generate(PlaylistRequest.parse({"strategy": "random", "size": 6, "save": True,
                                                      "name": "push test", "diversity": False, "random_seed": 1},
                                                     settings))
    meta = saved["playlist"]
    server_id = meta["mediaserver"]["server_playlist_id"]
    assert meta["mediaserver"]["songs_pushed"] == 6 and meta["mediaserver"]["songs_left_out"] == 0
    on_server = _server_playlists(supysonic)
    assert on_server[server_id]["name"] == "push test" and on_server[server_id]["songCount"] == 6

    # pushing again replaces the songs in place: same id, never a second copy
    assert service.push(meta["id"])["server_playlist_id"] == server_id
    # a track the server has no song for is left out and counted in the playlist's notes
    left = saved["tracks"][0]["id"]
    db_copy.write(lambda c: c.execute("UPDATE mediaserver_songs SET track_id = NULL, method = NULL WHERE track_id = ?",
                                      (left,)))
    result = service.push(meta["id"])
    assert result == {"server_playlist_id": server_id, "songs_pushed": 5, "songs_left_out": 1, "created": False}
    on_server = _server_playlists(supysonic)
    assert [p["name"] for p in on_server.values()].count("push test") == 1
    assert on_server[server_id]["songCount"] == 5
    shown = playlists.get_playlist(meta["id"])["playlist"]
    assert shown["mediaserver"]["songs_left_out"] == 1 and any("left out of the media-server" in n
                                                               for n in shown["notes"])

    # deleting the saved playlist deletes the server playlist we created, nothing else
    playlists.delete_playlist(meta["id"])
    on_server = _server_playlists(supysonic)
    assert server_id not in on_server and theirs in on_server
    service.link_now()  # a full link (pushes unpushed playlists, retries deletes) leaves theirs alone
    assert theirs in _server_playlists(supysonic)
    client.delete_playlist(theirs)


def test_link_pushes_playlists_saved_while_the_server_was_down(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    down = load_settings(None, environ={}, overrides={
        "library": {"paths": [str(supysonic.library)]}, "playlists": {"output_dir": str(tmp_path / "playlists")},
        "mediaserver": {"url": f"http://127.0.0.1:{free_port()}", "user": "u", "password": "pw"}})
    playlists = PlaylistService(db_copy, down)
    hook_playlists(playlists, db_copy, down)
    saved = playlists.generate(PlaylistRequest.parse({"strategy": "random", "size": 3, "save": True,
                                                      "name": "while down"}, down))
    assert any("not pushed to the media server" in n for n in saved["playlist"]["notes"])
    service = MediaServerService(db_copy, _settings(tmp_path, supysonic))
    report = service.link_now()
    assert report["playlists"]["pushed"] == 1
    row = db_copy.query("SELECT server_playlist_id, songs_pushed FROM mediaserver_playlists WHERE playlist_id = ?",
                        (saved["playlist"]["id"],))
    assert row and row[0][1] == 3
    SubsonicClient(supysonic.url, supysonic.user, supysonic.password).delete_playlist(row[0][0])


def test_thread_links_at_start_and_after_a_library_change(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    service = MediaServerService(db_copy, _settings(tmp_path, supysonic))
    service.check_s, service.quiet_s, service.min_spacing_s = 0.05, 0.2, 0.0
    service.start()
    try:
        first = wait_for(lambda: service.status()["last_link"]["at"], 30, "the first link")
        assert service.status()["unmatched"]["count"] == 0
        gone = supysonic.songs[0]["path"]  # a reconcile found this file missing
        db_copy.write(lambda c: c.execute("UPDATE files SET status = 'missing', updated_at = unixepoch('subsec') "
                                          "WHERE path = ?", (gone,)))
        wait_for(lambda: (service.status()["last_link"]["at"] or 0) > first, 30, "a re-link")
        status = service.status()
        assert status["unmatched"]["count"] == 1
        assert status["unmatched"]["first"][0]["path"] == supysonic.songs[0]["rel"]
    finally:
        service.stop()


def _tracks_the_server_lacks(db: Database, folder: Path, count: int) -> list[int]:
    """Analysed tracks of files the server does not have (another folder of this library)."""
    import numpy as np

    from .playlist_fixtures import add_track, make_result, style_centres

    rng = np.random.default_rng(3)
    centres = style_centres(rng)
    return [add_track(db, folder, make_result(rng, "rock", centres, artist=f"Local {i}", album="Only here",
                                              title=f"Local {i}", track_number=i + 1, preset="fast"),
                      fingerprint=f"local-{i}") for i in range(count)]


def test_a_saved_playlist_is_chosen_among_the_servers_songs(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 21.8: playlistgen knows 20 tracks the server lacks. A saved playlist (it is pushed) is
    made of songs the server has, so it arrives whole; an unsaved one still uses the whole library."""
    local = set(_tracks_the_server_lacks(db_copy, tmp_path / "elsewhere", 20))
    settings = _settings(tmp_path, supysonic)
    playlists = PlaylistService(db_copy, settings)
    service = hook_playlists(playlists, db_copy, settings)
    service.link_now()
    n = len(supysonic.songs)
    for strategy, extra in (("random", {"random_seed": 2}), ("filter", {"random_seed": 5})):
        saved = playlists.generate(PlaylistRequest.parse({"strategy": strategy, "size": n, "save": True,
                                                          "name": f"whole {strategy}", "diversity": False, **extra},
                                                         settings))
        meta = saved["playlist"]
        assert meta["size"] == n and not local & {t["id"] for t in saved["tracks"]}, meta["notes"]
        assert meta["mediaserver"]["songs_pushed"] == n and meta["mediaserver"]["songs_left_out"] == 0
        assert _server_playlists(supysonic)[meta["mediaserver"]["server_playlist_id"]]["songCount"] == n
        playlists.delete_playlist(meta["id"])
    unsaved = playlists.generate(PlaylistRequest.parse({"strategy": "random", "size": 20, "diversity": False,
                                                        "random_seed": 2}, settings))
    assert local & {t["id"] for t in unsaved["tracks"]}


def test_a_scheduled_mix_is_chosen_among_the_servers_songs(supysonic, db_copy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from playlistgen.core.playlists.schedule import MixScheduler

    local = set(_tracks_the_server_lacks(db_copy, tmp_path / "elsewhere", 20))
    settings = _settings(tmp_path, supysonic)
    settings.playlists.schedule = [{"name": "Server mix", "at": "07:00", "strategy": "random", "size": 5,
                                    "random_seed": 4, "diversity": False}]
    playlists = PlaylistService(db_copy, settings)
    service = hook_playlists(playlists, db_copy, settings)
    service.link_now()
    [result] = MixScheduler(playlists, settings).run()
    assert result["ok"] and result["tracks"] == 5, result
    items = {r[0] for r in db_copy.query("SELECT track_id FROM playlist_items WHERE playlist_id = ?",
                                         (result["playlist_id"],))}
    assert len(items) == 5 and not items & local
    pushed = db_copy.query("SELECT songs_pushed, songs_left_out FROM mediaserver_playlists WHERE playlist_id = ?",
                           (result["playlist_id"],))
    assert pushed == [(5, 0)]
    playlists.delete_playlist(result["playlist_id"])

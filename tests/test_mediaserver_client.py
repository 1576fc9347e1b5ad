"""SubsonicClient against a real supysonic (own virtualenv, loopback)."""

from __future__ import annotations

import pytest

from playlistgen.core.integrations.mediaserver.client import SubsonicClient
from playlistgen.errors import MediaServerError, PlaylistgenError

from .conftest import free_port


def test_ping_and_every_song(supysonic) -> None:
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    info = client.ping()
    assert info["version"] == "1.12.0"
    assert client.use_password  # supysonic 0.7.9 predates token auth: fell back to p=enc:
    songs = list(client.iter_songs(page=2))  # several pages
    assert sorted(s["path"] for s in songs) == sorted(r["rel"] for r in supysonic.songs)
    walked = list(client.walk_songs())
    assert sorted(s["id"] for s in walked) == sorted(s["id"] for s in songs)


def test_wrong_password_is_one_clear_error_without_the_password(supysonic) -> None:
    client = SubsonicClient(supysonic.url, supysonic.user, "not-the-password-xyz")
    with pytest.raises(MediaServerError) as caught:
        client.ping()
    err = caught.value
    assert isinstance(err, PlaylistgenError) and err.subsonic_code == 40
    assert supysonic.url in err.one_line() and "mediaserver.password" in err.hint
    assert "not-the-password-xyz" not in err.one_line() and "6e6f742d" not in err.one_line()


def test_server_down_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MediaServerError) as caught:
        SubsonicClient(url, "u", "secret-pw", timeout=2).ping()
    assert caught.value.one_line().startswith(f"cannot reach media server at {url}: connection refused")
    assert caught.value.subsonic_code is None and "secret-pw" not in caught.value.one_line()


def test_playlist_create_update_in_place_delete(supysonic) -> None:
    client = SubsonicClient(supysonic.url, supysonic.user, supysonic.password)
    ids = [s["id"] for s in client.iter_songs()]
    pid = client.create_or_update_playlist("client test", ids[:3])
    again = client.create_or_update_playlist("client test renamed", ids[3:5], playlist_id=pid)
    assert again == pid
    mine = [p for p in client.get_playlists() if p["id"] == pid]
    assert len(mine) == 1 and mine[0]["name"] == "client test renamed" and mine[0]["songCount"] == 2
    client.delete_playlist(pid)
    assert pid not in {p["id"] for p in client.get_playlists()}
    # a server playlist deleted behind our back is created afresh
    new = client.create_or_update_playlist("client test", ids[:1], playlist_id=pid)
    assert new != pid
    client.delete_playlist(new)

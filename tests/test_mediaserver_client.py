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


def test_the_link_and_the_proxy_share_one_connection(tmp_path, supysonic) -> None:  # type: ignore[no-untyped-def]
    """One HTTP client per media server (issue 19): the app builds one transport and both the
    linked user's client and the /rest proxy's upstream use it; it keeps no cookies, so nothing
    one client of the proxy was given travels with another's request."""
    from playlistgen.app import App
    from playlistgen.config import load_settings
    from playlistgen.core.storage.db import Database

    settings = load_settings(overrides={"mediaserver": {"url": supysonic.url, "user": supysonic.user,
                                                        "password": supysonic.password, "proxy": True},
                                        "database": {"path": str(tmp_path / "pg.db")}})
    app = App.for_api(settings, Database.from_settings(settings), http=False)
    try:
        from playlistgen.core.integrations.mediaserver.service import hook_playlists

        services = app.services
        assert services is not None and services.upstream is not None
        link = hook_playlists(None, services.db, settings, transport=services.upstream.transport)
        assert link is not None and link.client.session is services.upstream.session
        link.client.ping()
        assert services.upstream.session.trust_env is False
    finally:
        app.stop()


def test_the_connection_keeps_no_cookies() -> None:
    """A server that sets a cookie on one answer never sees it come back on the next request."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from playlistgen.core.integrations.mediaserver.transport import SubsonicTransport

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "sid=alice-session; Path=/")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        transport = SubsonicTransport(f"http://127.0.0.1:{server.server_port}")
        for _ in range(2):
            transport.session.get(transport.endpoint("ping.view"), timeout=5).close()
        assert seen == [None, None] and list(transport.session.cookies) == []
    finally:
        server.shutdown()
        server.server_close()

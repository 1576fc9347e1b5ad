"""A real client library, py-opensonic, against the /rest proxy in front of a real supysonic
(issue 21, point 12): ping, the OpenSubsonic extensions, getSimilarSongs2, getSonicSimilarTracks,
findSonicPath through the library's own methods, ``stream`` with a Range header, and the same
non-stream calls in JSON, XML and JSONP (the library speaks JSON only; the other two through
``requests`` with the same authentication).

supysonic stores only password hashes, so it knows no token authentication (``t`` + ``s``, the
library's default): it answers error 10 "A required parameter is missing" (it looks for ``p``).
The connections here use the library's ``legacy_auth`` (``p=enc:<hex>``), what a user of a
supysonic upstream sets; a test checks the proxy hands the token client the server's own error."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.test_subsonic_proxy import Proxy, proxy  # noqa: F401  (the module-scoped proxy fixture)

libopensonic = pytest.importorskip(
    "libopensonic", reason="py-opensonic is not installed: `pip install -e .[dev]` (it is in the dev extra)")

NS = "{http://subsonic.org/restapi}"
DUSK = "Beta Trio/Nocturnes/01 Dusk.ogg"
MIDNIGHT = "Beta Trio/Nocturnes/02 Midnight.ogg"
MORNING = "Alpha Band/First Light/01 Morning.flac"


def _connection_args(server: Proxy, supysonic) -> dict:  # type: ignore[no-untyped-def]
    """py-opensonic takes the host and the port apart; it adds the `/rest` itself."""
    url = urlsplit(server.url)
    return {"base_url": f"{url.scheme}://{url.hostname}", "port": url.port,
            "username": supysonic.user, "password": supysonic.password, "app_name": "w5-tests",
            "legacy_auth": True}


@pytest.fixture(scope="module")
def client(proxy: Proxy, supysonic) -> Iterator:  # type: ignore[no-untyped-def]  # noqa: F811
    """The library's synchronous Connection: POST form bodies, ``.view`` names, ``p=enc:<hex>``."""
    conn = libopensonic.Connection(**_connection_args(proxy, supysonic))
    try:
        yield conn
    finally:
        conn.cleanup()


def _auth(supysonic) -> dict:  # type: ignore[no-untyped-def]
    """The authentication the library sends with ``legacy_auth`` (the hex-encoded password)."""
    return {"u": supysonic.user, "p": "enc:" + supysonic.password.encode().hex(), "v": "1.16.1", "c": "w5-tests"}


def _formats(server: Proxy, supysonic, method: str, **params: object) -> dict:  # type: ignore[no-untyped-def]
    """The answer to ``method`` in JSON, XML and JSONP: {"json": dict, "xml": Element, "jsonp": dict}."""
    out: dict = {}
    for fmt in ("json", "xml", "jsonp"):
        query = {**_auth(supysonic), "f": fmt, **params}
        if fmt == "jsonp":
            query["callback"] = "cb_1"
        answer = requests.get(f"{server.url}/rest/{method}.view", params=query, timeout=30)
        assert answer.status_code == 200, (method, fmt, answer.text[:300])
        if fmt == "json":
            assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
            out[fmt] = answer.json()["subsonic-response"]
        elif fmt == "xml":
            assert "xml" in answer.headers["Content-Type"], answer.headers
            out[fmt] = ET.fromstring(answer.content)
        else:
            text = answer.text.strip()
            assert text.startswith("cb_1(") and text.rstrip(";").endswith(")"), text[:200]
            out[fmt] = json.loads(text.rstrip(";")[len("cb_1("):-1])["subsonic-response"]
    for fmt in ("json", "jsonp"):
        assert out[fmt]["status"] == "ok", (method, fmt, out[fmt])
    assert out["xml"].tag == f"{NS}subsonic-response" and out["xml"].get("status") == "ok", ET.tostring(out["xml"])
    return out


def test_ping_with_the_library_and_in_every_format(client, proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert client.ping() is True
    answers = _formats(proxy, supysonic, "ping")
    assert answers["json"] == answers["jsonp"]
    # wrong credentials: the library raises the server's error 40 instead of claiming it is alive
    wrong = libopensonic.Connection(**{**_connection_args(proxy, supysonic), "password": "not the password"})
    # token authentication (the library's default): supysonic's own error 10, through the proxy too
    token = libopensonic.Connection(**{**_connection_args(proxy, supysonic), "legacy_auth": False})
    direct = urlsplit(supysonic.url)
    token_direct = libopensonic.Connection(**{**_connection_args(proxy, supysonic), "legacy_auth": False,
                                              "port": direct.port})
    try:
        with pytest.raises(libopensonic.errors.CredentialError):
            wrong.ping()
        with pytest.raises(libopensonic.errors.ParameterError) as ours:
            token.ping()
        with pytest.raises(libopensonic.errors.ParameterError) as theirs:
            token_direct.ping()
        assert str(ours.value) == str(theirs.value)
    finally:
        for conn in (wrong, token, token_direct):
            conn.cleanup()


def test_open_subsonic_extensions(client, proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    extensions = {e.name: e.versions for e in client.get_open_subsonic_extensions()}
    assert extensions.get("sonicSimilarity") == [1], extensions
    answers = _formats(proxy, supysonic, "getOpenSubsonicExtensions")
    for fmt in ("json", "jsonp"):
        assert {e["name"]: e["versions"] for e in answers[fmt]["openSubsonicExtensions"]} == extensions, fmt
    xml = {e.get("name"): [int(v.text) for v in e.findall(f"{NS}versions")]
           for e in answers["xml"].findall(f"{NS}openSubsonicExtensions")}
    assert xml == extensions


def test_similar_songs2_is_answered_with_sonic_similarity(client, proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    seed = proxy.songs[MORNING]
    songs = client.get_similar_songs2(seed, count=3)
    ids = [s.id for s in songs]
    assert 1 <= len(ids) <= 3 and seed not in ids and set(ids) <= set(proxy.songs.values()), ids
    assert all(s.title and not s.is_dir for s in songs)
    answers = _formats(proxy, supysonic, "getSimilarSongs2", id=seed, count=3)
    for fmt in ("json", "jsonp"):
        assert [s["id"] for s in answers[fmt]["similarSongs2"]["song"]] == ids, fmt
    xml = answers["xml"].find(f"{NS}similarSongs2").findall(f"{NS}song")
    assert [s.get("id") for s in xml] == ids


def test_sonic_similar_tracks(client, proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    seed = proxy.songs[DUSK]
    matches = client.get_sonic_similar_tracks(seed, count=4)
    assert len(matches) == 4, matches
    ids, sims = [m.entry.id for m in matches], [m.similarity for m in matches]
    assert set(ids) <= set(proxy.songs.values()) - {seed} and len(set(ids)) == 4
    assert all(0.0 <= s <= 1.0 for s in sims) and sims == sorted(sims, reverse=True), sims
    answers = _formats(proxy, supysonic, "getSonicSimilarTracks", id=seed, count=4)
    for fmt in ("json", "jsonp"):
        got = answers[fmt]["sonicMatch"]
        assert [m["entry"]["id"] for m in got] == ids, fmt
        assert [m["similarity"] for m in got] == pytest.approx(sims), fmt
    xml = answers["xml"].findall(f"{NS}sonicMatch")
    assert [m.find(f"{NS}entry").get("id") for m in xml] == ids
    assert [float(m.get("similarity")) for m in xml] == pytest.approx(sims, abs=1e-6)
    # an unknown song is the Subsonic error 70, which the library raises as its DataNotFoundError
    with pytest.raises(libopensonic.errors.DataNotFoundError):
        client.get_sonic_similar_tracks("no-such-song")


def test_find_sonic_path(client, proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    start, end = proxy.songs[MORNING], proxy.songs[MIDNIGHT]
    path = client.find_sonic_path(start, end, count=4)
    ids, sims = [m.entry.id for m in path], [m.similarity for m in path]
    assert ids[0] == start and ids[-1] == end and 2 <= len(ids) <= 4 and len(set(ids)) == len(ids), ids
    assert set(ids) <= set(proxy.songs.values()) and all(0.0 <= s <= 1.0 for s in sims), sims
    answers = _formats(proxy, supysonic, "findSonicPath", startSongId=start, endSongId=end, count=4)
    for fmt in ("json", "jsonp"):
        assert [m["entry"]["id"] for m in answers[fmt]["sonicMatch"]] == ids, fmt
    xml = answers["xml"].findall(f"{NS}sonicMatch")
    assert [m.find(f"{NS}entry").get("id") for m in xml] == ids


def test_stream_with_a_range_through_the_library(proxy: Proxy, supysonic) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    data = (Path(supysonic.library) / MORNING).read_bytes()
    song = proxy.songs[MORNING]
    assert len(data) > 4096

    async def fetch(byte_range: str | None, *, use_get: bool = True,
                    port: int | None = None) -> tuple[int, dict, bytes]:
        args = {**_connection_args(proxy, supysonic), "use_get": use_get}
        conn = libopensonic.AsyncConnection(**({**args, "port": port} if port else args))
        try:
            res = await conn.stream(song, tformat="raw", byte_range=byte_range)
            return res.status, dict(res.headers), await res.read()
        finally:
            await conn.cleanup()

    # GET (the library's use_get): the Range is honoured end to end
    status, headers, part = asyncio.run(fetch("bytes=100-1123"))
    assert status == 206 and part == data[100:1124], (status, len(part))
    assert headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
    status, _headers, tail = asyncio.run(fetch(f"bytes={len(data) - 500}-"))
    assert status == 206 and tail == data[-500:]
    status, _headers, whole = asyncio.run(fetch(None))
    assert status == 200 and whole == data
    # POST (the library's default): supysonic (Werkzeug) answers a Range only on GET, so it sends
    # the whole file with 200; the proxy must hand over exactly the server's answer, either way
    theirs = asyncio.run(fetch("bytes=100-1123", use_get=False, port=urlsplit(supysonic.url).port))
    ours = asyncio.run(fetch("bytes=100-1123", use_get=False))
    assert ours[0] == theirs[0] and ours[2] == theirs[2], (ours[0], theirs[0])
    assert ours[2] == (data[100:1124] if ours[0] == 206 else data)

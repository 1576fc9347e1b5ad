"""``/rest/*``: the user's Subsonic server, proxied, with sonic similarity for every Subsonic app
(registered only with ``mediaserver.proxy: true``).

Every request we do not answer ourselves is forwarded unchanged — method, query string, form
body, headers (Range included) — and the server's answer is streamed back with its status and
headers, bytes untouched (``stream``, ``download``, ``getCoverArt``...). We answer, with the
server's song ids and after the server has accepted the client's credentials:

* ``getSimilarSongs`` / ``getSimilarSongs2`` (``id`` of a song, album or artist; ``count``,
  default 50): a radio from the playlist engine over the songs the server has; an id we cannot
  place is forwarded, so the server's own answer is the fallback;
* OpenSubsonic ``sonicSimilarity`` v1: ``getSonicSimilarTracks`` (``id``, ``count`` default 10)
  and ``findSonicPath`` (``startSongId``, ``endSongId``, ``count`` default 25), a top-level
  ``sonicMatch`` array of ``{"entry": <Child>, "similarity": 0..1}``;
* ``getOpenSubsonicExtensions`` (no credentials needed, as the spec requires): the server's list
  plus ``sonicSimilarity`` [1].

``scrobble`` is forwarded, and when the server accepts a submission by the linked user
(``mediaserver.user``), the songs' play counts and last-played times are updated at once.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, request

from ...core.integrations.mediaserver.sonic import Match, SonicSearch
from ...errors import NotFoundError, PlaylistgenError
from ..context import current_services
from .format import error_body, ok_body, parse_status, render
from .upstream import Upstream

log = logging.getLogger(__name__)

bp = Blueprint("subsonic_proxy", __name__)
EXTENSION = "sonicSimilarity"
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_\-.]+(?:/[A-Za-z0-9_\-.]+)*$")
MAX_COUNT = 500
# Subsonic error codes
GENERIC, MISSING, NOT_FOUND = 0, 10, 70


def upstream() -> Upstream:
    return current_services().upstream


def sonic() -> SonicSearch:
    return current_services().sonic


class SubsonicError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _params() -> Any:
    request.get_data()  # cache the raw body first, so it can be forwarded after the form is parsed
    return request.values


def _render(body: dict, status: int = 200) -> Response:
    params = request.values
    return render(body, params.get("f"), params.get("callback"), status)


def _fail(code: int, message: str, status: int = 200) -> Response:
    return _render(error_body(upstream().server, code, message), status)


def _forward(path: str) -> Response:
    import requests

    up = upstream()
    try:
        answer = up.send(request.method, path, request.query_string, request.get_data() or None,
                         dict(request.headers))
    except requests.RequestException as exc:
        log.warning("media server at %s unreachable for %s: %s", up.base, path.split("/")[0], type(exc).__name__)
        return _fail(GENERIC, f"playlistgen: the media server at {up.base} cannot be reached", 502)
    response = Response(Upstream.body_chunks(answer), status=answer.status_code,
                        headers=Upstream.response_headers(answer), direct_passthrough=True)
    if "Content-Type" not in answer.raw.headers:
        del response.headers["Content-Type"]
    return response


def _relay(answer: Any) -> Response:
    """A buffered server answer, as it was."""
    headers = [(k, v) for k, v in Upstream.response_headers(answer)
               if k.lower() not in ("content-length", "content-encoding")]
    return Response(answer.content, status=answer.status_code, headers=headers)


def _authorised() -> Response | None:
    """None when the server accepts the client's credentials, else the server's own refusal."""
    import requests

    try:
        ok, refusal = upstream().check(request.values)
    except requests.RequestException:
        return _fail(GENERIC, f"playlistgen: the media server at {upstream().base} cannot be reached", 502)
    return None if ok else _relay(refusal)


def _count(name: str, default: int) -> int:
    raw = request.values.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SubsonicError(GENERIC, f"parameter '{name}' must be a whole number, got {raw!r}") from None
    return max(1, min(value, MAX_COUNT))


def _required(name: str) -> str:
    value = request.values.get(name)
    if not value:
        raise SubsonicError(MISSING, f"Required parameter is missing: {name}")
    return value


def _song_track(server_id: str) -> int:
    track = sonic().track_of(server_id)
    if track is None:
        known = sonic().is_song(server_id)
        raise SubsonicError(NOT_FOUND, f"song {server_id} is not analysed by playlistgen yet" if known
                            else f"song {server_id} not found (playlistgen links the server's songs every "
                                 "mediaserver.link_interval_s)")
    return track


# --- our endpoints ------------------------------------------------------------------------------

def similar_songs(path: str, key: str) -> Response:
    some_id = _required("id")
    count = _count("count", 50)
    search = sonic()
    track = search.track_of(some_id)
    seeds = [track] if track is not None else search.tracks_of_container(some_id)
    if not seeds:
        return _forward(path)  # an id we cannot place: the server's own answer
    matches = search.similar(seeds, count, diversity=search.playlist_rules(), order=None,
                             prefer={track: some_id} if track is not None else None)
    return _render(ok_body(upstream().server, **{key: {"song": [m.entry for m in matches]}}))


def sonic_similar() -> Response:
    song = _required("id")
    matches = sonic().similar([_song_track(song)], _count("count", 10))
    return _render(ok_body(upstream().server, sonicMatch=_sonic_matches(matches)))


def sonic_path() -> Response:
    start, end = _required("startSongId"), _required("endSongId")
    a, b = _song_track(start), _song_track(end)
    if a == b:
        raise SubsonicError(GENERIC, "startSongId and endSongId are the same song")
    matches = sonic().path(a, b, _count("count", 25), prefer={a: start, b: end})
    return _render(ok_body(upstream().server, sonicMatch=_sonic_matches(matches)))


def _sonic_matches(matches: list[Match]) -> list[dict]:
    return [{"entry": m.entry, "similarity": m.similarity} for m in matches]


def extensions() -> Response:
    """The server's extensions (asked with the client's parameters, as JSON) + sonicSimilarity."""
    import requests

    up = upstream()
    query = {k: v for k, v in request.values.items() if k in ("u", "p", "t", "s", "apiKey", "v", "c")}
    theirs: list = []
    try:
        answer = up.session.get(f"{up.base}/rest/getOpenSubsonicExtensions.view", params={**query, "f": "json"},
                                timeout=up.timeout, allow_redirects=False)
        status = parse_status(answer.content, "application/json")
        if status.get("status") == "ok":
            theirs = [e for e in status.get("openSubsonicExtensions") or [] if isinstance(e, dict)]
            up.server = up.server or {k: status.get(k) for k in ("version", "type", "serverVersion")}
    except requests.RequestException:
        log.info("media server at %s unreachable for getOpenSubsonicExtensions", up.base)
    merged = [e for e in theirs if e.get("name") != EXTENSION] + [{"name": EXTENSION, "versions": [1]}]
    return _render(ok_body(up.server, openSubsonicExtensions=merged))


def scrobble(path: str) -> Response:
    import requests

    up = upstream()
    try:
        answer = up.send(request.method, path, request.query_string, request.get_data() or None,
                         dict(request.headers), stream=False)
    except requests.RequestException:
        return _fail(GENERIC, f"playlistgen: the media server at {up.base} cannot be reached", 502)
    status = parse_status(answer.content, answer.headers.get("Content-Type", ""))
    params = request.values
    submission = (params.get("submission") or "true").lower() != "false"
    linked_user = current_services().settings.mediaserver.user
    if answer.status_code == 200 and status.get("status") == "ok" and submission \
            and (params.get("u") or "").casefold() == linked_user.casefold():
        times = [int(t) if t.isdigit() else None for t in params.getlist("time")]
        try:
            sonic().record_plays(params.getlist("id"), times)
        except PlaylistgenError as exc:  # the server has the play; our copy catches up at the next link
            log.warning("scrobble not recorded: %s", exc.one_line())
    return _relay(answer)


OURS = {"getSimilarSongs": lambda p: similar_songs(p, "similarSongs"),
        "getSimilarSongs2": lambda p: similar_songs(p, "similarSongs2"),
        "getSonicSimilarTracks": lambda p: sonic_similar(),
        "findSonicPath": lambda p: sonic_path()}


@bp.route("/rest/<path:path>", methods=["GET", "POST", "HEAD"])
def rest(path: str) -> Response:
    if ".." in path or not _SAFE_PATH.match(path):
        return _fail(GENERIC, "playlistgen: not a Subsonic API path", 404)
    _params()
    method = path[:-5] if path.endswith(".view") else path
    if method == "getOpenSubsonicExtensions":
        return extensions()
    if method == "scrobble":
        return scrobble(path)
    handler = OURS.get(method)
    if handler is None:
        return _forward(path)
    refusal = _authorised()
    if refusal is not None:
        return refusal
    try:
        return handler(path)
    except SubsonicError as exc:
        return _fail(exc.code, exc.message)
    except NotFoundError as exc:  # e.g. the track's analysis went missing since the link
        return _fail(NOT_FOUND, exc.one_line())

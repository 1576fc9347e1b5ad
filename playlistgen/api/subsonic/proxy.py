"""``/rest/*``: the user's Subsonic server, proxied, with sonic similarity for every Subsonic app
(registered only with ``mediaserver.proxy: true``).

Every request we do not answer ourselves is forwarded — method, query string, form body
(streamed), the end-to-end headers of :mod:`.headers` (Range included) — and the server's answer
is streamed back with its status and headers, bytes untouched (``stream``, ``download``,
``getCoverArt``...). We answer, with the server's song ids and after the server has accepted the
client's credentials (:mod:`.credentials`):

* ``getSimilarSongs`` / ``getSimilarSongs2`` (``id`` of a song, album or artist; ``count``,
  default 50): a radio from the playlist engine over the songs the server has; an id we cannot
  place is forwarded, so the server's own answer is the fallback;
* OpenSubsonic ``sonicSimilarity`` v1: ``getSonicSimilarTracks`` (``id``, ``count`` default 10)
  and ``findSonicPath`` (``startSongId``, ``endSongId``, ``count`` default 25), a top-level
  ``sonicMatch`` array of ``{"entry": <Child>, "similarity": 0..1}``;
* ``getArtistInfo`` / ``getArtistInfo2``: the server's answer with our ``similarArtist`` list,
  artists that sound alike, in the server's artist ids (:mod:`.artists`); ``getSimilarSongs(2)``
  with an artist id plays an artist radio (strategy ``artist_radio``) from the same similarity;
* ``getOpenSubsonicExtensions`` (no credentials needed, as the spec requires): the server's list
  plus ``sonicSimilarity`` [1] and ``playbackReport`` [1];
* OpenSubsonic ``playbackReport``: ``reportPlayback`` is forwarded when the server offers the
  extension and answered here when it does not; either way an accepted report is listening
  feedback for its user (:mod:`.playback`).

Song entries are the asking user's view (:mod:`.entries`). ``scrobble`` is forwarded, and when the
server accepts a submission by the linked user (``mediaserver.user``), the songs' play counts and
last-played times are updated at once; every accepted scrobble is also listening feedback per user
(:mod:`.listening`: a "now playing" soon replaced is a skip), which ``getSimilarSongs(2)`` for
that user then follows. Every request that talks to the server holds one of the
upstream's stream slots until its response is closed (:mod:`.upstream`). Errors never name the
server's address (it is logged for the operator).
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

from flask import Blueprint, Response, g, request

from ...core.integrations.mediaserver.sonic import Match, SonicSearch
from ...errors import NotFoundError, PlaylistgenError
from ..context import current_services
from . import artists, entries, listening, playback
from .format import error_body, ok_body, parse_status, render
from .headers import cors
from .upstream import BUSY_RETRY_S, MAX_REQUEST_BODY, Busy, Upstream, UpstreamError, read_bounded

log = logging.getLogger(__name__)

bp = Blueprint("subsonic_proxy", __name__)
EXTENSION = "sonicSimilarity"
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_\-.]+(?:/[A-Za-z0-9_\-.]+)*$")
MAX_COUNT = 500
UNREACHABLE = "playlistgen: media server unreachable"
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


def _client_params() -> Any:
    """The form and query for our own answers (a small form, parsed); only the query string for
    forwarded requests, whose body streams to the server unread."""
    return request.values if g.get("rest_form") else request.args


def _render(body: dict, status: int = 200) -> Response:
    params = _client_params()
    return render(body, params.get("f"), params.get("callback"), status)


def _fail(code: int, message: str, status: int = 200) -> Response:
    return _render(error_body(upstream().server, code, message), status)


def _unreachable(method: str, exc: Exception) -> Response:
    log.warning("media server at %s unreachable for %s: %s", upstream().base, method, type(exc).__name__)
    return _fail(GENERIC, UNREACHABLE, 502)


def _request_body() -> tuple[Any, int]:
    """The client's body to forward and its length: streamed from the input unread, unless our
    handler has read it already (its raw bytes are cached then) or its length is unknown (a
    chunked body under a server that does not de-chunk, read up to MAX_REQUEST_BODY)."""
    length = request.content_length
    if g.get("rest_form") or (length is None and request.headers.get("Transfer-Encoding")):
        data = request.get_data()
        return io.BytesIO(data), len(data)
    return request.stream, length or 0


def _forward(path: str) -> Response:
    body, length = _request_body()
    answer = upstream().send(request.method, path, request.query_string, request.headers.items(),
                             body=body if length else None, length=length)
    # not direct_passthrough: werkzeug then closes the response (and runs call_on_close) whatever
    # happens — body sent, client gone, or a HEAD whose body is never iterated
    response = Response(Upstream.body_chunks(answer), status=answer.status_code,
                        headers=Upstream.response_headers(answer))
    response.call_on_close(answer.close)
    if "Content-Type" not in answer.raw.headers:
        del response.headers["Content-Type"]
    return response


def _relay(answer: Any, data: bytes) -> Response:
    """A buffered server answer, as it was (``data`` is its decoded body)."""
    headers = [(k, v) for k, v in Upstream.response_headers(answer)
               if k.lower() not in ("content-length", "content-encoding")]
    return Response(data, status=answer.status_code, headers=headers)


def _authorised() -> Response | None:
    """None when the server accepts the client's credentials, else its refusal in the client's format."""
    verdict = upstream().check(request.values)
    if verdict.ok:
        return None
    return _fail(verdict.code if verdict.code is not None else GENERIC, verdict.message, verdict.status)


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


def _linked_user() -> str:
    return current_services().settings.mediaserver.user


def _asked(count: int) -> int:
    """Candidates to search for: spares for the songs a user other than the linked one cannot see."""
    return count if entries.is_linked_user(request.values, _linked_user()) else entries.candidates(count, MAX_COUNT)


def _visible(matches: list[Match], count: int) -> list[Match]:
    return entries.as_user(upstream(), request.values, matches, count, _linked_user())


# --- our endpoints ------------------------------------------------------------------------------

def similar_songs(path: str, key: str) -> Response:
    some_id = _required("id")
    count = _count("count", 50)
    search = sonic()
    track = search.track_of(some_id)
    seeds = [track] if track is not None else search.tracks_of_container(some_id)
    listener = listening.listener(request.values, _linked_user())[1]
    if track is None and (radio := current_services().artists.radio(some_id, _asked(count), listener)) is not None:
        return _render(ok_body(upstream().server, **{key: {"song": [m.entry for m in _visible(radio, count)]}}))
    if not seeds:
        return _forward(path)  # an id we cannot place: the server's own answer
    matches = search.similar(seeds, _asked(count), diversity=search.playlist_rules(), order=None,
                             prefer={track: some_id} if track is not None else None,
                             listener=listener)
    return _render(ok_body(upstream().server, **{key: {"song": [m.entry for m in _visible(matches, count)]}}))


def sonic_similar() -> Response:
    song = _required("id")
    count = _count("count", 10)
    matches = sonic().similar([_song_track(song)], _asked(count))
    return _render(ok_body(upstream().server, sonicMatch=_sonic_matches(_visible(matches, count))))


def sonic_path() -> Response:
    start, end = _required("startSongId"), _required("endSongId")
    a, b = _song_track(start), _song_track(end)
    if a == b:
        raise SubsonicError(GENERIC, "startSongId and endSongId are the same song")
    matches = sonic().path(a, b, _count("count", 25), prefer={a: start, b: end})
    return _render(ok_body(upstream().server, sonicMatch=_sonic_matches(_visible(matches, len(matches)))))


def artist_info(method: str) -> Response:
    """getArtistInfo(2): the server's info with our similarArtist list (see :mod:`.artists`)."""
    some_id = _required("id")
    info = artists.artist_info(upstream(), current_services().artists, method, request.values, some_id,
                               _count("count", 20))
    if info is None:
        raise SubsonicError(NOT_FOUND, f"artist {some_id} not found")
    return _render(ok_body(upstream().server, **{artists.INFO_KEYS[method]: info}))


def _sonic_matches(matches: list[Match]) -> list[dict]:
    return [{"entry": m.entry, "similarity": m.similarity} for m in matches]


def extensions() -> Response:
    """The server's extensions (asked with the client's auth parameters, in JSON) + ours."""
    import requests

    up = upstream()
    theirs: list = []
    try:
        theirs = playback.server_extensions(up, request.values)
    except (requests.RequestException, UpstreamError) as exc:
        log.info("getOpenSubsonicExtensions of the media server at %s: %s", up.base, type(exc).__name__)
    ours = [{"name": EXTENSION, "versions": [1]}, {"name": playback.EXTENSION, "versions": [1]}]
    return _render(ok_body(up.server, openSubsonicExtensions=playback.merged_extensions(theirs, ours)))


def report_playback(path: str) -> Response:
    """``reportPlayback``: the server's answer when it offers ``playbackReport``, else ours; an
    accepted report is listening feedback (:mod:`.playback`)."""
    params = request.values
    if playback.server_offers(upstream(), params):
        body, length = _request_body()
        answer = upstream().send(request.method, path, request.query_string, request.headers.items(),
                                 body=body if length else None, length=length)
        data = read_bounded(answer)
        status = parse_status(data, answer.headers.get("Content-Type", ""))
        response = _relay(answer, data)
        if answer.status_code != 200 or status.get("status") != "ok":
            return response
        try:
            report = playback.parse(params)
        except playback.InvalidReport:
            return response   # the server took what we cannot read: nothing to learn
    else:
        refusal = _authorised()
        if refusal is not None:
            return refusal
        try:
            report = playback.parse(params)
        except playback.InvalidReport as exc:
            raise SubsonicError(exc.code, exc.message) from None
        response = _render(ok_body(upstream().server))
    services = current_services()
    if services.playback is not None:
        try:
            playback.record(services.db, services.playback, report, params, _linked_user())
        except PlaylistgenError as exc:
            log.warning("playback report not recorded: %s", exc.one_line())
    return response


def scrobble(path: str) -> Response:
    body, length = _request_body()
    answer = upstream().send(request.method, path, request.query_string, request.headers.items(),
                             body=body if length else None, length=length)
    data = read_bounded(answer)
    status = parse_status(data, answer.headers.get("Content-Type", ""))
    params = request.values
    submission = (params.get("submission") or "true").lower() != "false"
    accepted = answer.status_code == 200 and status.get("status") == "ok"
    if accepted and current_services().now_playing is not None:   # skips and plays (core/feedback)
        try:
            listening.on_scrobble(current_services().db, current_services().now_playing, params,
                                  params.getlist("id"), submission, _linked_user(), current_services().playback)
        except PlaylistgenError as exc:
            log.warning("listening feedback not recorded: %s", exc.one_line())
    if accepted and submission and entries.is_linked_user(params, _linked_user()):
        times = [int(t) if t.isdigit() else None for t in params.getlist("time")]
        try:
            sonic().record_plays(params.getlist("id"), times)
        except PlaylistgenError as exc:  # the server has the play; our copy catches up at the next link
            log.warning("scrobble not recorded: %s", exc.one_line())
    return _relay(answer, data)


OURS = {"getSimilarSongs": lambda p: similar_songs(p, "similarSongs"),
        "getSimilarSongs2": lambda p: similar_songs(p, "similarSongs2"),
        "getSonicSimilarTracks": lambda p: sonic_similar(),
        "findSonicPath": lambda p: sonic_path(),
        "getArtistInfo": lambda p: artist_info("getArtistInfo"),
        "getArtistInfo2": lambda p: artist_info("getArtistInfo2")}


def _dispatch(method: str, path: str) -> Response:
    import requests

    try:
        if method not in OURS and method not in ("getOpenSubsonicExtensions", "scrobble", "reportPlayback"):
            return _forward(path)
        g.rest_form = True
        request.get_data()   # the raw body (≤ MAX_REQUEST_BODY) cached before the form is parsed: still forwardable
        if method == "getOpenSubsonicExtensions":
            return extensions()
        if method == "scrobble":
            return scrobble(path)
        if method == "reportPlayback":
            return report_playback(path)
        refusal = _authorised()
        return refusal if refusal is not None else OURS[method](path)
    except SubsonicError as exc:
        return _fail(exc.code, exc.message)
    except NotFoundError as exc:  # e.g. the track's analysis went missing since the link
        return _fail(NOT_FOUND, exc.one_line())
    except requests.RequestException as exc:
        return _unreachable(method, exc)
    except UpstreamError as exc:
        log.warning("media server at %s, %s: %s", upstream().base, method, exc.message)
        return _fail(GENERIC, exc.message, exc.status)


@bp.route("/rest/<path:path>", methods=["GET", "POST", "HEAD"])
def rest(path: str) -> Response:
    if ".." in path or not _SAFE_PATH.match(path):
        return _fail(GENERIC, "playlistgen: not a Subsonic API path", 404)
    if (request.content_length or 0) > MAX_REQUEST_BODY:   # waitress refuses these already (api.server)
        return _fail(GENERIC, f"playlistgen: a Subsonic request body is at most {MAX_REQUEST_BODY} bytes", 413)
    request.max_content_length = MAX_REQUEST_BODY
    try:
        slot = upstream().take_slot()
    except Busy as exc:
        log.warning("/rest: all %d media-server slots are busy: answered 503", upstream().max_streams)
        response = _fail(GENERIC, exc.message, exc.status)
        response.headers["Retry-After"] = str(BUSY_RETRY_S)
        return response
    try:
        response = _dispatch(path[:-5] if path.endswith(".view") else path, path)
    except BaseException:
        slot.release()
        raise
    response.call_on_close(slot.release)   # held while waitress sends the body (a stream: to its end)
    return response


@bp.after_request
def _cors(response: Response) -> Response:
    cors(response.headers)
    return response

"""OpenSubsonic ``playbackReport`` v1 in the ``/rest`` proxy: ``reportPlayback`` as listening
feedback (:mod:`playlistgen.core.feedback.playback`).

Spec: opensubsonic/open-subsonic-api, ``content/en/docs/Endpoints/reportplayback.md`` —
``mediaId``, ``mediaType`` (``song`` or ``podcast``), ``positionMs`` and ``state``
(``starting``/``playing``/``paused``/``stopped``) required; ``playbackRate`` (default 1.0) and
``ignoreScrobble`` (default false) optional; the answer is an empty ``status ok``. A server
advertises the endpoint as the extension ``playbackReport`` in ``getOpenSubsonicExtensions``
(``content/en/docs/Extensions/playbackReport.md``).

When the media server offers the extension (its list, cached :data:`EXTENSIONS_TTL_S`), the
call is forwarded and its answer relayed; otherwise the proxy answers it (after the server
accepted the client's credentials). Either way an accepted report is feedback for the user the
request names, as scrobbles are (:mod:`.listening`); ``ignoreScrobble=true`` (the client asks
for no listening side effects) teaches nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...core.feedback.playback import STATES, PlaybackReports
from ...core.storage.db import Database
from . import listening
from .credentials import auth_params
from .upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

EXTENSION = "playbackReport"
EXTENSIONS_TTL_S = 600.0
MISSING, GENERIC = 10, 0   # Subsonic error codes


class InvalidReport(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Report:
    media_id: str
    media_type: str
    position_s: float
    state: str
    rate: float
    ignore_scrobble: bool


def parse(params: Mapping[str, str]) -> Report:
    """The report in ``params``; :class:`InvalidReport` (a Subsonic error code and message) if it is not one."""
    for name in ("mediaId", "mediaType", "positionMs", "state"):
        if not params.get(name):
            raise InvalidReport(MISSING, f"Required parameter is missing: {name}")
    state = params["state"].strip().lower()
    if state not in STATES:
        raise InvalidReport(GENERIC, f"parameter 'state' must be one of {', '.join(STATES)}, got {params['state']!r}")
    position = _number(params, "positionMs", None)
    rate = _number(params, "playbackRate", 1.0)
    return Report(params["mediaId"], params["mediaType"].strip().lower(), position / 1000.0, state, rate,
                  (params.get("ignoreScrobble") or "false").strip().lower() == "true")


def _number(params: Mapping[str, str], name: str, default: float | None) -> float:
    raw = params.get(name)
    if raw in (None, "") and default is not None:
        return default
    try:
        value = float(raw or "")
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidReport(GENERIC, f"parameter '{name}' must be a number ≥ 0, got {raw!r}")
    return value


def server_extensions(up: Upstream, params: Mapping[str, str]) -> list[dict]:
    """The server's OpenSubsonic extensions, asked now (with the client's auth parameters, which
    the spec says it needs not); remembered for :func:`server_offers`. Raises
    ``requests.RequestException`` or :class:`UpstreamError`."""
    _status, body = up.call("getOpenSubsonicExtensions", auth_params(params))
    if body.get("status") != "ok":
        return []
    theirs = [e for e in body.get("openSubsonicExtensions") or [] if isinstance(e, dict)]
    up.server = up.server or {k: body.get(k) for k in ("version", "type", "serverVersion")}
    up.extensions = (time.monotonic(), theirs)
    return theirs


def server_offers(up: Upstream, params: Mapping[str, str]) -> bool:
    """Whether the media server offers ``playbackReport`` (its cached list; asked when stale).
    A server that cannot say (unreachable, not OpenSubsonic) does not."""
    import requests

    cached = up.extensions
    if cached is None or time.monotonic() - cached[0] > EXTENSIONS_TTL_S:
        try:
            theirs = server_extensions(up, params)
        except (requests.RequestException, UpstreamError) as exc:
            log.info("getOpenSubsonicExtensions of the media server at %s: %s", up.base, type(exc).__name__)
            return False
    else:
        theirs = cached[1]
    return any(e.get("name") == EXTENSION for e in theirs)


def record(db: Database, reports: PlaybackReports, report: Report, params: Mapping[str, str],
           linked_user: str) -> None:
    """Feed an accepted report to the listener's session (nothing when the request names no user)."""
    known, user = listening.listener(params, linked_user)
    if not known or report.ignore_scrobble:
        return
    song = listening.songs_of(db, [report.media_id]).get(report.media_id) if report.media_type == "song" else None
    track, duration = song if song is not None else (None, None)   # not a song we know: it ends the one before
    reports.report(user, track, duration, report.state, report.position_s, report.rate)


def merged_extensions(theirs: list[dict], ours: list[dict[str, Any]]) -> list[dict]:
    """The server's list with ours in place of any entry of the same name."""
    names = {e["name"] for e in ours}
    return [e for e in theirs if e.get("name") not in names] + ours

"""Song entries of playlistgen's own ``/rest`` answers as the asking user sees them.

The link stores each song's ``Child`` as the linked user (``mediaserver.user``) saw it: with that
user's ``starred``, ``userRating``, ``playCount``... and only songs that user may see. For the
linked user those entries are the truth (as of the last link). For anyone else every suggested
song is fetched with ``getSong`` as that user — the client's own credentials — so the entry
carries their personal fields and a song the server does not show them (not found, not allowed)
is left out; the next candidate takes its place. That costs one buffered call per song in the
answer (``count`` of them, plus one per song left out), in a ``/rest`` slot like every call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ...core.integrations.mediaserver.sonic import Match
from .credentials import auth_params
from .upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

SPARE = 10   # candidates asked for beyond ``count``, for the songs a user cannot see


def is_linked_user(params: Mapping[str, str], linked_user: str) -> bool:
    user = params.get("u") or ""
    return bool(user and linked_user) and user.casefold() == linked_user.casefold()


def candidates(count: int, limit: int) -> int:
    """How many matches to ask the search for so that ``count`` visible ones are likely."""
    return min(limit, count + max(SPARE, count // 2))


def as_user(upstream: Upstream, params: Mapping[str, str], matches: list[Match], count: int,
            linked_user: str) -> list[Match]:
    """The first ``count`` matches the asking user can see, each with that user's entry."""
    if is_linked_user(params, linked_user):
        return matches[:count]
    auth = auth_params(params)
    out: list[Match] = []
    for match in matches:
        if len(out) >= count:
            break
        try:
            status, body = upstream.call("getSong", {**auth, "id": match.server_id})
        except UpstreamError as exc:   # this song's answer is unusable; a server that cannot be reached raises
            log.info("getSong %s for a /rest client: %s", match.server_id, exc.message)
            continue
        song = body.get("song") if status == 200 and body.get("status") == "ok" else None
        if isinstance(song, dict) and str(song.get("id")) == str(match.server_id):
            match.entry = song
            out.append(match)
    return out

"""``getArtistInfo`` / ``getArtistInfo2`` through the ``/rest`` proxy: the server's own answer
(biography, MusicBrainz id, last.fm URL, images) with **our** ``similarArtist`` list — artists that
sound alike (``core.playlists.artists``), in the server's artist ids, only artists the server has.

Shapes (Subsonic 1.11 / OpenSubsonic ``ArtistInfo``/``ArtistInfo2``): ``artistInfo2.similarArtist``
is a list of ``ArtistID3`` (``id``, ``name``, ``albumCount``; the server's ``coverArt`` and
``artistImageUrl`` are not known to us), ``artistInfo.similarArtist`` a list of ``Artist``
(``id``, ``name``). Both use the songs' ``artistId`` (Navidrome and supysonic use one id space
for both; a server whose folder ids differ gets its ID3 ids). ``count`` (default 20) limits the
list; ``includeNotPresent`` is moot — every artist we name is one the server has.

A server without the method (supysonic 0.7.9 answers "Unknown method") or with an error for an
id we know: our list alone, never an error. An id no linked song has: the server's answer when
it has one, else the Subsonic error 70 (data not found).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...core.integrations.mediaserver.artists import ServerArtists, ServerSimilar
from .credentials import auth_params
from .upstream import Upstream, UpstreamError

log = logging.getLogger(__name__)

INFO_KEYS = {"getArtistInfo": "artistInfo", "getArtistInfo2": "artistInfo2"}


def _theirs(up: Upstream, method: str, params: Mapping[str, str], some_id: str, count: int) -> dict | None:
    """The server's info object for the artist, or None when it has none (error, unknown method)."""
    try:
        status, body = up.call(method, {**auth_params(params), "id": some_id, "count": str(count)})
    except UpstreamError as exc:
        log.info("%s %s of the media server at %s: %s", method, some_id, up.base, exc.message)
        return None
    info = body.get(INFO_KEYS[method]) if status == 200 and body.get("status") == "ok" else None
    return info if isinstance(info, dict) else None


def _entry(s: ServerSimilar, id3: bool) -> dict:
    entry: dict[str, Any] = {"id": s.server_id, "name": s.server_name}
    if id3:
        entry["albumCount"] = s.album_count
    return entry


def artist_info(up: Upstream, artists: ServerArtists, method: str, params: Mapping[str, str], some_id: str,
                count: int) -> dict | None:
    """The ``artistInfo``/``artistInfo2`` object to answer with; None for an artist id that
    neither we nor the server know (the caller answers error 70)."""
    ours = artists.for_server(some_id, count)
    theirs = _theirs(up, method, params, some_id, count)
    if ours is None:
        return theirs     # not a linked artist: the server's own answer, or None
    _code, similar = ours
    info = {k: v for k, v in (theirs or {}).items() if k != "similarArtist"}
    info["similarArtist"] = [_entry(s, method == "getArtistInfo2") for s in similar]
    return info

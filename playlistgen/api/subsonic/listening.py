"""Skips and plays from the clients of the ``/rest`` proxy (core/feedback).

After the server accepted a ``scrobble``: ``submission=false`` ("now playing") goes to
:class:`NowPlaying`, which records the previous song of that user as skipped when it is replaced
early; ``submission=true`` is a full play. Events are stored per user: the linked user
(``mediaserver.user``) under NULL, like MPD, anyone else under the name the request authenticated
with; a request that names no user (an OpenSubsonic ``apiKey``) teaches nothing. A user whose
client sends OpenSubsonic playback reports (:mod:`.playback`) is followed by those alone, so one
skip is not counted twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from ...core.feedback.events import listener_of
from ...core.feedback.nowplaying import NowPlaying
from ...core.feedback.playback import PlaybackReports
from ...core.storage.db import Database

log = logging.getLogger(__name__)


def listener(params: Mapping[str, str], linked_user: str) -> tuple[bool, str | None]:
    """(known, name): whether the request names its user, and the name events are stored under."""
    user = params.get("u") or ""
    return bool(user), listener_of(user, linked_user)


def songs_of(db: Database, ids: list[str]) -> dict[str, tuple[int, float | None]]:
    """Server song id → (track id, duration s) for the linked, analysed songs among ``ids``."""
    rows = db.query("SELECT server_id, track_id, duration_s FROM mediaserver_songs WHERE server_id IN "
                    "(SELECT value FROM json_each(?)) AND track_id IS NOT NULL", (json.dumps([str(i) for i in ids]),))
    return {str(sid): (int(track), duration) for sid, track, duration in rows}


def on_scrobble(db: Database, now_playing: NowPlaying, params: Mapping[str, str], ids: list[str],
                submission: bool, linked_user: str, playback: PlaybackReports | None = None) -> None:
    """Record what an accepted scrobble says about the songs ``ids`` (server ids)."""
    known, user = listener(params, linked_user)
    if not known or not ids or (playback is not None and playback.reporting(user)):
        return
    songs = songs_of(db, ids)
    for sid in ids:
        if sid not in songs:
            continue   # not analysed or not linked yet: nothing to learn from
        track, duration = songs[sid]
        if submission:
            now_playing.played(user, track)
        else:
            now_playing.now_playing(user, track, duration)

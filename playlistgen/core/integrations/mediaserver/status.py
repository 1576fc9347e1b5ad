"""Link state (``mediaserver_state``) and the status document of GET /api/v1/mediaserver/status,
the dashboard panel, /metrics and `playlistgen mediaserver check`. Reads only the database, so it
works in plain API use and from the CLI as well as in `serve`."""

from __future__ import annotations

import json
from typing import Any

from ....config import Settings
from ...storage.db import Database
from .link import METHODS, NOT_ANALYSED

UNMATCHED_SHOWN = 50


def write_state(db: Database, **values: Any) -> None:
    """Set (or, with None, clear) keys of mediaserver_state."""
    def run(conn: Any) -> None:
        for key, value in values.items():
            if value is None:
                conn.execute("DELETE FROM mediaserver_state WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO mediaserver_state(key, value) VALUES (?, ?)", (key, str(value)))

    db.write(run)


def read_state(db: Database) -> dict[str, str]:
    return dict(db.query("SELECT key, value FROM mediaserver_state"))


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def counts(db: Database) -> dict:
    """songs seen, linked by method, unmatched, pushed playlists — one query each, cheap."""
    by_method = dict.fromkeys(METHODS, 0)
    unmatched = 0
    for method, n in db.query("SELECT method, count(*) FROM mediaserver_songs GROUP BY method"):
        if method is None:
            unmatched = n
        else:
            by_method[method] = n
    waiting = db.query("SELECT count(*) FROM mediaserver_songs WHERE track_id IS NULL AND unmatched_reason = ?",
                       (NOT_ANALYSED,))[0][0]
    pushed = db.query("SELECT count(*), coalesce(sum(songs_left_out), 0) FROM mediaserver_playlists")[0]
    return {"songs_seen": sum(by_method.values()) + unmatched, "linked": sum(by_method.values()),
            "by_method": by_method, "unmatched": unmatched, "not_analysed_yet": waiting,
            "playlists_pushed": pushed[0], "playlist_songs_left_out": pushed[1]}


def link_status(db: Database, settings: Settings, *, linking: bool = False) -> dict:
    ms = settings.mediaserver
    state = read_state(db)
    c = counts(db)
    first = db.query("SELECT server_id, path, artist, title, unmatched_reason FROM mediaserver_songs "
                     "WHERE track_id IS NULL ORDER BY path, server_id LIMIT ?", (UNMATCHED_SHOWN,))
    server = json.loads(state["server"]) if state.get("server") else None
    return {
        "configured": bool(ms.url),
        "url": ms.url or None,
        "user": ms.user or None,
        "push_playlists": ms.push_playlists,
        "link_interval_s": ms.link_interval_s,
        "server": server,
        "songs_seen": c["songs_seen"],
        "linked": {"total": c["linked"], "by_method": c["by_method"]},
        # not_analysed_yet: unmatched only until their files' analysis lands (then linked at once)
        "unmatched": {"count": c["unmatched"], "not_analysed_yet": c["not_analysed_yet"],
                      "first": [{"server_id": r[0], "path": r[1], "artist": r[2], "title": r[3], "reason": r[4]}
                                for r in first]},
        "playlists": {"pushed": c["playlists_pushed"], "songs_left_out": c["playlist_songs_left_out"]},
        "last_link": {"at": _float(state.get("last_link_at")), "duration_s": _float(state.get("last_link_s")),
                      "cpu_s": _float(state.get("last_link_cpu_s"))},
        "last_error": state.get("last_error"),
        "last_error_at": _float(state.get("last_error_at")),
        "linking": linking,
    }

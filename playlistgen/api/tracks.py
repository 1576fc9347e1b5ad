"""Tracks: search and listing (FTS5), detail, similar tracks; similar artists."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .args import bool_arg, float_arg, int_arg, playlist_service, str_arg
from .context import current_services

bp = Blueprint("tracks", __name__, url_prefix="/api/v1")


@bp.get("/tracks")
def list_tracks():  # type: ignore[no-untyped-def]
    """?q= (artist/title/album words, FTS5), artist=, bpm_min=, bpm_max=, key= (8A, A minor),
    tag= (ML tag with at least playlists.tag_min_probability), limit=, offset=."""
    body = playlist_service().search(
        q=str_arg("q"), artist=str_arg("artist"), bpm_min=float_arg("bpm_min"), bpm_max=float_arg("bpm_max"),
        key=str_arg("key", 20), tag=str_arg("tag", 100), limit=int_arg("limit", 50, 1, 1000),
        offset=int_arg("offset", 0, 0, 10**9))
    return jsonify(body)


# <int:...> so that /tracks/failed (library blueprint) is never taken for a track id
@bp.get("/tracks/<int(max=9223372036854775807):track_id>")
def track(track_id: int):  # type: ignore[no-untyped-def]
    return jsonify(playlist_service().track(track_id))


@bp.get("/tracks/<int(max=9223372036854775807):track_id>/similar")
def similar(track_id: int):  # type: ignore[no-untyped-def]
    """?n= (or count=, as /artists/<name>/similar spells it) how many, 20 by default."""
    name = "count" if "count" in request.args and "n" not in request.args else "n"
    return jsonify(playlist_service().similar(track_id, int_arg(name, 20, 1, 500)))


# <path:...>: artist names may hold a slash (AC/DC)
@bp.get("/artists/<path:artist>/similar")
def similar_artists(artist: str):  # type: ignore[no-untyped-def]
    """Artists that sound like ``artist`` (a name, or the linked media server's artist id)."""
    return jsonify(current_services().artists.similar(artist, int_arg("count", 20, 1, 500),
                                                       server_only=bool_arg("server_only", False)))

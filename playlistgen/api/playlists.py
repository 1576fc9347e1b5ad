"""Playlists: create with any strategy (?format=json|m3u8|xspf), list and fetch saved ones, the
strategy catalogue."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from ..core.library.paths import safe_filename
from ..core.playlists.export import FORMATS, MEDIA_TYPES, render
from ..core.playlists.names import UnknownNameError
from ..core.playlists.service import PlaylistRequest
from ..errors import BadRequestError
from .args import int_arg, playlist_service, str_arg

bp = Blueprint("playlists", __name__, url_prefix="/api/v1")
_ID = "<int(max=9223372036854775807):playlist_id>"


def _format(default: str = "json") -> str:
    fmt = (str_arg("format", 10) or default).lower()
    if fmt not in FORMATS:
        raise UnknownNameError("format", fmt, FORMATS)
    return fmt


def _respond(body: dict, fmt: str, status: int = 200) -> Response:
    if fmt == "json":
        return jsonify(body), status  # type: ignore[return-value]
    # paths=relative writes them as in the saved .m3u8 (relative to playlists.output_dir)
    paths = str_arg("paths", 10) or "absolute"
    if paths not in ("absolute", "relative"):
        raise UnknownNameError("paths option", paths, ("absolute", "relative"))
    service = playlist_service()
    output_dir = service.settings.playlists.output_dir
    text = render(fmt, body, relative_to=Path(output_dir).resolve() if paths == "relative" else None,
                  paths=service.path_options)  # absolute paths go through playlists.path_map
    name = safe_filename(body["playlist"].get("name") or "playlist") + "." + fmt
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    response = Response(text, status=status, mimetype=MEDIA_TYPES[fmt].split(";")[0])
    response.headers["Content-Type"] = MEDIA_TYPES[fmt]
    response.headers["Content-Disposition"] = f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return response


@bp.post("/playlists")
def create():  # type: ignore[no-untyped-def]
    fmt = _format()
    body = request.get_json(silent=True)
    if body is None:
        raise BadRequestError("the request body must be JSON (Content-Type: application/json)",
                              hint='e.g. {"strategy": "radio", "seeds": ["Artist - Title"], "size": 25}')
    service = playlist_service()
    result = service.generate(PlaylistRequest.parse(body, service.settings))
    return _respond(result, fmt, 201 if result["playlist"].get("id") else 200)


@bp.get("/playlists")
def index():  # type: ignore[no-untyped-def]
    return jsonify(playlist_service().list_playlists(int_arg("limit", 50, 1, 1000), int_arg("offset", 0, 0, 10**9)))


@bp.get("/playlists/strategies")
def strategies():  # type: ignore[no-untyped-def]
    return jsonify({"strategies": playlist_service().strategies()})


@bp.get(f"/playlists/{_ID}")
def show(playlist_id: int):  # type: ignore[no-untyped-def]
    return _respond(playlist_service().get_playlist(playlist_id), _format())


@bp.delete(f"/playlists/{_ID}")
def delete(playlist_id: int):  # type: ignore[no-untyped-def]
    """Delete a saved playlist (and the media-server copy playlistgen created for it)."""
    return jsonify(playlist_service().delete_playlist(playlist_id))


@bp.get(f"/playlists/{_ID}.m3u8")
def show_m3u8(playlist_id: int):  # type: ignore[no-untyped-def]
    return _respond(playlist_service().get_playlist(playlist_id), "m3u8")


@bp.get(f"/playlists/{_ID}.xspf")
def show_xspf(playlist_id: int):  # type: ignore[no-untyped-def]
    return _respond(playlist_service().get_playlist(playlist_id), "xspf")

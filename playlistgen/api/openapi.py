"""GET /api/v1/openapi.json: OpenAPI 3.1 for every route. Routes documented here carry their
parameters and bodies; any other registered route (added later by another blueprint) still
appears, with its path parameters, so the document never misses one."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from .. import __version__
from ..core.playlists.export import FORMATS, MEDIA_TYPES
from ..core.playlists.filters import FILTER_NAMES
from ..core.playlists.registry import STRATEGIES
from ..core.playlists.service import REQUEST_KEYS
from ..core.playlists.strategies import SORTS, Param

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
_OBJ = {"type": "object"}
_ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _q(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}


def _op(summary: str, *, params: list | None = None, body: dict | None = None, ok: str = "200",
        media: str = "application/json", errors: tuple = ("400", "401", "404")) -> dict:
    op: dict[str, Any] = {"summary": summary, "parameters": params or [],
                          "responses": {ok: {"description": "OK", "content": {media: {"schema": _OBJ if
                                                                                      media.endswith("json") else
                                                                                      {"type": "string"}}}}}}
    for code in errors:
        op["responses"][code] = _ERROR
    if body is not None:
        op["requestBody"] = body
    return op


_LIMIT = [_q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Page size."),
          _q("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}, "Rows to skip.")]
_FORMAT = _q("format", {"type": "string", "enum": list(FORMATS)}, "Response format.")
_PATHS = _q("paths", {"type": "string", "enum": ["absolute", "relative"]},
            "M3U8 paths: absolute, or relative to playlists.output_dir.")
_MEDIA = {fmt: media.split(";")[0] for fmt, media in MEDIA_TYPES.items()}  # what the server sends
_PLAYLIST_MEDIA = {_MEDIA["json"]: {"schema": _OBJ}, _MEDIA["m3u8"]: {"schema": {"type": "string"}},
                   _MEDIA["xspf"]: {"schema": {"type": "string"}}}


def _param_schema(p: Param) -> dict:
    """What ``coerce_params`` accepts for one parameter (null means its default)."""
    schema: dict[str, Any] = {
        "integer": {"type": "integer"}, "number": {"type": "number"}, "boolean": {"type": "boolean"},
        "string": {"type": "string"}, "numbers": {"type": "array", "items": {"type": "number"}},
        "array": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}[p.type]
    if p.choices:
        schema = {**schema, "enum": list(p.choices)}
    if p.minimum is not None:
        schema = {**schema, "minimum": p.minimum}
    if p.maximum is not None:
        schema = {**schema, "maximum": p.maximum}
    return {"anyOf": [schema, {"type": "null"}], "description": p.help, "default": p.default}


def _common_fields() -> dict[str, dict]:
    range_or_names = {"oneOf": [{"type": "number"}, {"type": "string"},
                                {"type": "array", "items": {"type": ["number", "string", "null"]}}]}
    known = {
        "size": {"type": "integer", "minimum": 1, "maximum": 10000},
        "duration_min": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
        "filters": {"type": "object", "properties": {name: range_or_names for name in FILTER_NAMES},
                    "additionalProperties": False},
        "diversity": {"oneOf": [{"type": "boolean"}, {"type": "object", "additionalProperties": False, "properties": {
            "artist_gap": {"type": "integer", "minimum": 0, "maximum": 1000},
            "album_gap": {"type": "integer", "minimum": 0, "maximum": 1000},
            "max_per_artist": {"type": "integer", "minimum": 0, "maximum": 1000}, "dedupe": {"type": "boolean"}}}]},
        "save": {"type": "boolean"}, "name": {"type": "string", "minLength": 1},
        "random_seed": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    }
    # a request field added to the service later is still allowed here (described by the service)
    return {key: known.get(key, {"description": f"see DESIGN.md §5 ({key})"}) for key in REQUEST_KEYS
            if key not in ("strategy", "seeds", "params")}


def _playlist_body() -> dict:
    """One schema per strategy (``oneOf``, told apart by ``strategy``): a strategy's own parameters
    may sit at the top level or under ``params``; another strategy's parameters are refused, as the
    server refuses them."""
    common = _common_fields()
    branches = []
    for strategy in STRATEGIES.values():
        own = {p.name: _param_schema(p) for p in strategy.params}
        seeds: dict[str, Any] = {"type": "array", "items": {"type": ["integer", "string"]},
                                 "minItems": strategy.min_seeds, "description": 'Track ids or "Artist - Title".'}
        if strategy.max_seeds is not None:
            seeds["maxItems"] = strategy.max_seeds
        branches.append({
            "title": strategy.name, "description": strategy.description, "type": "object",
            "required": ["strategy", "seeds"] if strategy.min_seeds else ["strategy"],
            "properties": {"strategy": {"type": "string", "const": strategy.name}, "seeds": seeds, **common,
                           "params": {"type": "object", "properties": own, "additionalProperties": False}, **own},
            "additionalProperties": False})
    schema = {"type": "object", "required": ["strategy"], "oneOf": branches,
              "discriminator": {"propertyName": "strategy"}}
    example = {"strategy": "radio", "seeds": ["Massive Attack - Teardrop"], "size": 25,
               "filters": {"bpm": [70, 110]}, "diversity": {"artist_gap": 3}, "save": False}
    return {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}


def _documented() -> dict[str, dict[str, dict]]:
    perf = "Operator view (see DESIGN.md §5)."
    return {
        "/health": {"get": {**_op("Liveness and readiness of database, analysis and watcher (no API key).",
                                  errors=()), "security": []}},
        "/api/v1/library/status": {"get": _op("Counts, queue depth, scan progress, tracks/min, ETA.")},
        "/api/v1/library/scan": {"post": _op("Queue a full reconcile of the library folders.", ok="202")},
        "/api/v1/library/upload": {"post": _op(
            "Upload an audio file (multipart field 'file') into the first library folder.", ok="201",
            errors=("400", "401", "403", "413", "507"),
            body={"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}}}})},
        "/api/v1/tracks": {"get": _op("Search and list live tracks.", params=[
            _q("q", {"type": "string"}, "Words of artist/title/album (full-text, prefix match)."),
            _q("artist", {"type": "string"}, "Part of the artist name."),
            _q("bpm_min", {"type": "number"}, "Lowest tempo."), _q("bpm_max", {"type": "number"}, "Highest tempo."),
            _q("key", {"type": "string"}, "Camelot code (8A), key and scale (A minor) or key (A)."),
            _q("tag", {"type": "string"}, "ML tag label (e.g. chill) with at least the minimum probability."),
            *_LIMIT])},
        "/api/v1/tracks/failed": {"get": _op("Files that could not be analysed, with reasons.", params=_LIMIT)},
        "/api/v1/tracks/{track_id}": {"get": _op("A track: metadata, every feature, tags, files.",
                                                 params=[_path_id("track_id")])},
        "/api/v1/tracks/{track_id}/similar": {"get": _op("The most similar tracks.", params=[
            _path_id("track_id"), _q("n", {"type": "integer", "minimum": 1, "maximum": 500}, "How many.")])},
        "/api/v1/artists/{artist}/similar": {"get": _op(
            "Artists that sound like this one (artist similarity from the music: a trimmed mean of each artist's "
            "track vectors): {artist: {name, tracks, tracks_in_profile, confidence, server_id?}, similar: [{name, "
            "tracks, score, similarity, confidence, server_id?}], server_only, metric, notes}. score = similarity "
            "× (0.75 + 0.25 × confidence), confidence = tracks / (tracks + 2). The artist itself (any case, "
            "'feat.' or 'The' variant) is never listed; an unknown name is 404 with did_you_mean.", params=[
                {"name": "artist", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "An artist name (any case) or the linked media server's artist id."},
                _q("count", {"type": "integer", "minimum": 1, "maximum": 500, "default": 20}, "How many."),
                _q("server_only", {"type": "boolean", "default": False},
                   "Only artists the linked media server has (400 before the first link).")])},
        "/api/v1/playlists": {
            "get": _op("Saved playlists, newest first.", params=_LIMIT),
            "post": {**_op("Generate a playlist (saved with save: true).", params=[_FORMAT, _PATHS],
                           body=_playlist_body()),
                     "responses": {"200": {"description": "Playlist", "content": _PLAYLIST_MEDIA},
                                   "201": {"description": "Saved playlist", "content": _PLAYLIST_MEDIA},
                                   "400": _ERROR, "401": _ERROR, "404": _ERROR}}},
        "/api/v1/playlists/strategies": {"get": _op("Every strategy with its parameters.", errors=("401",))},
        "/api/v1/playlists/{playlist_id}": {"get": {**_op("A saved playlist (?format=json|m3u8|xspf).", params=[
            _path_id("playlist_id"), _FORMAT, _PATHS]), "responses": {
                "200": {"description": "Playlist", "content": _PLAYLIST_MEDIA}, "400": _ERROR, "401": _ERROR,
                "404": _ERROR}},
            "delete": _op("Delete a saved playlist, its M3U8 file and the media-server playlist playlistgen "
                          "created for it.", params=[_path_id("playlist_id")])},
        "/api/v1/mediaserver/status": {"get": _op("The media-server link: server, songs seen, linked (by method), "
                                                  "unmatched (first 50 with the reason), last link, last error.",
                                                  errors=("401",))},
        "/api/v1/mediaserver/link": {"post": {**_op("Re-link now (?wait=true: in this request, answers the report).",
                                                    params=[_q("wait", {"type": "boolean"}, "Link in this request.")],
                                                    ok="200", errors=("401", "409", "502")),
                                              "responses": {"200": {"description": "Link report",
                                                                    "content": {"application/json": {"schema": _OBJ}}},
                                                            "202": {"description": "Queued"}, "401": _ERROR,
                                                            "409": _ERROR, "502": _ERROR}}},
        "/api/v1/playlists/{playlist_id}.m3u8": {"get": _op("A saved playlist as M3U8.", params=[
            _path_id("playlist_id"), _PATHS], media=_MEDIA["m3u8"])},
        "/api/v1/playlists/{playlist_id}.xspf": {"get": _op("A saved playlist as XSPF.", params=[
            _path_id("playlist_id")], media=_MEDIA["xspf"])},
        "/api/v1/openapi.json": {"get": _op("This document.", errors=("401",))},
        "/api/v1/performance/metrics": {"get": _op("Per-operation count/avg/min/max/p50/p95, memory. " + perf)},
        "/api/v1/performance/optimization-report": {"get": _op("Suggestions from the measurements. " + perf)},
        "/api/v1/performance/cache/stats": {"get": _op("Feature cache statistics. " + perf)},
        "/api/v1/performance/cache": {"delete": _op("Clear the feature cache. " + perf)},
        "/api/v1/performance/resource-usage": {"get": _op("CPU, RSS per process, disk, open files. " + perf)},
        "/api/v1/performance/database/pool": {"get": _op("Reader pool and writer statistics. " + perf)},
        "/api/v1/performance/async-processor/health": {"get": _op("Analysis executor health. " + perf)},
        "/metrics": {"get": _op("Prometheus text format.", media="text/plain", errors=("401",))},
        "/dashboard": {"get": {**_op("Web dashboard (HTML, works offline; the page holds no data and needs no "
                                     "API key, its scripts send the key).", media="text/html", errors=()),
                               "security": []}},
        "/api/v1/library/overview": {"get": _op("Dashboard charts: BPM histogram, keys on the Camelot wheel, "
                                                "top tags, energy histogram, genres.", errors=("401",))},
    }


def _integration_docs() -> dict[str, dict[str, dict]]:
    """The media-server integrations: scheduled mixes, AudioMuse-AI-compatible routes, /rest proxy."""
    bearer = [{"apiKey": []}, {"bearer": []}]
    song = {"type": "string"}
    rest = {**_op("With mediaserver.proxy: the Subsonic server, proxied unchanged (stream/download/getCoverArt with "
                  "Range), plus our getSimilarSongs, getSimilarSongs2 (a song, album or artist id), "
                  "getSonicSimilarTracks, findSonicPath, getArtistInfo and getArtistInfo2 (the server's info with "
                  "our sonic similarArtist list), reportPlayback (OpenSubsonic playbackReport: listening feedback; "
                  "forwarded when the server offers it) and getOpenSubsonicExtensions (+ sonicSimilarity v1, "
                  "playbackReport v1) with the server's ids. Authorised by the media server's own credentials "
                  "(u + p or t + s, or apiKey), "
                  "never by api.key; f=json|xml|jsonp.",
                  params=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                           "description": "Subsonic method, e.g. getSonicSimilarTracks or stream.view"}],
                  media="application/json", errors=()), "security": []}
    return {
        "/api/v1/playlists/schedule": {"get": _op("The scheduled mixes (playlists.schedule), their saved playlist "
                                                  "and when each was last generated.", errors=("401",))},
        "/api/v1/playlists/schedule/run": {"post": {**_op(
            "Generate the scheduled mixes now (all, or {\"names\": [...]}), saved and pushed in place under "
            "their stable names; 207 when one of them failed.", errors=("400", "401"),
            body={"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"}}},
                "additionalProperties": False}}}}),
            "responses": {"200": {"description": "Results", "content": {"application/json": {"schema": _OBJ}}},
                          "207": {"description": "Some failed", "content": {"application/json": {"schema": _OBJ}}},
                          "400": _ERROR, "401": _ERROR}}},
        "/api/similar_tracks": {"get": {**_op(
            "AudioMuse-AI-compatible (its Navidrome plugin): a JSON array of {item_id, title, author, album, "
            "distance} with the media server's song ids; distance = 1 - similarity.", params=[
                _q("item_id", song, "The media server's song id (or give title and artist)."),
                _q("title", song, "Title (with artist) instead of item_id."),
                _q("artist", song, "Artist (with title) instead of item_id."),
                _q("n", {"type": "integer", "minimum": 1, "maximum": 500, "default": 10}, "How many."),
                _q("eliminate_duplicates", {"type": "boolean", "default": True}, "Cap songs per artist.")]),
            "security": bearer}},
        "/api/find_path": {"get": {**_op(
            "AudioMuse-AI-compatible: {path: [{item_id, title, author, album, distance}], total_distance}, the "
            "start song first and the end song last.", params=[
                {**_q("start_song_id", song, "The media server's song id to start from."), "required": True},
                {**_q("end_song_id", song, "The media server's song id to end with."), "required": True},
                _q("max_steps", {"type": "integer", "minimum": 2, "maximum": 500, "default": 25},
                   "Songs in the path, both ends included.")]),
            "security": bearer}},
        "/api/similar_artists": {"get": {**_op(
            "AudioMuse-AI-compatible (its Navidrome plugin's similar artists and artist radio): a JSON array, "
            "most similar first, of {artist, artist_id, component_matches: [{artist1_representative_songs: "
            "[{item_id, title}], artist2_representative_songs: [...]}], score} with the media server's ids; "
            "only artists the server has.", params=[
                {**_q("artist", song, "The media server's artist id, or an artist name."), "required": True},
                _q("n", {"type": "integer", "minimum": 1, "maximum": 500, "default": 10}, "How many."),
                _q("include_component_matches", {"type": "boolean", "default": False},
                   "Add each pair's representative songs (the asked artist's first).")]),
            "security": bearer}},
        "/rest/{path}": {"get": rest, "post": rest},
    }


_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def build_spec(app: Flask) -> dict:
    """The documented routes that exist, plus a minimal entry for every other registered rule."""
    documented = {**_documented(), **_integration_docs()}
    paths: dict[str, dict] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        path = _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = documented.get(path, {}).get(method.lower())
            if op is None:
                params = [_path_id(m.group(2)) if m.group(1) == "int" else
                          {"name": m.group(2), "in": "path", "required": True, "schema": {"type": "string"}}
                          for m in _CONVERTER.finditer(rule.rule)]
                op = _op(f"{method} {path} ({rule.endpoint})", params=params)
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "playlistgen", "version": __version__,
                 "description": "Analyse a local music library once and serve good playlists. All JSON; errors "
                                "are {\"error\": {\"code\", \"message\", \"hint\"}}; every response has "
                                "X-Process-Time. With api.key set, send it as X-API-Key (all routes but /health and "
                                "/dashboard). A POST/PUT/PATCH/DELETE from a browser page of another site, and any "
                                "request naming a Host the server does not answer to, get 403 (api.allowed_hosts)."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"},
                "did_you_mean": {"type": "array"}}}}}},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                "bearer": {"type": "http", "scheme": "bearer",
                                           "description": "api.key as a bearer token (AudioMuse-AI plugins)"}}},
        "security": [{"apiKey": []}],
        "x-strategies": sorted(STRATEGIES), "x-sorts": list(SORTS),
    }


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(build_spec(current_app))

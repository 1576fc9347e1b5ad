"""GET /api/v1/openapi.json: OpenAPI 3.1 for every route. Routes documented here carry their
parameters and bodies; any other registered route (added later by another blueprint) still
appears, with its path parameters, so the document never misses one."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from .. import __version__
from ..core.playlists.export import FORMATS
from ..core.playlists.filters import FILTER_NAMES
from ..core.playlists.registry import STRATEGIES
from ..core.playlists.strategies import SORTS

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
_PLAYLIST_MEDIA = {"application/json": {"schema": _OBJ}, "audio/x-mpegurl": {"schema": {"type": "string"}},
                   "application/xspf+xml": {"schema": {"type": "string"}}}


def _playlist_body() -> dict:
    params: dict[str, Any] = {}
    for strategy in STRATEGIES.values():
        for p in strategy.params:
            kind = {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean",
                    "array": "array", "numbers": "array"}[p.type]
            params.setdefault(p.name, {"type": [kind, "null"], "description": f"({strategy.name}) {p.help}"})
    range_or_names = {"oneOf": [{"type": "number"}, {"type": "string"},
                                {"type": "array", "items": {"type": ["number", "string", "null"]}}]}
    schema = {"type": "object", "required": ["strategy"], "properties": {
        "strategy": {"type": "string", "enum": list(STRATEGIES)},
        "seeds": {"type": "array", "items": {"type": ["integer", "string"]},
                  "description": 'Track ids or "Artist - Title".'},
        "size": {"type": "integer", "minimum": 1, "maximum": 10000},
        "duration_min": {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
        "filters": {"type": "object", "properties": {name: range_or_names for name in FILTER_NAMES},
                    "additionalProperties": False},
        "diversity": {"type": "object", "properties": {
            "artist_gap": {"type": "integer", "minimum": 0}, "album_gap": {"type": "integer", "minimum": 0},
            "max_per_artist": {"type": "integer", "minimum": 0}, "dedupe": {"type": "boolean"}}},
        "save": {"type": "boolean"}, "name": {"type": "string"},
        "random_seed": {"type": "integer", "minimum": 0},
        "params": {"type": "object", "properties": params},
        **params}}
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
            errors=("400", "401", "413"),
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
        "/api/v1/playlists": {
            "get": _op("Saved playlists, newest first.", params=_LIMIT),
            "post": {**_op("Generate a playlist (saved with save: true).", params=[_FORMAT, _PATHS],
                           body=_playlist_body()),
                     "responses": {"200": {"description": "Playlist", "content": _PLAYLIST_MEDIA},
                                   "201": {"description": "Saved playlist", "content": _PLAYLIST_MEDIA},
                                   "400": _ERROR, "401": _ERROR, "404": _ERROR}}},
        "/api/v1/playlists/strategies": {"get": _op("Every strategy with its parameters.", errors=("401",))},
        "/api/v1/playlists/{playlist_id}": {"get": _op("A saved playlist.", params=[
            _path_id("playlist_id"), _FORMAT, _PATHS])},
        "/api/v1/playlists/{playlist_id}.m3u8": {"get": _op("A saved playlist as M3U8.", params=[
            _path_id("playlist_id"), _PATHS], media="audio/x-mpegurl")},
        "/api/v1/playlists/{playlist_id}.xspf": {"get": _op("A saved playlist as XSPF.", params=[
            _path_id("playlist_id")], media="application/xspf+xml")},
        "/api/v1/openapi.json": {"get": _op("This document.", errors=("401",))},
        "/api/v1/performance/metrics": {"get": _op("Per-operation count/avg/min/max/p50/p95, memory. " + perf)},
        "/api/v1/performance/optimization-report": {"get": _op("Suggestions from the measurements. " + perf)},
        "/api/v1/performance/cache/stats": {"get": _op("Feature cache statistics. " + perf)},
        "/api/v1/performance/cache": {"delete": _op("Clear the feature cache. " + perf)},
        "/api/v1/performance/resource-usage": {"get": _op("CPU, RSS per process, disk, open files. " + perf)},
        "/api/v1/performance/database/pool": {"get": _op("Reader pool and writer statistics. " + perf)},
        "/api/v1/performance/async-processor/health": {"get": _op("Analysis executor health. " + perf)},
        "/metrics": {"get": _op("Prometheus text format.", media="text/plain", errors=("401",))},
        "/dashboard": {"get": _op("Web dashboard (HTML, works offline).", media="text/html", errors=("401",))},
        "/api/v1/library/overview": {"get": _op("Dashboard charts: BPM histogram, keys on the Camelot wheel, "
                                                "top tags, energy histogram, genres.", errors=("401",))},
    }


_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def build_spec(app: Flask) -> dict:
    """The documented routes that exist, plus a minimal entry for every other registered rule."""
    documented = _documented()
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
                                "X-Process-Time. With api.key set, send it as X-API-Key (all routes but /health)."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"},
                "did_you_mean": {"type": "array"}}}}}},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
        "security": [{"apiKey": []}],
        "x-strategies": sorted(STRATEGIES), "x-sorts": list(SORTS),
    }


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(build_spec(current_app))

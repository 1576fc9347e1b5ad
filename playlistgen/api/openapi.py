"""GET /api/v1/openapi.json: OpenAPI 3.1 for every route. Routes documented here carry their
parameters and bodies; any other registered route (added later by another blueprint) still
appears, with its path parameters, so the document never misses one."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from .. import __version__
from ..config import Settings
from ..core.playlists.export import FORMATS, MEDIA_TYPES
from ..core.playlists.filters import FILTER_NAMES, NAMES
from ..core.playlists.registry import STRATEGIES
from ..core.playlists.service import REQUEST_KEYS
from ..core.playlists.strategies import SORTS, Param
from ..core.playlists.transitions import ORDERS
from .auth import OPEN_PATHS, OPEN_PREFIXES
from .context import current_services

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")
_OBJ = {"type": "object"}
_ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
# What each error status means here (every error body is the Error schema). 401 and 403 are added
# by build_spec: 401 to every keyed route when api.key is set, 403 (Host/Origin refused) to all.
ERROR_STATUSES = {"400": "Bad request: a parameter or the body is not what this operation takes",
                  "401": "Missing or wrong API key", "403": "Refused: Host or Origin not allowed (api.allowed_hosts), "
                  "or a folder the daemon may not write", "404": "Not found", "405": "Method not allowed",
                  "409": "Conflict with the configuration", "413": "Body too large",
                  "502": "The media server failed", "503": "Not available in this process or not ready",
                  "507": "The disk is full"}
# Text parameters as args.str_arg reads them: no NUL, at most max_len characters; an empty or
# blank value counts as absent (so a required one needs a non-space character).
_ANY_TEXT = r"^[^\u0000]*$"
_SOME_TEXT = r"^[^\u0000]*\S[^\u0000]*$"
# what filters.parse_key takes: a Camelot code (8A), a key (A, Eb, F#) with an optional scale (minor, m, maj)
_KEY = (r"^\s*$|^\s*(1[0-2]|[1-9])\s*[ABab]\s*$|"
        r"^\s*[A-Ga-g][#b\u266F\u266D]?\s*([mM]([iI][nN]([oO][rR])?|[aA][jJ]([oO][rR])?)?)?\s*$")


def _text(max_len: int = 500, *, required: bool = False) -> dict:
    return {"type": "string", "maxLength": max_len, "pattern": _SOME_TEXT if required else _ANY_TEXT,
            **({"minLength": 1} if required else {})}


def _q(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}


def _op(summary: str, *, params: list | None = None, body: dict | None = None, ok: str = "200",
        media: str = "application/json", errors: tuple = ()) -> dict:
    """One operation: its parameters, body, success answer and the error statuses it can answer
    (besides 401/403, which build_spec adds)."""
    op: dict[str, Any] = {"summary": summary, "parameters": params or [],
                          "responses": {ok: {"description": "OK", "content": {media: {"schema": _OBJ if
                                                                                      media.endswith("json") else
                                                                                      {"type": "string"}}}}}}
    for code in errors:
        op["responses"][code] = {**_ERROR, "description": ERROR_STATUSES[code]}
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


def _nullable(schema: dict) -> dict:
    """null means "not given" for most request fields."""
    return {"anyOf": [schema, {"type": "null"}]}


def _filters_schema() -> dict:
    """What filters.filter_mask takes, per filter (null: no filter). Names are looked up in the
    library: one it does not have is a 400 with "did you mean"."""
    number_or_range = {"anyOf": [{"type": "number"}, {"type": "array", "minItems": 2, "maxItems": 2,
                                                      "items": {"type": ["number", "null"]}}]}

    def names(item: dict) -> dict:
        return {"anyOf": [item, {"type": "array", "minItems": 1, "items": item}]}

    word = {"type": "string", "pattern": r"\S"}
    key = {"type": "string", "pattern": _KEY.split("|", 1)[1]}   # a key, not blank
    scale = {"type": "string", "pattern": r"^([mM][aA][jJ][oO][rR]|[mM][iI][nN][oO][rR])$"}
    special = {"key": names(key), "camelot": names(key), "scale": names(scale),
               "tag_min": {"type": "number", "minimum": 0, "maximum": 1}}
    props = {name: special.get(name) or _nullable(names(word) if name in NAMES else number_or_range)
             for name in FILTER_NAMES}
    for name in ("key", "camelot", "scale"):
        props[name] = _nullable(props[name])
    return _nullable({"type": "object", "properties": props, "additionalProperties": False})


def _common_fields() -> dict[str, dict]:
    known = {
        "size": _nullable({"type": "integer", "minimum": 1, "maximum": 10000}),
        "duration_min": _nullable({"type": "number", "exclusiveMinimum": 0, "maximum": 10000}),
        "filters": _filters_schema(),
        "diversity": {"oneOf": [{"type": "boolean"}, {"type": "null"}, {
            "type": "object", "additionalProperties": False, "properties": {
                "artist_gap": {"type": "integer", "minimum": 0, "maximum": 1000},
                "album_gap": {"type": "integer", "minimum": 0, "maximum": 1000},
                "max_per_artist": {"type": "integer", "minimum": 0, "maximum": 1000}, "dedupe": {"type": "boolean"}}}]},
        "save": {"type": "boolean"}, "name": _nullable({"type": "string", "pattern": r"\S"}),
        "random_seed": _nullable({"type": "integer", "minimum": 0, "maximum": 2**63 - 1}),
        "order": {"anyOf": [{"type": "string", "enum": list(ORDERS)}, {"type": "null"}],
                  "description": "Track order (default: the strategy's)."},
        "include_excluded": {"type": "boolean", "description": "Ignore playlists.exclude."},
        "exclude": {"anyOf": [{"type": "null"}, {"type": "object", "additionalProperties": False, "properties": {
            **{name: _nullable({"anyOf": [{"type": "string", "pattern": r"\S"},
                                          {"type": "array", "items": {"type": "string", "pattern": r"\S"}}]})
               for name in ("paths", "folders", "genres")},
            "tags": _nullable({"type": "object", "additionalProperties": {"type": "number", "minimum": 0,
                                                                          "maximum": 1}}),
            "max_duration_min": _nullable({"type": "number", "minimum": 0})}}],
            "description": "Rules excluding tracks, on top of playlists.exclude."},
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
        seed = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"\S"}]}
        seeds: dict[str, Any] = {"type": "array", "items": seed, "minItems": strategy.min_seeds}
        if strategy.max_seeds is not None:
            seeds["maxItems"] = strategy.max_seeds
        one = [seed] if strategy.min_seeds <= 1 and strategy.max_seeds != 0 else []   # one seed alone
        none = [{"type": "null"}] if not strategy.min_seeds else []
        seeds = {"anyOf": [seeds, *one, *none], "description": 'Track ids or "Artist - Title".'}
        branches.append({
            "title": strategy.name, "description": strategy.description, "type": "object",
            "required": ["strategy", "seeds"] if strategy.min_seeds else ["strategy"],
            "properties": {"strategy": {"type": "string", "const": strategy.name}, "seeds": seeds, **common,
                           "params": {"type": ["object", "null"], "properties": own, "additionalProperties": False},
                           **own},
            "additionalProperties": False})
    schema = {"type": "object", "required": ["strategy"], "oneOf": branches,
              "discriminator": {"propertyName": "strategy"}}
    example = {"strategy": "radio", "seeds": ["Massive Attack - Teardrop"], "size": 25,
               "filters": {"bpm": [70, 110]}, "diversity": {"artist_gap": 3}, "save": False}
    return {"required": True, "content": {"application/json": {"schema": schema, "example": example}}}


def _documented() -> dict[str, dict[str, dict]]:
    """The routes of the blueprints, one entry per operation: ``_op(summary, params=..., body=...,
    ok=..., media=..., errors=(statuses it can answer))``. Add a new route here the same way."""
    perf = "Operator view (see DESIGN.md §5)."
    no_daemon = ("503",)   # a process without the analysis daemon or metrics (not `serve`)
    health = _op("Liveness and readiness of database, analysis and watcher (no API key); 503 while not ready.",
                 errors=())
    health["responses"]["503"] = {"description": "Not ready", "content": {"application/json": {"schema": _OBJ}}}
    return {
        "/health": {"get": health},
        "/api/v1/library/status": {"get": _op(
            "Counts, queue depth, scan progress, tracks/min, ETA, the background upgrade (todo, upgraded, failed), "
            "the similarity projection in use.")},
        "/api/v1/library/scan": {"post": _op("Queue a full reconcile of the library folders.", ok="202",
                                             errors=no_daemon)},
        "/api/v1/library/upload": {"post": _op(
            "Upload an audio file (multipart field 'file') into the first library folder. Its name must end in "
            "one of library.extensions (else 400).", ok="201", errors=("400", "413", "507"),
            body={"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}}}})},
        "/api/v1/tracks": {"get": _op("Search and list live tracks.", params=[
            _q("q", _text(), "Words of artist/title/album (full-text, prefix match)."),
            _q("artist", _text(), "Part of the artist name."),
            _q("bpm_min", {"type": "number"}, "Lowest tempo."), _q("bpm_max", {"type": "number"}, "Highest tempo."),
            _q("key", {"type": "string", "maxLength": 20, "pattern": _KEY},
               "Camelot code (8A), key and scale (A minor) or key (A)."),
            _q("tag", _text(100), "ML tag label (e.g. chill) with at least the minimum probability; a label no "
               "track has is a 400 naming the labels there are."),
            *_LIMIT], errors=("400",))},
        "/api/v1/tracks/failed": {"get": _op("Files that could not be analysed, with reasons.", params=_LIMIT,
                                             errors=("400",))},
        "/api/v1/tracks/{track_id}": {"get": _op("A track: metadata, every feature, tags, files.",
                                                 params=[_path_id("track_id")], errors=("404",))},
        "/api/v1/tracks/{track_id}/similar": {"get": _op("The most similar tracks.", params=[
            _path_id("track_id"), _q("n", {"type": "integer", "minimum": 1, "maximum": 500}, "How many (20)."),
            _q("count", {"type": "integer", "minimum": 1, "maximum": 500}, "The same as n.")],
            errors=("400", "404"))},
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
                   "Only artists the linked media server has (400 before the first link).")],
            errors=("400", "404"))},
        "/api/v1/playlists": {
            "get": _op("Saved playlists, newest first.", params=_LIMIT, errors=("400",)),
            "post": {**_op("Generate a playlist (saved with save: true).", params=[_FORMAT, _PATHS],
                           body=_playlist_body(), errors=("400", "404", "413")),
                     "responses": {"200": {"description": "Playlist", "content": _PLAYLIST_MEDIA},
                                   "201": {"description": "Saved playlist", "content": _PLAYLIST_MEDIA},
                                   **_errors("400", "404", "413")}}},
        "/api/v1/playlists/strategies": {"get": _op("Every strategy with its parameters.")},
        "/api/v1/playlists/{playlist_id}": {
            "get": {**_op("A saved playlist (?format=json|m3u8|xspf).", params=[_path_id("playlist_id"), _FORMAT,
                                                                                _PATHS]),
                    "responses": {"200": {"description": "Playlist", "content": _PLAYLIST_MEDIA},
                                  **_errors("400", "404")}},
            "delete": _op("Delete a saved playlist, its M3U8 file and the media-server playlist playlistgen "
                          "created for it.", params=[_path_id("playlist_id")], errors=("404",))},
        "/api/v1/mediaserver/status": {"get": _op("The media-server link: server, songs seen, linked (by method), "
                                                  "unmatched (first 50 with the reason), last link, last error.")},
        "/api/v1/mediaserver/link": {"post": {**_op(
            "Re-link now (?wait=true: in this request, answers the report); 409 when the link is off.",
            params=[_q("wait", {"type": "boolean"}, "Link in this request.")]),
            "responses": {"200": {"description": "Link report", "content": {"application/json": {"schema": _OBJ}}},
                          "202": {"description": "Queued", "content": {"application/json": {"schema": _OBJ}}},
                          **_errors("400", "409", "502")}}},
        "/api/v1/playlists/{playlist_id}.m3u8": {"get": _op("A saved playlist as M3U8.", params=[
            _path_id("playlist_id"), _PATHS], media=_MEDIA["m3u8"], errors=("400", "404"))},
        "/api/v1/playlists/{playlist_id}.xspf": {"get": _op("A saved playlist as XSPF.", params=[
            _path_id("playlist_id")], media=_MEDIA["xspf"], errors=("404",))},
        "/api/v1/openapi.json": {"get": _op("This document (it describes this server: with api.key set, the key).")},
        "/api/v1/performance/metrics": {"get": _op("Per-operation count/avg/min/max/p50/p95, memory. " + perf,
                                                   errors=no_daemon)},
        "/api/v1/performance/optimization-report": {"get": _op("Suggestions from the measurements. " + perf,
                                                               errors=no_daemon)},
        "/api/v1/performance/cache/stats": {"get": _op("Feature cache statistics. " + perf, errors=no_daemon)},
        "/api/v1/performance/cache": {"delete": _op("Clear the feature cache. " + perf, errors=no_daemon)},
        "/api/v1/performance/resource-usage": {"get": _op("CPU, RSS per process, disk, open files. " + perf,
                                                          errors=no_daemon)},
        "/api/v1/performance/database/pool": {"get": _op("Reader pool and writer statistics. " + perf)},
        "/api/v1/performance/async-processor/health": {"get": {
            **_op("Analysis executor health; 503 while it is not ready. " + perf),
            "responses": {"200": {"description": "Ready", "content": {"application/json": {"schema": _OBJ}}},
                          "503": {"description": "Not ready, or no daemon in this process",
                                  "content": {"application/json": {"schema": _OBJ}}}}}},
        "/metrics": {"get": {**_op("Prometheus text format (OpenMetrics when Accept asks for it)."),
                             "responses": {"200": {"description": "Metrics", "content": {
                                 "text/plain": {"schema": {"type": "string"}},
                                 "application/openmetrics-text": {"schema": {"type": "string"}}}},
                                 **_errors(*no_daemon)}}},
        "/dashboard": {"get": _op("Web dashboard (HTML, works offline; the page holds no data and needs no "
                                  "API key, its scripts send the key).", media="text/html")},
        "/api/v1/library/overview": {"get": _op("Dashboard charts: BPM histogram, keys on the Camelot wheel, "
                                                "top tags, energy histogram, genres.")},
    }


def _errors(*codes: str) -> dict[str, dict]:
    return {code: {**_ERROR, "description": ERROR_STATUSES[code]} for code in codes}


def _integration_docs(mix_names: list[str]) -> dict[str, dict[str, dict]]:
    """The media-server integrations: scheduled mixes (``mix_names``: those of playlists.schedule),
    AudioMuse-AI-compatible routes, /rest proxy."""
    song = _text(200, required=True)
    # item_id, or title and artist: one exploded object parameter (OpenAPI states no dependency
    # between separate parameters); it is sent as the plain ?item_id= or ?title=&artist=
    lookup = {"name": "song", "in": "query", "required": True, "style": "form", "explode": True,
              "description": "The media server's song id (item_id), or title and artist.",
              "schema": {"type": "object", "properties": {"item_id": song, "title": _text(required=True),
                                                        "artist": _text(required=True)},
                         "additionalProperties": False,
                         "oneOf": [{"required": ["item_id"]},
                                   {"required": ["title", "artist"], "not": {"required": ["item_id"]}}]}}
    # the configured mixes (an unknown name is a 400): none configured, no name is valid
    names = {"type": "string", "enum": mix_names} if mix_names else {"not": {}}
    subsonic = {"application/json": {"schema": _OBJ}, "text/xml": {"schema": {"type": "string"}},
                "application/xml": {"schema": {"type": "string"}}}
    proxied = {**subsonic, "audio/*": {"schema": {"type": "string", "format": "binary"}},
               "image/*": {"schema": {"type": "string", "format": "binary"}},
               "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    rest = {**_op("With mediaserver.proxy: the Subsonic server, proxied unchanged (stream/download/getCoverArt with "
                  "Range), plus our getSimilarSongs, getSimilarSongs2 (a song, album or artist id), "
                  "getSonicSimilarTracks, findSonicPath, getArtistInfo and getArtistInfo2 (the server's info with "
                  "our sonic similarArtist list), reportPlayback (OpenSubsonic playbackReport: listening feedback; "
                  "forwarded when the server offers it) and getOpenSubsonicExtensions (+ sonicSimilarity v1, "
                  "playbackReport v1) with the server's ids. Authorised by the media server's own credentials "
                  "(u + p or t + s, or apiKey), "
                  "never by api.key; f=json|xml|jsonp.",
                  params=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                           "description": "Subsonic method, e.g. getSonicSimilarTracks or stream.view"}]),
            "responses": {"200": {"description": "The Subsonic answer (a Subsonic error is a 200 too)",
                                  "content": proxied},
                          "404": {"description": "Not a Subsonic API path", "content": subsonic},
                          "default": {"description": "The media server's own status, passed through; 413 for a "
                                                     "body too large, 502/503 when the server is away or busy",
                                      "content": proxied}}}
    return {
        "/api/v1/playlists/schedule": {"get": _op("The scheduled mixes (playlists.schedule), their saved playlist "
                                                  "and when each was last generated.")},
        "/api/v1/playlists/schedule/run": {"post": {**_op(
            "Generate the scheduled mixes now (all, or {\"names\": [...]}), saved and pushed in place under "
            "their stable names; 207 when one of them failed; an unknown name is a 400.",
            body={"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"names": _nullable({"type": "array", "items": names})},
                "additionalProperties": False}}}}),
            "responses": {"200": {"description": "Results", "content": {"application/json": {"schema": _OBJ}}},
                          "207": {"description": "Some failed", "content": {"application/json": {"schema": _OBJ}}},
                          **_errors("400", "413")}}},
        "/api/similar_tracks": {"get": _op(
            "AudioMuse-AI-compatible (its Navidrome plugin): a JSON array of {item_id, title, author, album, "
            "distance} with the media server's song ids; distance = 1 - similarity.", params=[
                lookup, _q("n", {"type": "integer", "minimum": 1, "maximum": 500, "default": 10}, "How many."),
                _q("eliminate_duplicates", {"type": "boolean", "default": True}, "Cap songs per artist.")],
            errors=("400", "404"))},
        "/api/find_path": {"get": _op(
            "AudioMuse-AI-compatible: {path: [{item_id, title, author, album, distance}], total_distance}, the "
            "start song first and the end song last (the same song at both ends is a 400).", params=[
                {**_q("start_song_id", song, "The media server's song id to start from."), "required": True},
                {**_q("end_song_id", song, "The media server's song id to end with."), "required": True},
                _q("max_steps", {"type": "integer", "minimum": 2, "maximum": 500, "default": 25},
                   "Songs in the path, both ends included.")], errors=("400", "404"))},
        "/api/similar_artists": {"get": _op(
            "AudioMuse-AI-compatible (its Navidrome plugin's similar artists and artist radio): a JSON array, "
            "most similar first, of {artist, artist_id, component_matches: [{artist1_representative_songs: "
            "[{item_id, title}], artist2_representative_songs: [...]}], score} with the media server's ids; "
            "only artists the server has.", params=[
                {**_q("artist", song, "The media server's artist id, or an artist name."), "required": True},
                _q("n", {"type": "integer", "minimum": 1, "maximum": 500, "default": 10}, "How many."),
                _q("include_component_matches", {"type": "boolean", "default": False},
                   "Add each pair's representative songs (the asked artist's first).")],
            errors=("400", "404"))},
        "/rest/{path}": {"get": rest, "post": rest},
    }


_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _is_open(path: str) -> bool:
    """Routes the API key does not guard (api/auth.py)."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _finish(op: dict, path: str, keyed: bool) -> dict:
    """The answers every operation shares: 403 (Host/Origin), 405 where a path parameter out of its
    range leaves the path to another rule, and — with api.key — 401 and the key requirement."""
    op = {**op, "responses": dict(op["responses"])}
    if "{" in path and not path.startswith("/rest/"):
        op["responses"].setdefault("405", {**_ERROR, "description": ERROR_STATUSES["405"]})
    op["responses"].setdefault("403", {**_ERROR, "description": ERROR_STATUSES["403"]})
    if keyed and _is_open(path):
        op["security"] = []
    elif keyed:
        op["responses"]["401"] = {**_ERROR, "description": ERROR_STATUSES["401"]}
    return op


def build_spec(app: Flask, settings: Settings | None = None) -> dict:
    """The documented routes that exist, plus a minimal entry for every other registered rule, as
    ``settings`` make them: with api.key every route but the open ones declares (and answers) 401."""
    settings = settings or Settings()
    keyed = bool(settings.api.key)
    mix_names = [str(mix.get("name")) for mix in settings.playlists.schedule if isinstance(mix, dict)]
    documented = {**_documented(), **_integration_docs(mix_names)}
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
                op = _op(f"{method} {path} ({rule.endpoint})", params=params, errors=("400", "404"))
            paths.setdefault(path, {})[method.lower()] = _finish(op, path, keyed)
    key_note = (" api.key is set: send it as X-API-Key or Authorization: Bearer (all routes but /health and "
                "/dashboard)." if keyed else " No api.key is set: no route asks for one.")
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "playlistgen", "version": __version__,
                 "description": "Analyse a local music library once and serve good playlists. All JSON; errors "
                                "are {\"error\": {\"code\", \"message\", \"hint\"}}; every response has "
                                "X-Process-Time." + key_note + " A POST/PUT/PATCH/DELETE from a browser page of "
                                "another site, and any request naming a Host the server does not answer to, get "
                                "403 (api.allowed_hosts)."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message", "hint"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"},
                    "did_you_mean": {"type": "array"}}}}}}},
        "x-strategies": sorted(STRATEGIES), "x-sorts": list(SORTS),
    }
    if keyed:
        spec["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "api.key as a bearer token (AudioMuse-AI "
                                                                           "plugins)"}}
        spec["security"] = [{"apiKey": []}, {"bearer": []}]   # either one
    return spec


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(build_spec(current_app, current_services().settings))

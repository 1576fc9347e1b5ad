"""The AudioMuse-AI HTTP contract its Navidrome plugin calls, served with the media server's song
ids (see docs/integrations.md for the plugin files this follows):

* ``GET /api/similar_tracks?item_id=&n=10&eliminate_duplicates=true`` (or ``title`` + ``artist``
  instead of ``item_id``) → a JSON array of ``{"item_id", "title", "author", "album", "distance"}``,
  most similar first. The plugin turns ``distance`` into a similarity as ``1 − distance``, so
  ``distance`` is ``d / d_max`` (0 = the same sound, 1 = the most different song in the library).
  ``eliminate_duplicates`` (default true) caps songs per artist (``playlists.max_per_artist``, 3
  when that is 0); ``radius_similarity`` and ``mood_similarity`` are accepted and ignored.
* ``GET /api/find_path?start_song_id=&end_song_id=&max_steps=25`` → ``{"path": [...the same
  objects, both ends included...], "total_distance"}`` (``max_steps`` counts every song of the
  path, as AudioMuse's "songs in path" does; ``distance`` is measured from the start song).

* ``GET /api/similar_artists?artist=<server artist id or name>&n=10&include_component_matches=false``
  → a JSON array, most similar first, of ``{"artist", "artist_id", "component_matches"}`` (the
  server's artist name and id; with ``include_component_matches=true`` one entry
  ``{"artist1_representative_songs": [{"item_id", "title"}], "artist2_representative_songs": [...]}``:
  the asked artist's songs that sound most like the similar one, and the similar one's songs
  that sound most like the asked one — the plugin's artist radio alternates them), plus our
  ``score`` (ignored by the plugin). The shape is the plugin's ``SimilarArtistsResponse`` in
  ``audiomuse_api.go`` (NeptuneHub/AudioMuse-AI-NV-plugin, commit c2450d70, read, not copied):
  ``GetSimilarArtists`` maps ``artist_id``/``artist`` to Navidrome artists,
  ``GetSimilarSongsByArtist`` plays the representative songs' ``item_id`` s.

With ``api.key`` set, the plugin's ``Authorization: Bearer <api.key>`` is the key (``api/auth.py``).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..core.integrations.mediaserver.sonic import Match, SonicSearch
from ..core.playlists.diversity import Diversity
from ..errors import BadRequestError, NotFoundError
from .args import bool_arg, int_arg, str_arg
from .context import current_services

bp = Blueprint("audiomuse", __name__, url_prefix="/api")
LINK_HINT = "playlistgen answers with the linked media server's song ids: set mediaserver.url and wait for the link"


def _sonic() -> SonicSearch:
    return current_services().sonic


def _track(server_id: str, what: str) -> int:
    track = _sonic().track_of(server_id)
    if track is None:
        known = _sonic().is_song(server_id)
        raise NotFoundError(f"{what} '{server_id}' " + ("is not analysed yet" if known else "is not a known song"),
                            hint="wait for the analysis to finish" if known else LINK_HINT)
    return track


def _item(m: Match) -> dict:
    e = m.entry
    return {"item_id": m.server_id, "title": e.get("title") or "", "author": e.get("artist") or "",
            "album": e.get("album") or "unknown", "distance": m.distance}


@bp.get("/similar_tracks")
def similar_tracks():  # type: ignore[no-untyped-def]
    item_id = str_arg("item_id", 200)
    if item_id is None:
        title, artist = str_arg("title"), str_arg("artist")
        if not (title and artist):
            raise BadRequestError("give 'item_id', or both 'title' and 'artist'",
                                  hint="e.g. /api/similar_tracks?item_id=<the media server's song id>&n=10")
        item_id = _sonic().song_by_name(title, artist)
        if item_id is None:
            raise NotFoundError(f"track '{title}' by '{artist}' is not a known song", hint=LINK_HINT)
    n = int_arg("n", 10, 1, 500)
    if bool_arg("eliminate_duplicates", True):
        cap = current_services().settings.playlists.max_per_artist or 3
        rules = Diversity(0, 0, cap, True)
    else:
        rules = Diversity(0, 0, 0, True)
    track = _track(item_id, "item_id")
    matches = _sonic().similar([track], n, diversity=rules, prefer={track: item_id})
    return jsonify([_item(m) for m in matches])


@bp.get("/find_path")
def find_path():  # type: ignore[no-untyped-def]
    start, end = str_arg("start_song_id", 200), str_arg("end_song_id", 200)
    if not start or not end:
        raise BadRequestError("'start_song_id' and 'end_song_id' are required")
    steps = int_arg("max_steps", 25, 2, 500)
    a, b = _track(start, "start_song_id"), _track(end, "end_song_id")   # an unknown song is a 404 first
    if start == end:
        raise BadRequestError("Start and end songs cannot be the same.")
    if a == b:
        raise BadRequestError("start_song_id and end_song_id are the same recording")
    matches = _sonic().path(a, b, steps, prefer={a: start, b: end})
    path = [_item(m) for m in matches]
    return jsonify({"path": path, "total_distance": round(sum(m.step for m in matches), 4)})


@bp.get("/similar_artists")
def similar_artists():  # type: ignore[no-untyped-def]
    artist = str_arg("artist", 500)
    if artist is None:
        raise BadRequestError("'artist' is required", hint="e.g. /api/similar_artists?artist=<the media server's "
                              "artist id>&n=10")
    n = int_arg("n", 10, 1, 500)
    songs = bool_arg("include_component_matches", False)
    artists = current_services().artists
    found = artists.for_server(artist.strip(), n)
    if found is None or found[0] is None:   # not a server artist id (or none of its songs analysed): a name
        _cat, _profiles, code = artists.resolve(artist)
        found = artists.for_server_code(code, n)
    code, similar = found
    out = []
    for s in similar:
        matches = [{"artist1_representative_songs": artists.representative(code, s.artist.code),
                    "artist2_representative_songs": artists.representative(s.artist.code, code)}] if songs else []
        out.append({"artist": s.server_name, "artist_id": s.server_id, "component_matches": matches,
                    "score": s.artist.score})
    return jsonify(out)

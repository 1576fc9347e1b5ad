"""Strategy ``artist_radio``: tracks by an artist and by the artists that sound like it.

The artist is the ``artist`` parameter (a name, any case/"feat."/"The" variant) or the artist of
the one seed track. Its similar artists come from ``similar.py`` (only artists with a track the
filters allow). Candidates: the artist's own tracks, most typical first (closest to its
profile), and each similar artist's tracks that sound most like the asked artist first; they are
taken in turn — the artist itself for about ``own_share`` of the playlist, the similar artists
round-robin in their order (those scoring under half the best
one are left out) — under the usual diversity rules (which keep the artist's own
tracks apart). When that runs out (a small library), the tracks closest to the artist's sound by
anyone fill the rest, with a note.
"""

from __future__ import annotations

import numpy as np

from ....errors import BadRequestError
from ..index import distances, top_k
from ..strategies import Context, Param, Strategy
from .profiles import ArtistProfiles, profiles_of
from .similar import artists_with_rows, rank, resolve, scores

FEW_TRACKS = 3   # an artist with fewer analysed tracks gets a note: its sound rests on them
KEEP_OF_BEST = 0.5   # similar artists scoring below this share of the best one are left out


def _artist(ctx: Context, profiles: ArtistProfiles) -> int:
    name = ctx.params.get("artist")
    if name:
        return resolve(profiles, str(name))
    if ctx.seeds:
        code = int(profiles.of_row[ctx.seeds[0]])
        if code < 0:
            raise BadRequestError("the seed track has no artist tag", hint="give the artist by name: artist=...")
        return code
    raise BadRequestError("artist_radio needs an artist", hint='e.g. {"strategy": "artist_radio", "artist": '
                          '"Massive Attack"} or `playlistgen playlist artist_radio --artist "Massive Attack"`')


def _closest_first(ctx: Context, profiles: ArtistProfiles, code: int, rows: np.ndarray) -> np.ndarray:
    if rows.size == 0:
        return rows
    d = distances(ctx.cat, profiles.X[code][None, :], profiles.present[code][None, :], rows=rows)[0]
    return rows[np.argsort(d, kind="stable")]


def _interleave(own: list[int], others: list[list[int]], share: float) -> list[int]:
    """The artist's own rows for ``share`` of the order, the others round-robin in between."""
    merged: list[int] = []
    own_taken, turn = 0, 0
    others = [list(o) for o in others if o]
    while own_taken < len(own) or others:
        if own_taken < len(own) and (not others or own_taken < share * (len(merged) + 1)):
            merged.append(own[own_taken])
            own_taken += 1
            continue
        turn %= len(others)
        merged.append(others[turn].pop(0))
        if others[turn]:
            turn += 1
        else:
            del others[turn]
    return merged


def artist_radio(ctx: Context) -> None:
    cat = ctx.cat
    profiles = profiles_of(cat)
    code = _artist(ctx, profiles)
    name = profiles.names[code]
    for row in ctx.seeds:
        ctx.picker.force(row)
    allowed = ctx.allowed.copy()
    allowed[ctx.seeds] = False
    score, similarity = scores(cat, profiles, code)
    similar = rank(profiles, score, similarity, ctx.params["similar_artists"], artists_with_rows(profiles, allowed))
    if similar:   # artists far below the best match are another sound, not "similar"
        similar = [s for s in similar if s.score >= KEEP_OF_BEST * similar[0].score]
    own = _closest_first(ctx, profiles, code, np.flatnonzero(allowed & (profiles.of_row == code)))
    others = [_closest_first(ctx, profiles, code, np.flatnonzero(allowed & (profiles.of_row == s.code))).tolist()
              for s in similar]
    ctx.picker.fill(_interleave(own.tolist(), others, ctx.params["own_share"]))
    if not ctx.picker.full:
        before = len(ctx.picker.rows)
        near = distances(cat, profiles.X[code][None, :], profiles.present[code][None, :])[0]
        ctx.picker.fill(top_k(near, max(200, ctx.target_count() * 8), allowed))
        if len(ctx.picker.rows) > before:
            ctx.notes.append(f"artist_radio: {len(ctx.picker.rows) - before} track(s) by other artists close to "
                             f"{name}'s sound fill the playlist (the similar artists have no more tracks)")
    tracks = int(profiles.tracks[code])
    if tracks < FEW_TRACKS:
        ctx.notes.append(f"artist_radio: {name} has only {tracks} analysed track(s): its sound, and so its similar "
                         "artists, rest on them")
    if similar:
        ctx.notes.append(f"artist_radio: {name} with " + ", ".join(f"{s.name} ({s.score:.2f})" for s in similar))
    else:
        ctx.notes.append(f"artist_radio: no other artist to draw from; only {name} and tracks close to its sound")
    ctx.info["artist"] = {"name": name, "tracks": tracks, "confidence": round(float(profiles.confidence[code]), 4)}
    ctx.info["similar_artists"] = [s.to_dict() for s in similar]
    ctx.name = f"Artist radio · {name}"


ARTIST_STRATEGIES = [
    Strategy("artist_radio", "Tracks by an artist and by the artists that sound most like it (artist "
             "similarity from the music), under the diversity rules. The artist: the 'artist' parameter or "
             "the artist of the one seed track.", artist_radio, (
                 Param("artist", "string", None, "The artist's name (any case; 'feat.' and a leading 'The' do "
                       "not matter); default: the seed track's artist."),
                 Param("similar_artists", "integer", 8, "How many similar artists to draw from.",
                       minimum=0, maximum=100),
                 Param("own_share", "number", 0.35, "About this share of the tracks is by the artist itself "
                       "(the artist gap may lower it).", minimum=0.0, maximum=1.0)),
             min_seeds=0, max_seeds=1, listens=True),
]

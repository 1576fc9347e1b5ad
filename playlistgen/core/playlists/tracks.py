"""Track queries: track objects for responses, search (FTS5), detail, seed resolution.

Every query here returns live tracks only (a file with status 'done' points at them), and a
track's ``path`` is one of those files, so a missing or failed file is never handed out."""

from __future__ import annotations

import json
import re
from typing import Any

import apsw

from ...errors import BadRequestError
from ..music import camelot_name, key_spellings
from ..storage.db import Database
from ..storage.files import live
from ..storage.records import CURRENT_PATH, LIVE, NEWEST_FEATURES, SCALAR_FEATURES, from_blob, get_track_features
from .diversity import normalise_artist, normalise_title
from .filters import parse_key
from .names import UnknownTrackError, no_tags_error, unknown_tag

TOP_TAGS = 5
_TRACK_COLUMNS = (f"t.id, {CURRENT_PATH}, t.artist, t.album, t.title, t.genre, t.year, t.track_number, "
                  "coalesce(f.duration_s, t.duration_s), f.bpm, f.key, f.scale, f.camelot, f.energy, "
                  "f.danceability, f.loudness_lufs, f.valence, f.preset, f.mixramp_start, f.mixramp_end")
_FIELDS = ("id", "path", "artist", "album", "title", "genre", "year", "track_number", "duration_s", "bpm", "key",
           "scale", "camelot", "energy", "danceability", "loudness_lufs", "valence", "preset", "mixramp_start",
           "mixramp_end")


def fts_query(text: str) -> str | None:
    """User text → a safe FTS5 query: every word as a quoted prefix term (all must match)."""
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    return " ".join(f'"{w}"*' for w in words) if words else None


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _top_tags(conn: apsw.Connection, ids: list[int], limit: int = TOP_TAGS) -> dict[int, list[dict]]:
    rows = conn.execute("SELECT track_id, label, max(probability) AS p FROM tags "
                        "WHERE track_id IN (SELECT value FROM json_each(?)) GROUP BY track_id, label "
                        "ORDER BY track_id, p DESC", (json.dumps(ids),)).fetchall()
    out: dict[int, list[dict]] = {}
    for track_id, label, p in rows:
        lst = out.setdefault(track_id, [])
        if len(lst) < limit:
            lst.append({"label": label, "probability": round(p, 4)})
    return out


def track_objects(db: Database, ids: list[int]) -> list[dict]:
    """Track objects in the order of ``ids``; ids that are not live are left out."""
    if not ids:
        return []
    wanted = [int(i) for i in ids]

    def read(conn: apsw.Connection) -> tuple[list[tuple], dict[int, list[dict]]]:
        rows = conn.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks t LEFT JOIN features f ON {NEWEST_FEATURES} "
                            f"WHERE t.id IN (SELECT value FROM json_each(?)) AND {LIVE}",
                            (json.dumps(sorted(set(wanted))),)).fetchall()
        return rows, _top_tags(conn, [r[0] for r in rows])

    rows, tags = db.read(read)
    by_id = {r[0]: {k: _round(v) for k, v in zip(_FIELDS, r, strict=True)} for r in rows}
    for track_id, obj in by_id.items():
        obj["tags"] = tags.get(track_id, [])
        start, end = obj.pop("mixramp_start"), obj.pop("mixramp_end")   # MPD fade hints, when analysed
        obj["mixramp"] = {"start": start, "end": end} if start or end else None
    return [by_id[i] for i in wanted if i in by_id]


def search(db: Database, *, q: str | None = None, artist: str | None = None, bpm_min: float | None = None,
           bpm_max: float | None = None, key: str | None = None, tag: str | None = None, tag_min: float = 0.1,
           limit: int = 50, offset: int = 0) -> dict:
    """GET /api/v1/tracks: every condition must hold; ``q`` searches artist/title/album (FTS5)."""
    where, params = [LIVE], []
    order = "t.artist COLLATE NOCASE, t.album COLLATE NOCASE, t.track_number, t.title COLLATE NOCASE, t.id"
    join = ""
    if q:
        match = fts_query(q)
        if match:
            join = "JOIN (SELECT rowid, rank FROM tracks_fts WHERE tracks_fts MATCH ?) s ON s.rowid = t.id"
            params.append(match)
            order = "s.rank, t.id"
    if artist:
        where.append("t.artist LIKE ? ESCAPE '\\'")
        params.append("%" + artist.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if bpm_min is not None:
        where.append("f.bpm >= ?")
        params.append(bpm_min)
    if bpm_max is not None:
        where.append("f.bpm <= ?")
        params.append(bpm_max)
    if key:
        kind, value = parse_key(key)
        if kind == "camelot":
            where.append("upper(f.camelot) = ?")
            params.append(camelot_name(value))  # type: ignore[arg-type]
        else:
            pc, scale = value  # type: ignore[misc]
            names = key_spellings(pc)
            where.append(f"f.key IN ({', '.join('?' * len(names))})")
            params.extend(names)
            if scale is not None:
                where.append("f.scale = ?")
                params.append("major" if scale == 1 else "minor")
    if tag:
        labels = [r[0] for r in db.query("SELECT DISTINCT label FROM tags")]
        match_label = next((label for label in labels if label.casefold() == tag.casefold()), None)
        if match_label is None:
            raise unknown_tag(tag, labels) if labels else no_tags_error(tag)
        where.append("EXISTS (SELECT 1 FROM tags tg WHERE tg.track_id = t.id AND tg.label = ? AND tg.probability >= ?)")
        params.extend([match_label, tag_min])
    base = f"FROM tracks t {join} LEFT JOIN features f ON {NEWEST_FEATURES} WHERE {' AND '.join(where)}"

    def read(conn: apsw.Connection) -> tuple[int, list[int]]:
        try:
            total = conn.execute(f"SELECT count(*) {base}", params).fetchall()[0][0]
            ids = [r[0] for r in conn.execute(f"SELECT t.id {base} ORDER BY {order} LIMIT ? OFFSET ?",
                                              [*params, limit, offset])]
        except apsw.SQLError as exc:  # an FTS5 syntax corner case: say so instead of a 500
            raise BadRequestError(f"cannot search for {q!r}: {exc}", hint="use plain words") from None
        return total, ids

    total, ids = db.read(read)
    return {"total": total, "limit": limit, "offset": offset, "tracks": track_objects(db, ids)}


_DETAIL_FEATURES = (*SCALAR_FEATURES, "mfcc_mean", "mfcc_std", "chroma", "embedding", "analyzer_version", "preset")


def _detail_record(db: Database, track_id: int, cache: Any) -> dict | None:
    """{feature: value, "tags": {source: {label: p}}} from the FeatureCache (if given) or SQLite."""
    if cache is not None:
        return get_track_features(db, cache, track_id)

    def read(conn: apsw.Connection) -> dict | None:
        cols = ", ".join(f"f.{c}" for c in _DETAIL_FEATURES)
        rows = conn.execute(f"SELECT {cols} FROM tracks t JOIN features f ON {NEWEST_FEATURES} WHERE t.id = ?",
                            (track_id,)).fetchall()
        if not rows:
            return None
        record = dict(zip(_DETAIL_FEATURES, rows[0], strict=True))
        record["tags"] = {}
        for source, label, p in conn.execute("SELECT source, label, probability FROM tags WHERE track_id = ? "
                                             "ORDER BY source, probability DESC", (track_id,)):
            record["tags"].setdefault(source, {})[label] = p
        return record

    return db.read(read)


def track_detail(db: Database, track_id: int, cache: Any = None) -> dict:
    """GET /api/v1/tracks/<id>: metadata, every feature, tags by source, the files."""
    objects = track_objects(db, [track_id])
    if not objects:
        raise UnknownTrackError(f"id {track_id}")
    track = objects[0]
    record = _detail_record(db, track_id, cache)
    if record is not None:
        features: dict[str, Any] = {}
        for name in _DETAIL_FEATURES:
            value = record.get(name)
            if isinstance(value, bytes):
                value = from_blob(value)
            if value is not None and not isinstance(value, (str, int, float)):
                value = [round(float(v), 5) for v in value]  # a numpy vector
            features[name] = _round(value)
        track["features"] = features
        track["all_tags"] = {source: [{"label": label, "probability": round(p, 4)} for label, p in
                                      sorted(labels.items(), key=lambda kv: -kv[1])]
                             for source, labels in (record.get("tags") or {}).items()}
    files = db.query(f"SELECT path, size, analysed_at FROM files WHERE track_id = ? AND {live()} ORDER BY id",
                     (track_id,))
    track["files"] = [{"path": p, "size": s, "analysed_at": a} for p, s, a in files]
    return track


def resolve_seed(db: Database, seed: Any) -> int:
    """A seed is a track id (int or digits) or "Artist - Title"; returns a live track id or raises
    UnknownTrackError with "did you mean" candidates."""
    if isinstance(seed, bool) or not isinstance(seed, (int, str)):
        raise BadRequestError(f"a seed must be a track id or \"Artist - Title\", got {seed!r}")
    if isinstance(seed, int) or seed.strip().isdigit():
        track_id = int(seed)
        if not 0 < track_id < 2**63:
            raise UnknownTrackError(f"id {track_id}")
        if db.query(f"SELECT 1 FROM tracks t WHERE t.id = ? AND {LIVE}", (track_id,)):
            return track_id
        raise UnknownTrackError(f"id {track_id}")
    text = seed.strip()
    if not text:
        raise BadRequestError("an empty seed", hint='give a track id or "Artist - Title"')
    candidates = _fts_candidates(db, text, all_words=True) or _fts_candidates(db, text, all_words=False)
    splits = [(text[:m.start()], text[m.end():]) for m in re.finditer(r"\s+[-–—]\s+", text)]
    for artist, title in splits:
        a, t = artist.strip().casefold(), title.strip().casefold()
        exact = [c for c in candidates if (c["artist"] or "").casefold() == a and (c["title"] or "").casefold() == t]
        if exact:
            return exact[0]["id"]
        loose = [c for c in candidates if normalise_artist(c["artist"]) == normalise_artist(artist)
                 and normalise_title(c["title"]) == normalise_title(title)]
        if loose:
            return loose[0]["id"]
    if not splits:
        exact_title = [c for c in candidates if (c["title"] or "").casefold() == text.casefold()]
        if len(exact_title) == 1:
            return exact_title[0]["id"]
    # "Artist - Tit": the artist in full and the start of exactly one title (all candidates seen)
    prefixed = {c["id"] for c in candidates for artist, title in splits
                if normalise_artist(c["artist"]) == normalise_artist(artist)
                and (c["title"] or "").casefold().startswith(title.strip().casefold())}
    if len(prefixed) == 1 and len(candidates) < SEED_CANDIDATES:
        return prefixed.pop()
    raise UnknownTrackError(f"'{text}'", [{k: c[k] for k in ("id", "artist", "title")} for c in candidates[:5]])


SEED_CANDIDATES = 25


def _fts_candidates(db: Database, text: str, *, all_words: bool, limit: int = SEED_CANDIDATES) -> list[dict]:
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    if not words:
        return []
    match = (" " if all_words else " OR ").join(f'"{w}"*' for w in words)
    rows = db.query(f"SELECT t.id, t.artist, t.title FROM (SELECT rowid, rank FROM tracks_fts WHERE tracks_fts "
                    f"MATCH ? ORDER BY rank LIMIT ?) s JOIN tracks t ON t.id = s.rowid WHERE {LIVE} ORDER BY s.rank",
                    (match, limit * 4))
    return [{"id": r[0], "artist": r[1], "title": r[2]} for r in rows[:limit]]

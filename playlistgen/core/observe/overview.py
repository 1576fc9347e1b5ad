"""Library overview for the dashboard: BPM histogram, key distribution on the Camelot wheel, top
tags, energy histogram and totals — aggregated in SQL over the analysed tracks (one features row
per track, the newest)."""

from __future__ import annotations

import logging
from typing import Any

from ..music import key_from_camelot
from ..storage.records import LIVE_FEATURES, library_state

log = logging.getLogger(__name__)

BPM_BIN = 10
BPM_RANGE = (60, 200)          # tempos outside are folded into the first/last bin
ENERGY_BINS = 10
TOP_TAGS = 15
TAGS_PER_TRACK = 3             # a tag counts for a track when it is among the track's top 3

_LATEST = LIVE_FEATURES


def library_overview(db: Any) -> dict:
    def read(conn: Any) -> dict:
        tracks, seconds, with_tags = conn.execute(
            f"SELECT count(*), coalesce(sum(duration_s), 0), "
            f"(SELECT count(DISTINCT track_id) FROM tags WHERE track_id IN (SELECT track_id FROM ({_LATEST}))) "
            f"FROM ({_LATEST})").fetchone()
        low, high = BPM_RANGE
        bpm_rows = dict(conn.execute(
            f"SELECT min(max(CAST(bpm AS INTEGER), {low}), {high - 1}) / {BPM_BIN} * {BPM_BIN} AS bin, count(*) "
            f"FROM ({_LATEST}) WHERE bpm IS NOT NULL GROUP BY bin").fetchall())
        bpm_bins = [{"from": b, "to": b + BPM_BIN, "count": bpm_rows.get(b, 0)} for b in range(low, high, BPM_BIN)]
        key_rows = {c: n for c, n in conn.execute(
            f"SELECT camelot, count(*) FROM ({_LATEST}) WHERE camelot IS NOT NULL GROUP BY camelot")}
        keys = [{"camelot": code, "key": key, "scale": scale, "count": key_rows.get(code, 0)}
                for code in (f"{number}{letter}" for number in range(1, 13) for letter in "AB")
                for key, scale in (key_from_camelot(code),)]
        energy_rows = dict(conn.execute(
            f"SELECT min(CAST(energy * {ENERGY_BINS} AS INTEGER), {ENERGY_BINS - 1}) AS bin, count(*) "
            f"FROM ({_LATEST}) WHERE energy IS NOT NULL GROUP BY bin").fetchall())
        energy = [{"from": b / ENERGY_BINS, "to": (b + 1) / ENERGY_BINS, "count": energy_rows.get(b, 0)}
                  for b in range(ENERGY_BINS)]
        tags = [{"label": label, "source": source, "tracks": n, "mean_probability": round(p, 4)}
                for label, source, n, p in conn.execute(
                    "SELECT label, source, count(*), avg(probability) FROM ("
                    "  SELECT label, source, probability, row_number() OVER "
                    "    (PARTITION BY track_id, source ORDER BY probability DESC) AS rank FROM tags"
                    f"  WHERE track_id IN (SELECT track_id FROM ({_LATEST}))"
                    f") WHERE rank <= {TAGS_PER_TRACK} GROUP BY source, label ORDER BY count(*) DESC, avg(probability) "
                    f"DESC LIMIT {TOP_TAGS}")]
        genres = [{"genre": g, "tracks": n} for g, n in conn.execute(
            f"SELECT t.genre, count(*) FROM ({_LATEST}) f JOIN tracks t ON t.id = f.track_id "
            "WHERE t.genre IS NOT NULL AND t.genre != '' GROUP BY t.genre ORDER BY count(*) DESC LIMIT 10")]
        return {"tracks": tracks, "hours": round(seconds / 3600, 2), "tracks_with_tags": with_tags,
                "bpm_histogram": {"bin_width": BPM_BIN, "bins": bpm_bins,
                                  "unknown": tracks - sum(b["count"] for b in bpm_bins)},
                "keys": keys, "energy_histogram": energy, "top_tags": tags, "genres": genres,
                "tags_per_track": TAGS_PER_TRACK}

    return db.read(read)


def cached_overview(db: Any, cache: Any) -> dict:
    """The overview through the FeatureCache, keyed by the library state: the dashboard asks every
    30 s, and on a 200k-track library the aggregates cost far more than the state query."""
    if cache is None:
        return library_overview(db)
    return cache.get_or_load(("overview", library_state(db)), lambda: library_overview(db))


"""A synthetic but realistic analysed library: tracks from a few styles (chill electronic, rock,
jazz, house, ambient), each with plausible tempo, key, energy, MFCC, chroma, a 200-d embedding
near its style's centre and MSD-style tags. Rows are written through JobQueue.complete, the same
path real analysis results take (data, not a mock)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from playlistgen.core.analysis.result import AnalysisResult
from playlistgen.core.storage.db import Database
from playlistgen.core.storage.jobs import Job, JobQueue

STYLES = {
    # name: (bpm, energy, danceability, genre, {tag: probability})
    "chill": (90.0, 0.35, 0.5, "Electronic", {"chill": 0.55, "electronic": 0.5, "chillout": 0.4, "Mellow": 0.3}),
    "rock": (132.0, 0.8, 0.45, "Rock", {"rock": 0.7, "guitar": 0.4, "hard rock": 0.3, "male vocalists": 0.3}),
    "jazz": (105.0, 0.45, 0.4, "Jazz", {"jazz": 0.65, "instrumental": 0.4, "easy listening": 0.3}),
    "house": (124.0, 0.85, 0.85, "House", {"dance": 0.6, "House": 0.55, "party": 0.5, "electronic": 0.45}),
    "ambient": (70.0, 0.15, 0.15, "Ambient", {"ambient": 0.7, "chill": 0.35, "experimental": 0.3}),
}
ALL_LABELS = sorted({label for *_, tags in STYLES.values() for label in tags} | {"happy", "sad", "pop"})
CAMELOT_KEYS = {  # a few Camelot codes with their key/scale
    "8A": ("A", "minor"), "9A": ("E", "minor"), "7A": ("D", "minor"), "8B": ("C", "major"),
    "9B": ("G", "major"), "5A": ("C", "minor"), "11B": ("A", "major"), "3A": ("Bb", "minor"),
}


def make_result(rng: np.random.Generator, style: str, centres: dict, *, artist: str, album: str, title: str,
                track_number: int, preset: str = "balanced", camelot: str | None = None,
                bpm: float | None = None) -> dict:
    base_bpm, energy, dance, genre, tags = STYLES[style]
    code = camelot or rng.choice(list(CAMELOT_KEYS))
    key, scale = CAMELOT_KEYS[code]
    emb = centres[style]["embedding"] + rng.normal(0, 0.35, 200)
    result = {
        "metadata": {"artist": artist, "album": album, "title": title, "genre": genre,
                     "year": int(rng.integers(1970, 2024)), "track_number": track_number},
        "duration_s": float(rng.uniform(150, 420)),
        "bpm": float(bpm if bpm is not None else base_bpm * rng.uniform(0.94, 1.06)),
        "bpm_confidence": 0.9, "key": key, "scale": scale, "key_strength": float(rng.uniform(0.5, 0.9)),
        "camelot": code, "loudness_lufs": float(-30 + 22 * energy + rng.normal(0, 1.5)),
        "loudness_range": float(rng.uniform(3, 12)), "dynamic_complexity": float(rng.uniform(2, 8)),
        "danceability": float(np.clip(dance + rng.normal(0, 0.05), 0, 1)),
        "energy": float(np.clip(energy + rng.normal(0, 0.05), 0, 1)),
        "spectral_centroid": float(800 + 2500 * energy + rng.normal(0, 100)),
        "spectral_rolloff": float(2000 + 5000 * energy + rng.normal(0, 200)),
        "spectral_flatness": float(rng.uniform(0.01, 0.2)), "zcr": float(rng.uniform(0.02, 0.15)),
        "mfcc_mean": list(centres[style]["mfcc"] + rng.normal(0, 0.5, 13)),
        "mfcc_std": list(np.abs(rng.normal(5, 1, 13))),
        "chroma": list(np.abs(rng.normal(0.5, 0.2, 12))),
        "embedding": list(emb) if preset != "fast" else None,
        "tags": None if preset == "fast" else {"msd": {
            label: float(np.clip(tags.get(label, 0.03) + rng.normal(0, 0.04), 0.001, 0.99)) for label in ALL_LABELS}},
        "valence": float(rng.uniform(0.2, 0.8)) if preset != "fast" else None,
        "acousticness": float(rng.uniform(0, 1)) if preset != "fast" else None,
        "instrumentalness": float(rng.uniform(0, 1)) if preset != "fast" else None,
        "analyzer_version": "test-1", "preset": preset, "cpu_s": 1.0,
    }
    return result


def style_centres(rng: np.random.Generator) -> dict:
    return {s: {"embedding": rng.normal(0, 1, 200), "mfcc": rng.normal(0, 4, 13)} for s in STYLES}


def add_track(db: Database, library: Path, result: dict, *, fingerprint: str, status: str = "done") -> int:
    """Insert a file row and store the analysis result through the job queue; returns the track id."""
    meta = result["metadata"]
    path = library / meta["artist"] / meta["album"] / f"{meta['track_number']:02d} {meta['title']}.flac"
    file_id = db.write(lambda c: c.execute(
        "INSERT INTO files(path, size, mtime_ns, fingerprint, status) VALUES (?, 1000, 1, ?, 'analysing') "
        "RETURNING id", (str(path), fingerprint)).fetchall()[0][0])
    JobQueue(db, "test-1").complete(Job(file_id, str(path), fingerprint), AnalysisResult.from_dict(result)).result()
    if status != "done":
        db.write(lambda c: c.execute("UPDATE files SET status = ?, updated_at = unixepoch('subsec') WHERE id = ?",
                                     (status, file_id)))
    return db.query("SELECT track_id FROM files WHERE id = ?", (file_id,))[0][0]


def populate(db: Database, library: Path, *, artists: int = 30, per_artist: int = 6, seed: int = 7,
             fast_share: float = 0.1) -> dict:
    """A library of artists × per_artist tracks; each artist plays one style. Returns facts the
    tests use: ids by style, a few named tracks."""
    rng = np.random.default_rng(seed)
    centres = style_centres(rng)
    styles = list(STYLES)
    by_style: dict[str, list[int]] = {s: [] for s in styles}
    n = 0
    for a in range(artists):
        style = styles[a % len(styles)]
        artist = f"Artist {a:02d} {style.title()}"
        for t in range(per_artist):
            preset = "fast" if rng.random() < fast_share else "balanced"
            album = f"Album {t % 2}"
            result = make_result(rng, style, centres, artist=artist, album=album, title=f"Song {a}-{t}",
                                 track_number=t + 1, preset=preset)
            by_style[style].append(add_track(db, library, result, fingerprint=f"fp-{n}"))
            n += 1
    facts: dict = {"by_style": by_style, "centres": centres}
    # named tracks for seed lookup, versions of one song, and a file that went missing
    special = [("Daft Punk", "Discovery", "One More Time", "house", {}),
               ("Daft Punk", "Alive 2007", "One More Time (Live)", "house", {}),
               ("Massive Attack", "Mezzanine", "Teardrop", "chill", {}),
               ("Björk", "Homogenic", "Jóga", "ambient", {}),
               ("Gone Band", "Lost", "Vanished Song", "rock", {"status": "missing"})]
    for i, (artist, album, title, style, extra) in enumerate(special):
        result = make_result(rng, style, centres, artist=artist, album=album, title=title, track_number=i + 1)
        facts[title] = add_track(db, library, result, fingerprint=f"fp-special-{i}", **extra)
    return facts


def populated_library(root: Path) -> Iterator[tuple[Database, dict, Path]]:
    """A module fixture's body: a real database under ``root`` with the synthetic library
    (``populate``); yields (db, facts, root) and closes the database afterwards."""
    (root / "library").mkdir()
    db = Database(root / "test.db", pool_min=1, pool_max=4)
    try:
        yield db, populate(db, root / "library"), root
    finally:
        db.close()

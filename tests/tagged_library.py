"""A small library of real, tagged audio files in several formats (for the retag, tag-writing and
export/import tests) and a helper that retags files with mutagen the way Picard or beets would."""

from __future__ import annotations

from pathlib import Path

import mutagen
import numpy as np

from tests import audio_fixtures as af

SR = 22050
FORMATS = ("flac", "ogg", "mp3")   # written by libsndfile; opus and m4a need ffmpeg (see make_m4a)


def make_song(path: Path, i: int, seconds: float = 4.0, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = af.song(seconds, sr, 1, bpm=80 + (i * 7) % 90, tonic=i % 12, mode="minor" if i % 2 else "major")
    audio = audio + af.noise(seconds, sr, 1, 0.01, seed=i)[: len(audio)]
    return af.write(path, audio.astype(np.float32), sr)


def set_tags(path: Path, **values: str) -> None:
    """Set easy tags (artist, title, album, genre, ...) with mutagen, creating the tag block."""
    audio = mutagen.File(path, easy=True)
    if audio.tags is None:
        audio.add_tags()
    for key, value in values.items():
        audio[key] = value
    audio.save()


def make_library(root: Path, n: int, formats: tuple[str, ...] = FORMATS, seconds: float = 4.0) -> list[Path]:
    """``n`` distinct songs, tagged "Artist k" / "Song i", cycling through ``formats``."""
    paths = []
    for i in range(n):
        path = make_song(root / f"Artist {i % 5}" / f"{i:02d} song.{formats[i % len(formats)]}", i, seconds)
        set_tags(path, artist=f"Artist {i % 5}", title=f"Song {i}", album=f"Album {i % 5}")
        paths.append(path)
    return paths

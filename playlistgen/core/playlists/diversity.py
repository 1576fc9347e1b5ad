"""Diversity: artist/album gaps, a per-artist cap and de-duplication of the same song.

The users' top complaints about automatic playlists are "the same artist over and over" and
"the album version, the best-of version and the live version back to back". A ``Picker`` holds
the playlist being built and answers "may this track come next?"; ranked strategies feed it
candidates in rank order (``fill``), sequence strategies (path, harmonic) ask ``check`` while
they walk.

Two tracks are the same song when their normalised artist + title agree (version suffixes such
as "(Remastered 2011)", "- Live at Wembley", "[Radio Edit]" are dropped; "Part 2", "Remix",
"Acoustic" are kept), or when both have an embedding that is nearly identical and their
durations are within a few seconds (untagged copies).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...config import PlaylistSettings

log = logging.getLogger(__name__)

# Words that mark a *version* of a song rather than a different song.
_VERSION = (r"remaster(?:ed)?|re-?master(?:ed)?|live|radio\s+(?:edit|mix|version)|single\s+(?:edit|version|mix)|"
            r"album\s+version|edit|mono|stereo|explicit|clean|bonus\s+track|deluxe|anniversary|original\s+mix|"
            r"extended\s+version|lp\s+version|digital(?:ly)?\s+remaster(?:ed)?")
_VERSION_RE = re.compile(rf"\b(?:{_VERSION})\b", re.IGNORECASE)
_BRACKETS_RE = re.compile(r"[(\[{]([^)\]}]*)[)\]}]")
_FEAT_RE = re.compile(r"\s*[(\[]?\b(?:feat\.?|featuring|ft\.)\s+[^)\]]*[)\]]?", re.IGNORECASE)
_DASH_SUFFIX_RE = re.compile(r"\s+[-–—]\s+(.*)$")
_NON_WORD_RE = re.compile(r"[^\w]+", re.UNICODE)
NEAR_DUP_COSINE = 0.985   # embeddings this close (cosine) ...
NEAR_DUP_SECONDS = 3.0    # ... and durations this close are the same recording


def _fold(text: str) -> str:
    """Lower case, no diacritics, punctuation → single spaces."""
    if not text.isascii():  # the per-character pass only where there can be accents
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NON_WORD_RE.sub(" ", text.casefold()).split())


def normalise_title(title: str | None) -> str:
    """'Song (Remastered 2011)' → 'song'; 'Song - Live at Wembley' → 'song'; 'Song Part 2' stays."""
    if not title:
        return ""
    text = _FEAT_RE.sub(" ", title)
    # drop bracketed parts only when they name a version: "(Part 2)" and "(Remix)" stay
    text = _BRACKETS_RE.sub(lambda m: " " if _VERSION_RE.search(m.group(1)) else m.group(0), text)
    dash = _DASH_SUFFIX_RE.search(text)
    if dash and _VERSION_RE.search(dash.group(1)):
        text = text[:dash.start()]
    return _fold(text)


def normalise_artist(artist: str | None) -> str:
    """'The Beatles feat. X' → 'beatles' (only featured artists and a leading 'the' are dropped)."""
    if not artist:
        return ""
    folded = _fold(_FEAT_RE.sub(" ", artist))
    return folded[4:] if folded.startswith("the ") else folded


def song_key(artist: str | None, title: str | None) -> str | None:
    """The identity of a song for de-duplication; None when the title is unknown."""
    title_key = normalise_title(title)
    if not title_key:
        return None
    return f"{normalise_artist(artist)}\x1f{title_key}"


@dataclass
class Diversity:
    """Per-request diversity rules (defaults come from the ``playlists`` config section)."""

    artist_gap: int = 3
    album_gap: int = 2
    max_per_artist: int = 0  # 0 = no cap
    dedupe: bool = True

    @classmethod
    def configured(cls, playlists: PlaylistSettings) -> Diversity:
        """The rules of the ``playlists`` config section: what a request gets unless it says otherwise."""
        return cls(playlists.artist_gap, playlists.album_gap, playlists.max_per_artist, playlists.dedupe)

    @classmethod
    def off(cls) -> Diversity:
        return cls(artist_gap=0, album_gap=0, max_per_artist=0, dedupe=False)


OK, GAP, HARD = 0, 1, 2   # check() verdicts: fits; breaks a gap (may fit later); never fits


@dataclass
class Picker:
    """Builds one playlist under the diversity rules and a length budget.

    ``artist``/``album``/``song`` are integer codes per catalog row (-1 = unknown, never equal to
    anything), ``duration`` seconds per row, ``embedding`` an (n, d) block used for near-duplicate
    detection (rows without one are all-zero)."""

    artist: np.ndarray
    album: np.ndarray
    song: np.ndarray
    duration: np.ndarray
    rules: Diversity
    size: int
    duration_s: float | None = None
    embedding: np.ndarray | None = None
    has_embedding: np.ndarray | None = None
    rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total_s: float = 0.0
    _artist_count: dict[int, int] = field(default_factory=dict)
    _artist_last: dict[int, int] = field(default_factory=dict)
    _album_last: dict[int, int] = field(default_factory=dict)
    _songs: set[int] = field(default_factory=set)
    _taken: set[int] = field(default_factory=set)
    _with_embedding: list[tuple[int, float]] = field(default_factory=list)  # (row, duration) of chosen rows

    @property
    def full(self) -> bool:
        if self.duration_s is not None and self.total_s >= self.duration_s:
            return True
        return len(self.rows) >= self.size

    def copy(self) -> Picker:
        """An independent copy, to try a sequence of choices without changing this picker."""
        return replace(self, rows=list(self.rows), notes=list(self.notes), _artist_count=dict(self._artist_count),
                       _artist_last=dict(self._artist_last), _album_last=dict(self._album_last),
                       _songs=set(self._songs), _taken=set(self._taken), _with_embedding=list(self._with_embedding))

    def taken(self, row: int) -> bool:
        return row in self._taken

    def check(self, row: int, artist_gap: int | None = None, album_gap: int | None = None) -> int:
        """OK, GAP (an artist/album gap is broken now but may not be later) or HARD (taken, the
        artist cap is reached, or it is another version of a song already in)."""
        if row in self._taken:
            return HARD
        rules = self.rules
        artist = int(self.artist[row])
        if artist >= 0 and rules.max_per_artist and self._artist_count.get(artist, 0) >= rules.max_per_artist:
            return HARD
        if rules.dedupe and self._is_duplicate(row):
            return HARD
        position = len(self.rows)
        a_gap = rules.artist_gap if artist_gap is None else artist_gap
        if artist >= 0 and a_gap and position - self._artist_last.get(artist, -10**9) <= a_gap:
            return GAP
        album = int(self.album[row])
        b_gap = rules.album_gap if album_gap is None else album_gap
        if album >= 0 and b_gap and position - self._album_last.get(album, -10**9) <= b_gap:
            return GAP
        return OK

    def _is_duplicate(self, row: int) -> bool:
        song = int(self.song[row])
        if song >= 0 and song in self._songs:
            return True
        if self.embedding is None or self.has_embedding is None or not self.has_embedding[row]:
            return False
        duration = float(self.duration[row])
        # a cheap duration check first: most candidates have no chosen track within a few seconds
        near = [r for r, d in self._with_embedding if abs(d - duration) <= NEAR_DUP_SECONDS]
        if not near:
            return False
        a = self.embedding[row]
        b = self.embedding[near]
        cos = (b @ a) / (np.linalg.norm(b, axis=1) * np.linalg.norm(a) + 1e-12)
        return bool((cos >= NEAR_DUP_COSINE).any())

    def add(self, row: int) -> None:
        position = len(self.rows)
        self.rows.append(row)
        self._taken.add(row)
        artist, album, song = int(self.artist[row]), int(self.album[row]), int(self.song[row])
        if artist >= 0:
            self._artist_count[artist] = self._artist_count.get(artist, 0) + 1
            self._artist_last[artist] = position
        if album >= 0:
            self._album_last[album] = position
        if song >= 0:
            self._songs.add(song)
        duration = float(self.duration[row])
        self.total_s += duration if np.isfinite(duration) else 0.0
        if self.has_embedding is not None and self.has_embedding[row]:
            self._with_embedding.append((row, duration))

    def precede(self, rows: Iterable[int]) -> None:
        """Tracks that come before the playlist (e.g. a player's queue), oldest first; call before
        anything is added. None of them is taken again, other versions of their songs count as
        duplicates and the artist/album gaps run on from their end; they do not count toward the
        size, the length budget or the per-artist cap."""
        rows = [int(r) for r in rows]
        for position, row in enumerate(rows, start=-len(rows)):   # the last one is at -1
            self._taken.add(row)
            artist, album, song = int(self.artist[row]), int(self.album[row]), int(self.song[row])
            if artist >= 0:
                self._artist_last[artist] = position
            if album >= 0:
                self._album_last[album] = position
            if song >= 0:
                self._songs.add(song)
            if self.has_embedding is not None and self.has_embedding[row]:
                self._with_embedding.append((row, float(self.duration[row])))

    def force(self, row: int) -> None:
        """Add a row whatever the rules say (seeds the user asked for)."""
        if row not in self._taken:
            self.add(row)

    def fill(self, order: Iterable[int], max_deferred: int = 500) -> None:
        """Take candidates in rank order; one that breaks a gap waits and is placed as soon as the
        gap allows (so it keeps roughly its rank). If the candidates run out with the playlist
        short, the gaps are relaxed step by step for the waiting ones, with a note."""
        deferred: list[int] = []
        for row in order:
            if self.full:
                break
            self._drain(deferred)
            if self.full:
                break
            verdict = self.check(int(row))
            if verdict == OK:
                self.add(int(row))
            elif verdict == GAP and len(deferred) < max_deferred:
                deferred.append(int(row))
        self._drain(deferred)
        if self.full or not deferred:
            return
        rules = self.rules
        for gap in range(max(rules.artist_gap, rules.album_gap) - 1, -1, -1):
            before = len(self.rows)
            self._drain(deferred, min(gap, rules.artist_gap), min(gap, rules.album_gap))
            if len(self.rows) > before:
                self.notes.append(f"not enough different artists/albums: gaps relaxed to {gap}")
            if self.full or not deferred:
                return

    def _drain(self, deferred: list[int], artist_gap: int | None = None, album_gap: int | None = None) -> None:
        progress = True
        while deferred and progress and not self.full:
            progress = False
            for i, row in enumerate(deferred):
                verdict = self.check(row, artist_gap, album_gap)
                if verdict == OK:
                    self.add(row)
                    del deferred[i]
                    progress = True
                    break
                if verdict == HARD:
                    del deferred[i]
                    progress = True
                    break


def gaps_respected(artists: list, gap: int) -> bool:
    """True when no two equal non-empty values are within ``gap`` positions (for tests and checks)."""
    last: dict = {}
    for i, value in enumerate(artists):
        if value in (None, "", -1):
            continue
        if value in last and i - last[value] <= gap:
            return False
        last[value] = i
    return True

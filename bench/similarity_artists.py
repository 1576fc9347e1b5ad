"""Artist keys for the artist-filtered precision of the representation bench.

The dev corpus is Debian game soundtracks: 47 of its 101 files carry an artist tag (54 have
none or "<Unknown>"). Without a fallback the artist filter would skip nothing for half the
queries, and an untagged composer's other pieces would count as easy hits. So:

1. the file's artist tag, folded (case, spaces); the two spellings of Crystan (his full name and
   his indiedb page) fold into one;
2. else the composer credited in the file name, the way these packages name files:
   ``NN - Artist - Title``; a trailing ``-ks`` / ``-jt`` composer code (extremetuxracer);
   ``hr-<composer>-title`` (hyperrogue); else the leading word — up to the first digit, ``-``,
   ``_`` or inner capital (``PsymongN1`` → psymong, ``MarineAlienRaid`` → marine,
   ``Crystan-…`` → crystan). A one-off name is its own artist, which filters nothing.
   A name that some file's tag (or credit, below) also names is that artist (``Crystan-…`` files
   join the tracks tagged Crystan); any other is scoped to the file's package folder, so
   ``track1`` in two packages (drascula, warzone2100 on the held-out corpus) are two artists, not
   one "track" (on the dev corpus no such name spans two packages: its keys are unchanged).

Between 1 and 2, a corpus may credit composers the files' tags do not name: an ``artists.tsv``
(path relative to the corpus, artist) beside its manifest, written by bench/heldout_corpus.sh from
the packages' own credit lists (``corpus_credits``). A credited name folds like a tag, so the same
composer tagged in one package and credited in another is one artist.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

UNKNOWN = {"", "<unknown>", "unknown", "various artists"}
ALIASES = {"crystan": "crystan"}          # any tag containing the key folds to the value


def fold_artist(tag: str | None) -> str | None:
    name = " ".join((tag or "").casefold().split())
    if name in UNKNOWN:
        return None
    for key, value in ALIASES.items():
        if key in name:
            return value
    return name


def artist_from_name(stem: str) -> str:
    credited = re.match(r"^\d+\s*-\s*(.+?)\s*-\s", stem)
    if credited:
        return fold_artist(credited.group(1)) or credited.group(1).casefold()
    code = re.search(r"-(ks|jt)$", stem)
    if code:
        return code.group(1)
    hyperrogue = re.match(r"^hr-([a-z]+)-", stem)
    if hyperrogue:
        return hyperrogue.group(1)
    word = re.match(r"^[A-Za-z][a-z]*", stem)
    return fold_artist(word.group(0) if word else stem) or stem.casefold()


def corpus_credits(corpus: Path) -> dict[str, str]:
    """{absolute track path: artist} from the corpus's ``artists.tsv`` (none: {})."""
    import csv

    listing = corpus / "artists.tsv"
    if not listing.exists():
        return {}
    with open(listing, newline="", encoding="utf-8") as f:
        return {str(corpus / r["path"]): r["artist"] for r in csv.DictReader(f, delimiter="\t")}


def artist_name(path: str, tag: str | None, credits: dict[str, str]) -> tuple[str, str]:
    """(artist name, which rule named it: "tag", "credits" or "file_name")."""
    folded = fold_artist(tag)
    if folded:
        return folded, "tag"
    credited = fold_artist(credits.get(path))
    if credited:
        return credited, "credits"
    return artist_from_name(Path(path).stem), "file_name"


def artist_names(paths: list[str], tags: list[str | None], credits: dict[str, str]) -> tuple[list[str], list[str]]:
    """(artist name per path, the rule that named it); file-name names scoped as the module says."""
    named = [artist_name(p, t, credits) for p, t in zip(paths, tags, strict=True)]
    known = {n for n, rule in named if rule != "file_name"}
    names = [n if rule != "file_name" or n in known else f"{Path(p).parent.name}/{n}"
             for p, (n, rule) in zip(paths, named, strict=True)]
    return names, [rule for _, rule in named]


def artist_keys(paths: list[str], credits: dict[str, str] | None = None) -> tuple[np.ndarray, dict]:
    """(integer artist key per path, {"tagged": n, "credited": n, "from_file_name": n, "artists": n})."""
    import mutagen

    tags = []
    for path in paths:
        info = mutagen.File(path, easy=True)   # easy: ID3 (MP3) answers "artist" too
        found = (info.tags or {}).get("artist") if info is not None else None
        tags.append(found[0] if found else None)
    names, rules = artist_names(paths, tags, credits or {})
    codes = {name: i for i, name in enumerate(sorted(set(names)))}
    return np.array([codes[x] for x in names]), {"tagged": rules.count("tag"), "credited": rules.count("credits"),
                                                 "from_file_name": rules.count("file_name"), "artists": len(codes)}

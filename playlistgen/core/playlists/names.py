"""Errors for unknown names with "did you mean" candidates, and tag name resolution."""

from __future__ import annotations

from collections.abc import Iterable

from ...errors import BadRequestError, NotFoundError
from ...suggest import suggestions

# Friendly mood words → the model labels they stand for (MSD/MTT label spellings).
TAG_ALIASES: dict[str, tuple[str, ...]] = {
    "chill": ("chill", "chillout", "Mellow"),
    "relaxed": ("chill", "chillout", "Mellow", "easy listening", "ambient"),
    "calm": ("chill", "chillout", "Mellow", "ambient", "soft", "quiet"),
    "happy": ("happy", "catchy", "upbeat"),
    "party": ("party", "dance", "House"),
    "sad": ("sad",),
    "electronic": ("electronic", "electronica", "electro", "techno"),
    "hip hop": ("Hip-Hop",),
    "hiphop": ("Hip-Hop",),
    "r&b": ("rnb",),
    "energetic": ("party", "dance", "metal", "hard rock", "punk", "fast"),
}


def _hint(word: str, candidates: list[str], options: list[str] | None) -> str:
    if candidates:
        return "did you mean " + " or ".join(f"'{c}'" for c in candidates) + "?"
    if options and len(options) <= 30:
        return "valid names: " + ", ".join(options)
    return ""


NO_TAGS_HINT = "analyse with preset balanced or accurate (preset fast has no tags)"


def no_tags_error(word: str) -> BadRequestError:
    """A tag asked of a library without ML tags (everything analysed with preset fast)."""
    return BadRequestError(f"no track in the library has ML tags, so tag '{word}' cannot match", hint=NO_TAGS_HINT)


class UnknownNameError(BadRequestError):
    """A strategy, parameter, filter or tag name that does not exist (400)."""

    code = "unknown_name"

    def __init__(self, kind: str, word: str, options: Iterable[str], *, hint: str | None = None) -> None:
        options = list(options)
        self.candidates = suggestions(word, options)
        super().__init__(f"unknown {kind} '{word}'", hint=hint or _hint(word, self.candidates, options))

    def to_dict(self) -> dict:
        return {**super().to_dict(), "did_you_mean": self.candidates}


class UnknownTrackError(NotFoundError):
    """A track id or "Artist - Title" seed that matches no live track (404)."""

    code = "track_not_found"

    def __init__(self, what: str, candidates: list[dict] | None = None) -> None:
        self.candidates = candidates or []
        labels = [f"{c.get('artist') or '?'} - {c.get('title') or '?'} (id {c['id']})" for c in self.candidates]
        hint = ("did you mean " + " or ".join(f"'{label}'" for label in labels) + "?") if labels else \
            "search with GET /api/v1/tracks?q=..."
        super().__init__(f"no track matches {what}", hint=hint)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "did_you_mean": self.candidates}


def unknown_tag(word: str, labels: list[str]) -> UnknownNameError:
    """An unknown tag: "did you mean" when close, else where to see the library's tags."""
    error = UnknownNameError("tag", word, labels)
    if not error.candidates and len(labels) > 30:
        error.hint = "GET /api/v1/library/overview lists the library's top tags"
    return error


def resolve_tags(words: Iterable[str], labels: list[str]) -> list[list[int]]:
    """Each requested tag → the catalog tag columns it stands for (itself plus alias members).
    Raises UnknownNameError (with suggestions) for a tag the library does not have."""
    by_fold = {label.casefold(): i for i, label in enumerate(labels)}
    groups: list[list[int]] = []
    for word in words:
        folded = str(word).casefold().strip()
        columns = set()
        if folded in by_fold:
            columns.add(by_fold[folded])
        for member in TAG_ALIASES.get(folded, ()):
            if member.casefold() in by_fold:
                columns.add(by_fold[member.casefold()])
        if not columns:
            if not labels:
                raise no_tags_error(str(word))
            raise unknown_tag(str(word), [*labels, *TAG_ALIASES])
        groups.append(sorted(columns))
    return groups

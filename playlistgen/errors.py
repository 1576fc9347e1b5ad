"""One exception hierarchy. Each error carries data (what, where, what to do) so the CLI can
print one clear line and the API can build its JSON error body from the same fields."""

from __future__ import annotations


def exception_text(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (whitespace collapsed, at most ``limit`` characters)."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


class PlaylistgenError(Exception):
    """Base of every error the project raises on purpose.

    ``code`` is a stable machine-readable name, ``hint`` tells the user what to do,
    ``status`` is the HTTP status the API answers with.
    """

    code = "error"
    status = 500

    def __init__(self, message: str, *, hint: str = "", path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path

    def one_line(self) -> str:
        text = self.message
        if self.hint:
            text += f" — {self.hint}"
        return text

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.path is not None:
            body["path"] = self.path
        return body


class ConfigError(PlaylistgenError):
    code = "config_error"
    status = 400


class DatabaseError(PlaylistgenError):
    code = "database_error"
    status = 503


class DatabaseDamagedError(DatabaseError):
    code = "database_damaged"


class MigrationError(DatabaseError):
    code = "migration_error"


class NotFoundError(PlaylistgenError):
    code = "not_found"
    status = 404


class BadRequestError(PlaylistgenError):
    code = "bad_request"
    status = 400


class AnalysisError(PlaylistgenError):
    """A file could not be analysed; ``reason`` is the one-line cause stored in the DB."""

    code = "analysis_failed"
    status = 422


class ModelMissingError(AnalysisError):
    code = "model_missing"
    status = 503


class MediaServerError(PlaylistgenError):
    """The Subsonic server refused or could not be reached. ``subsonic_code`` is the Subsonic error
    code (40 wrong credentials, 41 token auth not supported, 70 not found...) or None for
    HTTP/connection errors. The message names the server URL, never the password."""

    code = "mediaserver_error"
    status = 502

    def __init__(self, message: str, hint: str = "", code: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.subsonic_code = code

    def to_dict(self) -> dict:
        body = super().to_dict()
        if self.subsonic_code is not None:
            body["subsonic_code"] = self.subsonic_code
        return body

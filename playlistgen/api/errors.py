"""The one JSON error handler: every error becomes {"error": {"code", "message", "hint"}}."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import PlaylistgenError

log = logging.getLogger(__name__)


def error_response(code: str, message: str, hint: str, status: int, **extra: object):  # type: ignore[no-untyped-def]
    body = {"error": {"code": code, "message": message, "hint": hint, **extra}}
    return jsonify(body), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(PlaylistgenError)
    def _ours(exc: PlaylistgenError):  # type: ignore[no-untyped-def]
        body = exc.to_dict()
        return jsonify({"error": body}), exc.status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        hints = {404: "see /api/v1/openapi.json for the routes", 405: "check the HTTP method",
                 413: "the upload is larger than api.max_upload_mb"}
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(code, exc.description or exc.name, hints.get(exc.code or 0, ""),
                              exc.code or 500)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error")
        return error_response("internal_error", f"{type(exc).__name__}: {exc}",
                              "this is a bug; the log has the traceback", 500)

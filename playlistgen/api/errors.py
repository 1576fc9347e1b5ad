"""The one JSON error handler: every error becomes {"error": {"code", "message", "hint"}}.

Expected conditions are not 500s: a full disk is 507, a folder the daemon may not write is 403
(neither message names a path), a JSON body nested too deeply to parse is 400 (``json_provider``),
and 405 carries ``Allow``."""

from __future__ import annotations

import errno
import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import PlaylistgenError

log = logging.getLogger(__name__)


def error_response(code: str, message: str, hint: str, status: int, **extra: object):  # type: ignore[no-untyped-def]
    body = {"error": {"code": code, "message": message, "hint": hint, **extra}}
    return jsonify(body), status


# errno → (status, code, message, hint) for OSErrors that reach a request: said without the path
OS_ERRORS = {
    errno.ENOSPC: (507, "insufficient_storage", "the disk is full",
                   "free space on the library's disk (or lower api.max_upload_mb) and try again"),
    errno.EDQUOT: (507, "insufficient_storage", "the disk quota is exhausted", "free space and try again"),
    errno.EACCES: (403, "not_writable", "the daemon has no permission to write there",
                   "let the user running playlistgen write to the first folder of library.paths"),
    errno.EPERM: (403, "not_writable", "the daemon has no permission to write there",
                  "let the user running playlistgen write to the first folder of library.paths"),
    errno.EROFS: (403, "not_writable", "the library is on a read-only filesystem",
                  "mount it read-write, or make the first folder of library.paths a writable one"),
}


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
        response, status = error_response(code, exc.description or exc.name, hints.get(exc.code or 0, ""),
                                          exc.code or 500)
        for name, value in exc.get_headers():  # e.g. Allow on a 405
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(OSError)
    def _os(exc: OSError):  # type: ignore[no-untyped-def]
        known = OS_ERRORS.get(exc.errno or 0)
        if known is None:
            return _unexpected(exc)
        status, code, message, hint = known
        log.warning("request failed: %s (%s)", message, exc)  # the log keeps the path, the answer does not
        return error_response(code, message, hint, status)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error")
        detail = (exc.strerror or "I/O error") if isinstance(exc, OSError) else exc  # no file names out
        return error_response("internal_error", f"{type(exc).__name__}: {detail}",
                              "this is a bug; the log has the traceback", 500)

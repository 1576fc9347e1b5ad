"""API key: with ``api.key`` set, every route but /health and the dashboard's (data-free) page and
assets needs the header X-API-Key (or ``Authorization: Bearer <key>``, what the AudioMuse-AI
Navidrome plugin sends). ``/rest/*`` (the Subsonic proxy) is not keyed: Subsonic apps cannot send
the header, and every answer there is authorised by the media server's own credentials."""

from __future__ import annotations

import hmac

from flask import Flask, request

from .errors import error_response

OPEN_PATHS = ("/health", "/dashboard")
# The dashboard's page and assets hold no data (its JS asks for the key and sends it with every call).
OPEN_PREFIXES = ("/dashboard/static/", "/rest/")


def require_api_key(app: Flask, key: str) -> None:
    if not key:
        return
    expected = key.encode()

    @app.before_request
    def _check_key():  # type: ignore[no-untyped-def]
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return None
        supplied = request.headers.get("X-API-Key", "").encode()
        bearer = request.headers.get("Authorization", "")
        if not supplied and bearer[:7].lower() == "bearer ":
            supplied = bearer[7:].strip().encode()
        if hmac.compare_digest(supplied, expected):  # constant time: no timing oracle on the key
            return None
        message = "missing API key" if not supplied else "wrong API key"
        return error_response("unauthorized", message, "send the key configured as api.key in the X-API-Key header",
                              401)

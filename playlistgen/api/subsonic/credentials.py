"""The server's verdict on a ``/rest`` client's credentials, for the answers playlistgen gives itself.

Credentials are never checked here: the client's own auth parameters (``u`` with ``p`` or
``t``+``s``, or ``apiKey``, with its ``v`` and ``c``) go to the server's ``ping`` — always asked
in JSON, whatever format the client wants (a JSONP or XML answer is rendered by us from the
verdict), and read up to ``MAX_BUFFERED``. A refusal carries the server's own error code and
message (error 40 as the server words it) and is never cached, so a fixed password works at once.

The trade-off of the cache: a success is remembered for ``ttl_s`` (:data:`AUTH_TTL_S`, 30 s) per
SHA-256 of ``u`` + ``p`` or of ``apiKey``, so a client sending a password is checked at most twice
a minute, and a password changed or an API key revoked on the server still opens playlistgen's own
answers for up to that long. A token + salt (``t``/``s``) is never cached: a replayed pair is always
asked about, so a server that refuses a reused salt keeps that protection.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cachetools import TTLCache

if TYPE_CHECKING:
    from .upstream import Upstream

log = logging.getLogger(__name__)

AUTH_PARAMS = ("u", "p", "t", "s", "apiKey")
CHECK_PARAMS = (*AUTH_PARAMS, "v", "c")
AUTH_TTL_S = 30.0
WRONG_CREDENTIALS = 40


@dataclass(frozen=True)
class Verdict:
    ok: bool
    code: int | None = None   # the server's Subsonic error code of a refusal
    message: str = ""         # and its message
    status: int = 200         # the HTTP status the server answered the refusal with


def auth_params(params: Mapping[str, str]) -> dict[str, str]:
    """The client's auth parameters (with ``v`` and ``c``) to ask the server as that client."""
    return {k: str(params.get(k)) for k in CHECK_PARAMS if params.get(k)}


def cache_key(params: Mapping[str, str]) -> str | None:
    """The key of a cacheable success: password or API key; None for a token + salt or nothing."""
    if params.get("t") or params.get("s"):
        return None
    values = [params.get(k) or "" for k in ("u", "p", "apiKey")]
    if not (values[1] or values[2]):
        return None
    return hashlib.sha256("\x00".join(values).encode("utf-8", "replace")).hexdigest()


class Credentials:
    def __init__(self, upstream: Upstream, ttl_s: float = AUTH_TTL_S) -> None:
        self.upstream = upstream
        self.ttl_s = ttl_s
        self._verdicts: TTLCache = TTLCache(maxsize=4096, ttl=ttl_s)
        self._lock = threading.Lock()

    def check(self, params: Mapping[str, str]) -> Verdict:
        """The server's verdict (raises ``requests.RequestException`` / ``UpstreamError`` when it
        cannot be asked)."""
        key = cache_key(params)
        if key is not None:
            with self._lock:
                if key in self._verdicts:
                    return Verdict(True)
        status, body = self.upstream.call("ping", auth_params(params))
        if status == 200 and body.get("status") == "ok":
            self.upstream.server = {k: body.get(k) for k in ("version", "type", "serverVersion", "openSubsonic")}
            if key is not None:
                with self._lock:
                    self._verdicts[key] = True
            return Verdict(True)
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else WRONG_CREDENTIALS
        message = str(error.get("message") or "the media server refused the credentials")
        log.info("media server refused a /rest client's credentials (error %s)", code)
        return Verdict(False, code, message, status if status >= 400 else 200)

    def forget(self) -> None:
        with self._lock:
            self._verdicts.clear()

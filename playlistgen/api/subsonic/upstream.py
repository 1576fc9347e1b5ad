"""The media server behind ``/rest``: the integration's pooled connection, forwarding requests unchanged
(streamed, Range and all), and the cached verdict on a client's credentials.

Credentials are never checked here: the client's own auth parameters (``u`` with ``p`` or
``t``+``s``, or ``apiKey``) go to the server's ``ping`` in the client's own format, and whatever
the server answers is the verdict — a refusal is relayed byte for byte, so the client sees error
40 exactly as the server gives it. A success is remembered for ``auth_ttl_s`` per hash of the
credentials (a client that reuses its salt, or sends a password or API key, is checked once per
few minutes); refusals are not cached, so a fixed password works at once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from cachetools import TTLCache

from ...core.integrations.mediaserver.transport import SubsonicTransport
from .format import parse_status

log = logging.getLogger(__name__)

AUTH_PARAMS = ("u", "p", "t", "s", "apiKey")
CHECK_PARAMS = (*AUTH_PARAMS, "v", "c", "f", "callback")
# Not forwarded either way: hop-by-hop headers (RFC 9110 §7.6.1) and what requests sets itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-connection"})
REQUEST_DROP = HOP_BY_HOP | {"host", "content-length", "x-api-key", "cookie"}
CHUNK = 256 * 1024


class Upstream:
    """The proxy's side of the media server, over the integration's one connection
    (:class:`~playlistgen.core.integrations.mediaserver.transport.SubsonicTransport`)."""

    def __init__(self, transport: SubsonicTransport, *, connect_timeout: float = 10.0, read_timeout: float = 120.0,
                 auth_ttl_s: float = 300.0) -> None:
        self.transport = transport
        self.base = transport.base
        self.session = transport.session
        self.timeout = (connect_timeout, read_timeout)
        self._verdicts: TTLCache = TTLCache(maxsize=4096, ttl=auth_ttl_s)
        self._lock = threading.Lock()
        self.server: dict = {}  # version/type/serverVersion/openSubsonic of the last good answer

    def __repr__(self) -> str:
        return f"Upstream({self.base!r})"

    # --- forwarding --------------------------------------------------------------------------
    def send(self, http_method: str, path: str, query: bytes | str, body: bytes | None, headers: dict[str, str],
             *, stream: bool = True) -> Any:
        """Forward one request to ``<server>/rest/<path>``; a ``requests.Response`` (raises
        ``requests.RequestException`` when the server cannot be reached)."""
        url = f"{self.base}/rest/{path}"
        if query:
            url += "?" + (query.decode("latin-1") if isinstance(query, bytes) else query)
        out = {k: v for k, v in headers.items() if k.lower() not in REQUEST_DROP}
        out.setdefault("Accept-Encoding", "identity")  # a client that did not ask for gzip gets none
        return self.session.request(http_method, url, data=body or None, headers=out, stream=stream,
                                    timeout=self.timeout, allow_redirects=False)

    @staticmethod
    def response_headers(upstream: Any) -> list[tuple[str, str]]:
        return [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in HOP_BY_HOP]

    @staticmethod
    def body_chunks(upstream: Any):  # type: ignore[no-untyped-def]
        """The response body exactly as the server sent it (no decompression)."""
        try:
            yield from upstream.raw.stream(CHUNK, decode_content=False)
        finally:
            upstream.close()

    # --- credentials -------------------------------------------------------------------------
    @staticmethod
    def credential_key(params: Any) -> str | None:
        values = [params.get(k) or "" for k in AUTH_PARAMS]
        if not any(values):
            return None
        return hashlib.sha256("\x00".join(values).encode("utf-8", "replace")).hexdigest()

    def check(self, params: Any) -> tuple[bool, Any]:
        """(True, None) when the server accepts the client's credentials; (False, response) with
        the server's own refusal (a ``requests.Response``, body read) otherwise."""
        key = self.credential_key(params)
        if key is not None:
            with self._lock:
                if key in self._verdicts:
                    return True, None
        query = {k: params.get(k) for k in CHECK_PARAMS if params.get(k) is not None}
        answer = self.session.get(f"{self.base}/rest/ping.view", params=query, timeout=self.timeout,
                                  allow_redirects=False)
        status = parse_status(answer.content, answer.headers.get("Content-Type", ""))
        if answer.status_code == 200 and status.get("status") == "ok":
            self.server = {k: status.get(k) for k in ("version", "type", "serverVersion", "openSubsonic")}
            if key is not None:
                with self._lock:
                    self._verdicts[key] = True
            return True, None
        log.info("media server refused the credentials of user %r (error %s)", params.get("u"),
                 (status.get("error") or {}).get("code"))
        return False, answer

    def forget(self) -> None:
        with self._lock:
            self._verdicts.clear()

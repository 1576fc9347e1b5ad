"""The media server behind ``/rest``: the integration's pooled connection, forwarding requests
unchanged (streamed both ways, Range and all), bounded buffered calls, the stream slots and the
credential check (:mod:`.credentials`).

* **Stream slots.** A proxied request holds a waitress thread for as long as the server sends
  and the client reads (a paused phone: for ever, until the send timeout of ``api.server``).
  ``/rest`` requests that talk to the server therefore run in at most :data:`MAX_STREAMS` slots,
  and ``api.server`` gives waitress that many threads on top of the API's own, so streams can
  never take the threads ``/health`` and the API need; request ``MAX_STREAMS + 1`` is answered
  503 with ``Retry-After`` at once instead of waiting.
* **Bodies.** A client's request body streams through to the server (never read here whole);
  ``/rest`` bodies are limited to :data:`MAX_REQUEST_BODY` (Subsonic forms are a few KB), refused
  by waitress from the headers alone (``api.server``). An answer we read ourselves (``ping``,
  ``scrobble``, ``getOpenSubsonicExtensions``, ``getSong``) is read up to :data:`MAX_BUFFERED`;
  a longer one is refused and its connection closed, never put back in the pool half read (the
  next request on it would read the rest as its status line).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from ...core.integrations.mediaserver.transport import SubsonicTransport
from .credentials import AUTH_TTL_S, Credentials, Verdict
from .format import parse_status
from .headers import request_headers, response_headers

log = logging.getLogger(__name__)

MAX_STREAMS = 32                  # /rest requests talking to the server at once (waitress threads of their own)
MAX_REQUEST_BODY = 1024 * 1024    # a Subsonic form post is a few KB (createPlaylist of 5000 songs: ~150 KB)
MAX_BUFFERED = 4 * 1024 * 1024    # an answer we read whole (a ping is < 1 KB, a song < 4 KB)
CHUNK = 256 * 1024
BUSY_RETRY_S = 5


class UpstreamError(Exception):
    """The server cannot answer usefully; ``message`` is safe to show to any client."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Busy(UpstreamError):
    def __init__(self, slots: int) -> None:
        super().__init__(f"playlistgen: {slots} requests to the media server are running; try again in "
                         f"{BUSY_RETRY_S} s", 503)


def read_bounded(answer: Any, limit: int = MAX_BUFFERED) -> bytes:
    """The (decoded) body of a ``stream=True`` answer, at most ``limit`` bytes; UpstreamError past
    it, with the connection closed rather than returned to the pool with unread bytes."""
    declared = answer.headers.get("Content-Length", "")
    try:
        if declared.isdigit() and int(declared) > limit:
            raise UpstreamError("playlistgen: the media server's answer is too large")
        data = bytearray()
        for chunk in answer.iter_content(CHUNK):
            data += chunk
            if len(data) > limit:
                raise UpstreamError("playlistgen: the media server's answer is too large")
    except BaseException:
        answer.close()   # not fully read: requests closes the socket instead of pooling it
        raise
    return bytes(data)


class _Body:
    """A request body streamed to the server: ``length`` bytes read from ``stream`` as requests
    sends them (requests sets Content-Length from ``len``)."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self.stream = stream
        self.remaining = length
        self.length = length

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.stream.read(size)
        self.remaining -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk


class Slot:
    """One of the stream slots; :meth:`release` is idempotent (called when the response closes)."""

    def __init__(self, owner: Upstream) -> None:
        self._owner = owner
        self._held = True

    def release(self) -> None:
        with self._owner._slots_lock:
            if self._held:
                self._held = False
                self._owner._open -= 1


class Upstream:
    """The proxy's side of the media server, over the integration's one connection
    (:class:`~playlistgen.core.integrations.mediaserver.transport.SubsonicTransport`)."""

    def __init__(self, transport: SubsonicTransport, *, connect_timeout: float = 10.0, read_timeout: float = 120.0,
                 auth_ttl_s: float = AUTH_TTL_S, max_streams: int | None = None) -> None:
        self.transport = transport
        self.base = transport.base
        self.session = transport.session
        self.timeout = (connect_timeout, read_timeout)
        self.max_streams = MAX_STREAMS if max_streams is None else max_streams
        self._open = 0
        self._slots_lock = threading.Lock()
        self.credentials = Credentials(self, auth_ttl_s)
        self.server: dict = {}  # version/type/serverVersion/openSubsonic of the last good answer
        self.extensions: tuple[float, list[dict]] | None = None   # (monotonic time, its OpenSubsonic extensions)

    def __repr__(self) -> str:
        return f"Upstream({self.base!r})"

    @property
    def auth_ttl_s(self) -> float:
        return self.credentials.ttl_s

    # --- slots -------------------------------------------------------------------------------
    def take_slot(self) -> Slot:
        """A stream slot, or :class:`Busy` at once when all are taken."""
        with self._slots_lock:
            if self._open >= self.max_streams:
                raise Busy(self.max_streams)
            self._open += 1
        return Slot(self)

    def streams_open(self) -> int:
        with self._slots_lock:
            return self._open

    # --- forwarding --------------------------------------------------------------------------
    def send(self, http_method: str, path: str, query: bytes | str, headers: Any, *,
             body: BinaryIO | None = None, length: int = 0) -> Any:
        """Forward one request to ``<server>/rest/<path>`` (its body, ``length`` bytes, streamed
        from ``body``); a ``requests.Response`` to stream (raises ``requests.RequestException``
        when the server cannot be reached)."""
        url = self.transport.endpoint(path)
        if query:
            url += "?" + (query.decode("latin-1") if isinstance(query, bytes) else query)
        data = _Body(body, length) if body is not None and length > 0 else None
        return self.session.request(http_method, url, data=data, headers=request_headers(headers), stream=True,
                                    timeout=self.timeout, allow_redirects=False)

    def call(self, method: str, params: Mapping[str, str]) -> tuple[int, dict]:
        """One API call answered in JSON and read whole (up to MAX_BUFFERED): (HTTP status,
        subsonic-response body). Raises ``requests.RequestException`` or :class:`UpstreamError`
        (too large, or not a Subsonic answer)."""
        answer = self.session.get(self.transport.endpoint(f"{method}.view"), params={**params, "f": "json"},
                                  timeout=self.timeout, allow_redirects=False, stream=True)
        body = parse_status(read_bounded(answer), answer.headers.get("Content-Type", ""))
        if not body.get("status"):
            raise UpstreamError(f"playlistgen: the media server gave no Subsonic answer (HTTP {answer.status_code})")
        return answer.status_code, body

    @staticmethod
    def response_headers(answer: Any) -> list[tuple[str, str]]:
        return response_headers(answer.raw.headers.items())

    @staticmethod
    def body_chunks(answer: Any) -> Iterator[bytes]:
        """The response body exactly as the server sent it (no decompression); the caller closes
        ``answer`` when the response is closed."""
        yield from answer.raw.stream(CHUNK, decode_content=False)

    # --- credentials -------------------------------------------------------------------------
    def check(self, params: Mapping[str, str]) -> Verdict:
        """The server's verdict on the client's credentials (see :mod:`.credentials`)."""
        return self.credentials.check(params)

    def forget(self) -> None:
        self.credentials.forget()

"""Which headers cross the ``/rest`` proxy, each way.

* Hop-by-hop headers (RFC 9110 §7.6.1): the fixed list and every header the ``Connection``
  header names belong to one connection and are never forwarded, in either direction.
* Request: only the end-to-end headers a Subsonic request needs (content negotiation, caching,
  ``Range``, ``Content-Type`` of a form, ``User-Agent``) go to the server. Everything else stays
  here, above all what says who the client is — ``Authorization`` (which may be our own
  ``api.key`` as a Bearer token), ``X-API-Key``, ``Cookie``, ``Remote-User``, ``X-Real-IP``,
  ``X-Forwarded-*``, ``Forwarded``: a media server that trusts reverse-proxy headers from our
  address (Navidrome's ``ReverseProxyWhitelist``, any header name) must not take a client's word
  for its identity. An allow-list, because such header names are configurable.
* Response: our security headers and CORS policy are the ones that count (``api.security`` sets
  them; :func:`cors` for ``/rest``), so the server's are dropped, and so is ``Set-Cookie`` (the
  ``Cookie`` header never goes back to the server, so a cookie could only go stale here).
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-connection"})
REQUEST_ALLOWED = frozenset({"accept", "accept-charset", "accept-encoding", "accept-language", "cache-control",
                             "content-type", "if-match", "if-modified-since", "if-none-match", "if-range",
                             "if-unmodified-since", "pragma", "range", "user-agent"})
RESPONSE_OURS = frozenset({"x-frame-options", "content-security-policy", "content-security-policy-report-only",
                           "x-content-type-options", "referrer-policy", "strict-transport-security",
                           "permissions-policy", "cross-origin-opener-policy", "cross-origin-resource-policy",
                           "cross-origin-embedder-policy", "set-cookie"})
CORS_PREFIX = "access-control-"


def connection_named(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """The hop-by-hop set plus every header named in ``Connection`` (lower case)."""
    named = {token.strip().lower() for name, value in headers if name.lower() == "connection"
             for token in value.split(",")}
    return HOP_BY_HOP | {n for n in named if n}


def request_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The client's headers the server may see."""
    items = list(headers)
    hop = connection_named(items)
    out = {name: value for name, value in items if name.lower() in REQUEST_ALLOWED and name.lower() not in hop}
    out.setdefault("Accept-Encoding", "identity")   # a client that did not ask for gzip gets none
    return out


def response_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The server's headers the client may see (ours replace its security and CORS headers)."""
    items = list(headers)
    hop = connection_named(items)
    return [(name, value) for name, value in items
            if name.lower() not in hop and name.lower() not in RESPONSE_OURS
            and not name.lower().startswith(CORS_PREFIX)]


def cors(headers: dict | object) -> None:
    """``/rest`` answers are readable from any origin: every request carries its own Subsonic
    credentials (nothing ambient — no cookie, no api.key — authorises it), and Subsonic web
    players are served from other origins. Never with credentials."""
    headers["Access-Control-Allow-Origin"] = "*"   # type: ignore[index]

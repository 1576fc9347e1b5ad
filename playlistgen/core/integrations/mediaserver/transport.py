"""The one HTTP connection to the media server: its base URL (checked once) and one pooled
``requests.Session`` shared by everything that talks to it — the linked user's API calls
(:class:`~.client.SubsonicClient`) and the ``/rest`` proxy's forwarding (``api.subsonic.upstream``).

The session never reads the environment's proxy settings (the media server is the user's own,
usually on the same network) and keeps no cookies: a ``Set-Cookie`` from the server must never
travel with another client's request through the proxy.
"""

from __future__ import annotations

import http.cookiejar
from typing import Any

from ....errors import MediaServerError

POOL_SIZE = 40   # connections kept to the server: the /rest proxy's 32 stream slots + the link


def server_base(url: str) -> str:
    """The server's base URL without ``/rest``; MediaServerError for what cannot be one."""
    if not url:
        raise MediaServerError("no media server configured", "set mediaserver.url, e.g. http://127.0.0.1:4533")
    url = url.rstrip("/")
    if url.endswith("/rest"):
        url = url[: -len("/rest")]
    if not url.startswith(("http://", "https://")):
        raise MediaServerError(f"media server URL '{url}' must start with http:// or https://",
                               "fix mediaserver.url")
    if "@" in url.split("//", 1)[1].split("/", 1)[0]:
        raise MediaServerError("mediaserver.url must not carry a user or password",
                               "put them in mediaserver.user and mediaserver.password")
    return url


def new_session(pool: int = POOL_SIZE) -> Any:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = False   # never route the user's media server through an environment proxy
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))   # keep none
    return session


class SubsonicTransport:
    """``base`` (``http(s)://host[:port][/prefix]``) and ``session``; ``endpoint(method)`` is
    ``<base>/rest/<method>``. Callers pass their own timeouts."""

    def __init__(self, url: str, *, session: Any = None, pool: int = POOL_SIZE) -> None:
        self.base = server_base(url)
        self.session = session if session is not None else new_session(pool)

    def __repr__(self) -> str:
        return f"SubsonicTransport({self.base!r})"

    def endpoint(self, method: str) -> str:
        return f"{self.base}/rest/{method}"

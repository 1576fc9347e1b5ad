"""Browser-facing protection of a keyless loopback API: Host and Origin checks, security headers.

* **Host** (DNS rebinding): a page on ``evil.example`` whose name is re-pointed at 127.0.0.1 reaches
  us with ``Host: evil.example``. Every request must name a host we answer to: the bound address,
  ``localhost``, ``127.0.0.1``, ``::1`` and ``api.allowed_hosts`` (an entry ``.example.com`` also
  matches its subdomains, ``*`` turns the check off). Bound to every interface (``0.0.0.0``/``::``)
  any IP literal and this machine's host name pass as well: an IP literal cannot be rebound.
  A request without a Host header (HTTP/1.0, not a browser) passes.
* **Origin** (cross-site requests): a POST/PUT/PATCH/DELETE whose ``Origin`` (or, without it,
  ``Referer``) is not this server itself (same host and port as the ``Host`` header) or a host in
  ``api.allowed_hosts`` is refused; so is ``Origin: null`` and, with neither header,
  ``Sec-Fetch-Site: cross-site``. Clients that are not browsers (curl, scripts, Subsonic apps) send
  none of these and pass.
* **Headers**: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a
  ``Content-Security-Policy`` (the dashboard's allows only its own scripts and this server;
  everything else gets ``default-src 'none'``), ``Referrer-Policy: same-origin``.

Refusals are JSON 403 errors whose hint names ``api.allowed_hosts``.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from flask import Flask, Response, request

from .errors import error_response

log = logging.getLogger(__name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("", "0.0.0.0", "::")
DASHBOARD_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                 "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                 "frame-ancestors 'none'")
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"
HINT = "add the name to api.allowed_hosts (e.g. the public name behind a reverse proxy)"


def hostname_of(netloc: str) -> str | None:
    """'Example.com:8500' → 'example.com', '[::1]:80' → '::1'; None when it is not a host[:port]."""
    try:
        parts = urlsplit("//" + netloc.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    name = parts.hostname
    if not name or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _matches(name: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


class HostPolicy:
    """Which Host names and which Origins this server accepts (see the module docstring)."""

    def __init__(self, bind_host: str, allowed_hosts: Iterable[str], *, machine_name: str | None = None) -> None:
        bind = bind_host.strip().strip("[]").lower()
        self.extra = tuple(h.strip().strip("[]").lower().rstrip(".") for h in allowed_hosts if h.strip())
        self.wildcard = bind in WILDCARD_BINDS
        names = {*LOOPBACK_NAMES, *self.extra}
        if bind and not self.wildcard:
            names.add(bind)
        if self.wildcard:
            machine = (machine_name if machine_name is not None else socket.gethostname()).lower()
            if machine:
                names.update({machine, machine + ".local"})
        self.names = tuple(sorted(names))

    def host_allowed(self, name: str) -> bool:
        return _matches(name, self.names) or (self.wildcard and _is_ip(name))

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        """``origin`` is an Origin value or a Referer URL."""
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if _same_netloc(parts.scheme, parts.netloc, host_header):
            return True
        name = hostname_of(parts.netloc)
        return name is not None and _matches(name, self.extra)

    def describe(self) -> str:
        text = ", ".join(self.names)
        return text + (" and any IP address" if self.wildcard else "")


def _same_netloc(scheme: str, netloc: str, host_header: str) -> bool:
    default = "443" if scheme == "https" else "80"

    def norm(value: str) -> str:
        value = value.strip().lower()
        name, port = (value.rsplit(":", 1) if value.rfind(":") > value.rfind("]") else (value, default))
        return f"{name}:{port}"

    return bool(host_header) and norm(netloc) == norm(host_header)


def install_security(app: Flask, bind_host: str, allowed_hosts: Iterable[str]) -> HostPolicy:
    """Register the Host/Origin checks (first, before the API key) and the security headers."""
    policy = HostPolicy(bind_host, allowed_hosts)

    def _check():  # type: ignore[no-untyped-def]
        host_header = request.environ.get("HTTP_HOST", "")
        if host_header:
            name = hostname_of(host_header)
            if name is None or not policy.host_allowed(name.lower()):
                log.info("refused Host %r from %s", host_header[:100], request.remote_addr)
                return error_response("forbidden_host", f"this server does not answer to the host name "
                                      f"'{host_header[:100]}'", f"{HINT}; allowed now: {policy.describe()}", 403)
        if request.method not in UNSAFE_METHODS:
            return None
        if request.path.startswith("/rest/"):
            # Subsonic requests carry their own credentials (checked by the media server), and
            # Subsonic web players are served from other origins: only the Host check applies.
            return None
        origin = request.headers.get("Origin")
        source = origin if origin is not None else request.headers.get("Referer")
        if source is None:
            if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
                return _cross_site("a cross-site page")
            return None
        if source.strip().lower() == "null" or not policy.origin_allowed(source.strip(), host_header):
            shown = source if origin is not None else urlsplit(source)._replace(path="", query="",
                                                                                fragment="").geturl()
            return _cross_site(f"origin '{shown[:100]}'")
        return None

    def _cross_site(what: str):  # type: ignore[no-untyped-def]
        log.info("refused cross-site %s %s from %s (%s)", request.method, request.path, what, request.remote_addr)
        return error_response("cross_site_request", f"{request.method} from {what} refused: state-changing "
                              "requests must come from this server's own pages or from a client that is not "
                              "a browser", f"to allow a site in front of this server, {HINT}", 403)

    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        csp = DASHBOARD_CSP if response.mimetype == "text/html" else DEFAULT_CSP
        headers.setdefault("Content-Security-Policy", csp)
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, _check)
    app.after_request(_headers)
    return policy

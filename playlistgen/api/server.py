"""The waitress server for the HTTP app, tuned so that idle or slow clients cannot lock others out.

waitress's defaults are made for a server behind a proxy: 100 connections (the 101st waits, so about
100 idle sockets make the daemon unreachable, ``/health`` included), idle sockets kept 120 s, and a
request body of up to 1 GiB spooled to a temporary file before the app sees a byte. Here:

* ``connection_limit`` 1000 with ``poll()`` (``select()`` stops at descriptor 1024) and the open-file
  limit raised to fit; idle connections are closed after ``channel_timeout`` 30 s, checked every
  ``cleanup_interval`` 2 s.
* Past 90 % of the limit, that check also closes the connections that have been quiet longest and
  run no request (idle keep-alives, request headers that never end: slowloris) down to 50 %, so
  new clients are accepted again within seconds however many idle sockets someone opens.
* ``max_request_body_size`` is ``api.max_upload_mb`` plus the multipart framing, so a body declared
  larger is answered 413 at once and a chunked body is cut off as soon as it passes the limit;
  under ``/rest/`` (Subsonic forms of a few KB) the limit is the proxy's ``MAX_REQUEST_BODY``
  (1 MiB), refused the same way from the headers, before a byte of the body is read or spooled.
* With the ``/rest`` proxy, waitress gets the proxy's ``MAX_STREAMS`` threads on top of the
  API's ``THREADS``: a proxied stream holds its thread while the server sends and the client reads,
  and the proxy never runs more than ``MAX_STREAMS`` of them, so ``/health`` and the API keep
  their threads however many players stream or pause.
* **Send timeout**: a connection whose waiting output the client has not taken for
  ``SEND_TIMEOUT_S`` (60 s; a paused player, a vanished phone) is closed, which frees the thread
  (and the proxy's slot) it holds. waitress's own ``channel_timeout`` only closes idle connections.
* Every figure is measured by ``bench/hardening.py`` and ``bench/proxy_stall.py``.

:class:`HttpServer` serves it from a thread of its own so that the app's main thread only waits
for a stop request (see ``playlistgen.app``).
"""

from __future__ import annotations

import copy
import errno
import functools
import logging
import socket
import threading
from typing import Any

from ..config import Settings
from ..errors import ConfigError
from .subsonic import upstream as subsonic_upstream

log = logging.getLogger(__name__)

THREADS = 8                   # the API's; the /rest proxy's streams get threads of their own
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT_S = 30
CLEANUP_INTERVAL_S = 2
EVICT_AT, EVICT_TO = 0.9, 0.5   # shares of connection_limit
UPLOAD_OVERHEAD = 64 * 1024   # multipart boundaries and part headers around the file
SPARE_FILES = 256             # descriptors for the database, workers, logs, models
SEND_TIMEOUT_S = 60           # output the client has not taken for this long: the connection is closed
REST_PREFIX = "/rest/"


def max_body_bytes(settings: Settings) -> int:
    return settings.api.max_upload_mb * 1024 * 1024 + UPLOAD_OVERHEAD


def proxy_threads(settings: Settings) -> int:
    """Threads for the /rest proxy's streams (0 without the proxy)."""
    return subsonic_upstream.MAX_STREAMS if settings.mediaserver.proxy and settings.mediaserver.url else 0


def server_options(settings: Settings) -> dict[str, Any]:
    return {"threads": THREADS + proxy_threads(settings), "connection_limit": CONNECTION_LIMIT,
            "channel_timeout": CHANNEL_TIMEOUT_S, "cleanup_interval": CLEANUP_INTERVAL_S, "asyncore_use_poll": True,
            "max_request_body_size": max_body_bytes(settings), "ident": "playlistgen"}


class StallWatch:
    """Connections whose waiting output has not moved (waitress's ``last_activity`` is set by every
    byte sent or received) across ``SEND_TIMEOUT_S`` of maintenance passes are closed from the
    loop thread, as a socket error would close them: the task thread blocked writing to it gets
    ClientDisconnected and the response is closed (a proxied stream's upstream connection and
    slot with it). Watching for a whole timeout, rather than comparing ``last_activity`` once,
    keeps a response that has just started after a long silence from being cut."""

    def __init__(self) -> None:
        self._marks: dict[Any, tuple[float, float]] = {}   # channel → (last_activity seen, since)

    def sweep(self, server: Any, now: float) -> int:
        marks: dict[Any, tuple[float, float]] = {}
        closed = 0
        for channel in list(server.active_channels.values()):
            if not channel.total_outbufs_len:
                continue
            mark = self._marks.get(channel)
            if mark is None or mark[0] != channel.last_activity:
                marks[channel] = (channel.last_activity, now)
            elif now - mark[1] >= SEND_TIMEOUT_S:
                log.info("closed a connection from %s: %d bytes not taken for %d s", channel.addr[0] if
                         channel.addr else "?", channel.total_outbufs_len, SEND_TIMEOUT_S)
                channel.handle_close()
                closed += 1
            else:
                marks[channel] = mark
        self._marks = marks
        return closed


def evict_idle(server: Any, now: float, stalls: StallWatch | None = None) -> int:
    """waitress's maintenance (close channels idle past channel_timeout), the send timeout
    (``stalls``), then, when the open connections pass EVICT_AT of the limit, close the quietest
    channels that run no request and send nothing, down to EVICT_TO. Returns how many were marked
    to close by the last step."""
    type(server).maintenance(server, now)
    if stalls is not None:
        stalls.sweep(server, now)
    limit = server.adj.connection_limit
    excess = len(server._map) - int(limit * EVICT_TO)
    if len(server._map) < limit * EVICT_AT or excess <= 0:
        return 0
    quiet = sorted((c for c in list(server.active_channels.values())
                    if not c.requests and not c.will_close and not c.total_outbufs_len),
                   key=lambda c: c.last_activity)[:excess]
    for channel in quiet:
        channel.will_close = True
    log.warning("%d connections open (limit %d): closed the %d quietest idle ones", len(server._map), limit,
                len(quiet))
    return len(quiet)


def _listeners(server: Any) -> list[Any]:
    from waitress.server import BaseWSGIServer

    return [server] if isinstance(server, BaseWSGIServer) else \
        [d for d in server.map.values() if isinstance(d, BaseWSGIServer)]  # MultiSocketServer


def _install_eviction(server: Any) -> None:
    for listener in _listeners(server):
        listener.maintenance = functools.partial(evict_idle, listener, stalls=StallWatch())


def _rest_parser(adj: Any) -> type:
    """waitress's request parser, switching to a copy of ``adj`` with the proxy's body limit once it
    knows the path is under /rest/: waitress checks the limit of the parser's ``adj`` as soon as
    the headers are parsed (413, the body unread) and while a chunked body arrives."""
    from waitress.parser import HTTPRequestParser

    rest_adj = copy.copy(adj)
    rest_adj.max_request_body_size = subsonic_upstream.MAX_REQUEST_BODY

    class Parser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            if ("/" + (self.path or "").lstrip("/")).startswith(REST_PREFIX):
                self.adj = rest_adj

    return Parser


def _install_body_limits(server: Any) -> None:
    for listener in _listeners(server):
        listener.channel_class = type("Channel", (listener.channel_class,),
                                      {"parser_class": _rest_parser(listener.adj)})


def raise_open_file_limit(wanted: int = CONNECTION_LIMIT + SPARE_FILES) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never above the hard limit); returns it."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("open-file limit is %d (hard limit): fewer than %d client connections fit", soft, wanted)
    return soft


def _bad_address(host: str, port: int) -> ConfigError:
    return ConfigError(f"cannot listen on {host}:{port}: '{host}' is not an IP address or a host name of this "
                       "machine", hint="use --host 127.0.0.1 (this machine only) or the address of one of its "
                       "network interfaces (api.host)")


def check_address(host: str, port: int) -> None:
    """A host that is not an address or a resolvable name: one clear error instead of waitress's
    traceback ("Invalid host/port specified")."""
    try:
        socket.getaddrinfo(host.strip("[]") or None, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        raise _bad_address(host, port) from None


def create_http_server(app: Any, settings: Settings) -> Any:
    """A bound (not yet running) waitress server; ConfigError with one clear line if it cannot bind."""
    from waitress import create_server

    host, port = settings.api.host, settings.api.port
    check_address(host, port)
    raise_open_file_limit()
    try:
        server = create_server(app, host=host, port=port, **server_options(settings))
    except ValueError:  # waitress's own address check
        raise _bad_address(host, port) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            hint = "is another playlistgen running? choose another port with --port"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = "ports below 1024 need privileges: use a port above 1024 (--port)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            hint = f"'{host}' is not an address of this machine: use 127.0.0.1 or one of its interfaces (--host)"
        else:
            hint = "check --host and --port"
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}", hint=hint) from None
    _install_eviction(server)
    _install_body_limits(server)
    return server


class HttpServer:
    """A bound waitress server, served by the "http" thread and stopped from any thread.

    waitress's own ``run()`` ends only on an exception raised inside its loop (the old way: a
    signal handler raising SystemExit in the main thread). Here the loop runs one poll at a time
    and checks a flag in between; :meth:`stop` sets the flag and pulls waitress's trigger (its
    self-pipe: the thread-safe way its task threads wake the loop), so serving ends at once,
    then lets running requests finish (waitress waits up to 5 s) and closes every socket."""

    def __init__(self, server: Any) -> None:
        from waitress.trigger import trigger

        self._server = server
        self._map = server.map if hasattr(server, "map") else server._map   # several listeners, or one
        self._trigger = next((d for d in self._map.values() if isinstance(d, trigger)), None)
        self._stopping = False
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port bound (the one chosen by the system for port 0)."""
        port = self._server.effective_port if hasattr(self._server, "effective_port") \
            else self._server.effective_listen[0][1]
        return int(port)   # waitress keeps it as getnameinfo's string

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from waitress import wasyncore

        adj = self._server.adj
        try:
            while not self._stopping and self._map:
                wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=self._map, use_poll=adj.asyncore_use_poll,
                               count=1)
        except Exception:   # the app sees the thread gone (alive() is False) and stops
            log.exception("HTTP server failed")

    def alive(self) -> bool:
        """False once the serving thread ended without being asked to."""
        return self._thread is None or self._thread.is_alive() or self._stopping

    def stop(self, timeout: float = 10.0) -> None:
        from waitress import wasyncore

        self._stopping = True
        if self._thread is not None:
            if self._trigger is not None:
                self._trigger.pull_trigger()
            self._thread.join(timeout)
        self._server.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)

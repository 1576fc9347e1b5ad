"""Who may do what on the daemon's Dask connections (mutual TLS): the daemon's own certificate
may do anything; any other certificate from the cluster CA — a worker's — may only work.

* **Trust is a certificate, not a CA.** A peer is trusted when its certificate is byte for byte
  the daemon's (``analysis.dask_tls_cert``, compared by SHA-256): that is the daemon's client
  talking to its embedded scheduler, and back. Workers hold ``worker.pem``, so they are not.
* **Nothing from an untrusted peer is unpickled**: its messages are decoded by
  :func:`.plain.loads` (plain data only). Dask would unpickle parts of any message while reading
  it, and the daemon's client unpickles results, errors and types a worker sends.
* **A worker may only work**: on the scheduler, an untrusted peer may use only the operations a
  worker and its nanny need (:data:`WORKER_OPS`). Anything else — ``register-client`` (and so
  submit, run, run_on_scheduler), ``run_function``, ``feed``, ``terminate``, ``identity``, a
  client operation slipped into a worker's stream — is refused: one warning line here, a
  ``ValueError`` naming the reason there (as Dask answers a blocked handler).

It is Dask's ``tls`` comm backend for this process (``distributed.comm.registry``) while the Dask
executor runs (:func:`install` / :func:`uninstall`); ``tcp://`` (loopback only, see ``config``)
carries no certificate and is not guarded. An external scheduler (``analysis.dask_scheduler``) runs
in another process: the daemon trusts nothing it sends, and it applies no roles of its own.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
from collections.abc import Iterable
from ssl import SSLError
from typing import Any

from distributed.comm.core import CommClosedError
from distributed.comm.tcp import (
    TLS,
    TLSBackend,
    TLSConnector,
    TLSListener,
    convert_stream_closed_error,
    read_bytes_rw,
)
from distributed.protocol.utils import unpack_frames
from tornado.iostream import StreamClosedError

from . import plain

log = logging.getLogger(__name__)

REFUSED_OP = "playlistgen-refused"
# What a Dask worker and its nanny ask of the scheduler (distributed 2026.8): requests, then the
# messages on a worker's stream. Nothing here runs code or reads other clients' data.
WORKER_RPC = frozenset({"register-worker", "register_nanny", "heartbeat_worker", "who_has", "log_event",
                        "unregister", "retire_workers", "close"})
WORKER_STREAM = frozenset({"task-finished", "task-erred", "release-worker-data", "add-keys", "long-running",
                           "reschedule", "keep-alive", "log-event", "worker-status-change",
                           "request-refresh-who-has", "close-stream"})
WORKER_OPS = WORKER_RPC | WORKER_STREAM

_lock = threading.Lock()
_trusted: frozenset[str] | None = None   # SHA-256 of trusted certificates; None: not installed
_previous: Any = None


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def install(trusted: Iterable[str]) -> None:
    """Guard every ``tls://`` connection this process makes or accepts from now on; ``trusted``
    are the fingerprints of the certificates allowed everything (empty: none)."""
    from distributed.comm import registry

    global _trusted, _previous
    with _lock:
        if _trusted is None:
            _previous = registry.backends.get("tls")
        _trusted = frozenset(trusted)
        registry.backends["tls"] = GuardedTLSBackend()


def uninstall() -> None:
    from distributed.comm import registry

    global _trusted, _previous
    with _lock:
        if _trusted is None:
            return
        if _previous is not None:
            registry.backends["tls"] = _previous
        else:
            registry.backends.pop("tls", None)
        _trusted, _previous = None, None


def daemon_trust(tls: Any, *, embedded: bool) -> frozenset[str]:
    """What the daemon trusts with ``tls`` (its ``TlsFiles``): its own certificate when the scheduler
    is its own, nothing when the scheduler is another process. Refuses unusable files, and the
    workers' certificate (every worker would then be trusted) in one line."""
    from .certs import check_files, der_of

    check_files(tls.ca, tls.cert, tls.key, role="daemon",
                names=("analysis.dask_tls_ca", "analysis.dask_tls_cert", "analysis.dask_tls_key"))
    return frozenset({fingerprint(der_of(tls.cert))}) if embedded else frozenset()


def refusal(op: str, who: str) -> str:
    return (f"playlistgen's Dask scheduler refused {op!r} from {who}: a worker certificate may only analyse "
            "files; client operations need the daemon's own certificate")


def protect(scheduler: Any) -> None:
    """Answer the operations this guard refuses on ``scheduler`` (a ``distributed.Scheduler``)."""
    from distributed.core import error_message

    def refused(refused: str = "?", who: str = "?") -> dict:   # the fields _screen put in the message
        # raised by the caller, as when Dask refuses a blocked handler
        return error_message(ValueError(refusal(refused, who)), status="uncaught-error")

    def refused_in_stream(**_: Any) -> None:   # already logged when it was read
        return None

    scheduler.handlers[REFUSED_OP] = refused
    scheduler.stream_handlers[REFUSED_OP] = refused_in_stream


def role(peercert: dict | None) -> str:
    """The role a certificate names (its OU, set by `playlistgen cluster certs`)."""
    subject = dict(pair for rdn in (peercert or {}).get("subject", ()) for pair in rdn)
    ou = subject.get("organizationalUnitName")
    if ou:
        return f"{ou} certificate"
    return f"certificate {subject.get('commonName', '?')!r}" if subject else "no certificate"


class GuardedTLS(TLS):
    """A TLS comm that decodes an untrusted peer's messages as plain data."""

    inbound = False
    trusted = False

    def _read_extra(self) -> None:
        super()._read_extra()
        sock = self.stream.socket if self.stream is not None else None
        der = sock.getpeercert(binary_form=True) if sock is not None else None
        trusted = _trusted
        self.trusted = bool(der and trusted and fingerprint(der) in trusted)

    def who(self) -> str:
        return f"{self.peer_address} ({role(self._extra.get('peercert'))})"

    async def read(self, deserializers: Any = None) -> Any:
        if self.trusted:
            msg = await super().read(deserializers)
            if self.inbound and isinstance(msg, dict) and msg.get("op") == "register-worker":
                log.warning("Dask worker at %s holds the daemon's own certificate: it is trusted with everything "
                            "— give workers worker.pem and worker.key", self.peer_address)
            return msg
        frames = await self._frames()
        try:
            msg = plain.loads(frames)
        except Exception as exc:
            self.abort()
            raise CommClosedError(f"undecodable message from {self.who()}: {type(exc).__name__}") from None
        return self._screen(msg) if self.inbound else msg

    async def _frames(self) -> list:
        """The frames of one message (``TCP.read`` of distributed 2026.8, without decoding them)."""
        stream = self.stream
        if stream is None:
            raise CommClosedError()
        try:
            (size,) = struct.unpack("Q", await stream.read_bytes(struct.calcsize("Q")))
            frames, buffers = unpack_frames(await read_bytes_rw(stream, size), partial=True)
            for nbytes in buffers:
                frames.append(await read_bytes_rw(stream, nbytes))
        except (StreamClosedError, SSLError) as exc:
            self.stream, self._closed = None, True
            convert_stream_closed_error(self, exc)
        except BaseException:
            self.abort()   # unknown state of the stream: never read from it again
            raise
        return frames

    def _screen(self, msg: Any) -> Any:
        """Only worker operations from an untrusted peer (requests, or items of its stream)."""
        if isinstance(msg, dict):
            op = msg.get("op")
            if op is None or op in WORKER_OPS:
                return msg
            self._log_refusal(op)
            return {"op": REFUSED_OP, "refused": str(op), "who": self.who()}
        if isinstance(msg, (list, tuple)):
            kept = []
            for item in msg:
                op = item.get("op") if isinstance(item, dict) else None
                if op is not None and op not in WORKER_OPS:
                    self._log_refusal(op)
                    continue
                kept.append(item)
            return kept
        return msg

    def _log_refusal(self, op: Any) -> None:
        log.warning("%s", refusal(str(op), self.who()))


class GuardedServerTLS(GuardedTLS):
    inbound = True


class GuardedTLSConnector(TLSConnector):
    comm_class = GuardedTLS


class GuardedTLSListener(TLSListener):
    comm_class = GuardedServerTLS


class GuardedTLSBackend(TLSBackend):
    _connector_class = GuardedTLSConnector
    _listener_class = GuardedTLSListener

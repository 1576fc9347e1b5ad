"""Why `playlistgen worker` could not join the daemon's scheduler, in one line.

Dask reports every failed start as ``RuntimeError("Nanny failed to start.")`` at the end of a
chain of comm and ssl errors (some 90 lines of traceback). :func:`explain` walks that chain and
names the cause with what to do: the scheduler's certificate is from another CA, the scheduler
refused ours, one side speaks TLS and the other does not — all fatal, the worker stops — or the
scheduler is not there (yet), which the worker waits out.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

from ..worker import one_line

COPY_FILES = ("copy ca.pem, worker.pem and worker.key from the daemon's `playlistgen cluster certs` folder "
              "(or make new ones there with --force)")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        real = getattr(exc, "real_error", None)   # tornado's StreamClosedError keeps the ssl error there
        if isinstance(real, BaseException) and id(real) not in seen:
            yield from _chain(real)
        exc = exc.__cause__ or exc.__context__   # type: ignore[assignment]


def explain(exc: BaseException, address: str) -> tuple[str, bool]:
    """(one line, fatal) for a failed start of the workers for the scheduler at ``address``."""
    tls = address.startswith("tls://")
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return (f"the scheduler at {address} shows a certificate that --tls-ca does not vouch for "
                    f"({e.verify_message or 'verify failed'}): this worker's files come from another "
                    f"`playlistgen cluster certs` run — {COPY_FILES}", True)
        if isinstance(e, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(e) or \
                isinstance(e, ValueError) and "cannot convert to SSL" in str(e):   # it spoke first, in clear
            return (f"the scheduler at {address} does not speak TLS — start the daemon with "
                    "analysis.dask_tls_ca/cert/key, or use tcp:// (its own machine only)", True)
        if tls and isinstance(e, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError)) or \
                tls and isinstance(e, ssl.SSLError) and "ALERT" in str(e):
            return (f"the scheduler at {address} refused this worker's certificate (it trusts another CA) "
                    f"— {COPY_FILES}", True)
        if not tls and isinstance(e, ConnectionResetError):
            return (f"the scheduler at {address} hung up at once: it expects TLS — use tls://HOST:PORT with "
                    "--tls-ca ca.pem --tls-cert worker.pem --tls-key worker.key", True)
    for e in chain:
        if isinstance(e, (ConnectionRefusedError, TimeoutError)) or "Timed out" in str(e):
            return f"cannot reach the scheduler at {address} ({one_line(e)}); is the daemon running?", False
    root = chain[-1]
    return f"cannot start the Dask workers for {address}: {type(root).__name__}: {one_line(root)}", True

"""Dask addresses and TLS, without importing Dask: what `config.validate`, `playlistgen worker`
and the Dask executor agree on.

Dask's protocol runs code on the workers (pickled functions), so an address anyone on the network
can reach must be TLS with our own CA on both ends: a non-loopback scheduler or listen address
with ``tcp://`` is refused, and ``tls://`` needs the CA, certificate and key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ....errors import ConfigError

DEFAULT_PORT = 8786
SCHEMES = ("tcp", "tls")
CERTS_HINT = "make certificates with `playlistgen cluster certs DIR` and set analysis.dask_tls_ca/cert/key"


@dataclass(frozen=True)
class TlsFiles:
    ca: str = ""
    cert: str = ""
    key: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.ca and self.cert and self.key)

    @property
    def partial(self) -> bool:
        return any((self.ca, self.cert, self.key)) and not self.configured

    def security(self):  # type: ignore[no-untyped-def]
        """A ``distributed.Security`` for these files (mutual TLS), or a default one when unset.
        Imports Dask: call it only where Dask is used."""
        from distributed.security import Security

        if not self.configured:
            return Security()
        return Security(tls_ca_file=self.ca, tls_client_cert=self.cert, tls_client_key=self.key,
                        tls_scheduler_cert=self.cert, tls_scheduler_key=self.key,
                        tls_worker_cert=self.cert, tls_worker_key=self.key, require_encryption=True)


def split_address(address: str) -> tuple[str, str, int]:
    """``tls://host:port`` → (scheme, host, port); the port defaults to 8786."""
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in SCHEMES or not rest:
        raise ValueError(f"expected tcp://HOST:PORT or tls://HOST:PORT, got {address!r}")
    if rest.startswith("["):  # [::1]:8786
        host, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not host or (port and not port.isdigit()):
        raise ValueError(f"expected tcp://HOST:PORT or tls://HOST:PORT, got {address!r}")
    return scheme, host, int(port) if port else DEFAULT_PORT


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(key: str, address: str, tls: TlsFiles) -> None:
    """Refuse an address that is malformed, or reachable from the network without TLS, or TLS
    without certificates. ``key`` names the setting (or flag) in the message."""
    try:
        scheme, host, port = split_address(address)
    except ValueError as exc:
        raise ConfigError(f"{key} is {address!r}: {exc}", hint="e.g. tls://192.168.1.10:8786") from None
    if scheme == "tcp" and not is_loopback(host):
        raise ConfigError(f"{key} is {address!r}: plain tcp:// on a non-loopback address would let anyone "
                          "on the network run code on the workers", hint=f"use tls:// — {CERTS_HINT}")
    if scheme == "tcp" and tls.configured:   # Dask would refuse every message: encryption is required
        raise ConfigError(f"{key} is {address!r}, plain tcp://, but the TLS CA, certificate and key are set",
                          hint=f"use tls://{host}:{port}")
    if scheme == "tls" and not tls.configured:
        raise ConfigError(f"{key} is {address!r} but the TLS CA, certificate and key are not all set",
                          hint=CERTS_HINT)


def default_listen(tls: TlsFiles) -> str:
    return f"tls://0.0.0.0:{DEFAULT_PORT}" if tls.configured else f"tcp://127.0.0.1:{DEFAULT_PORT}"


def tls_files(analysis) -> TlsFiles:  # type: ignore[no-untyped-def]
    return TlsFiles(analysis.dask_tls_ca, analysis.dask_tls_cert, analysis.dask_tls_key)


def validate_analysis(analysis) -> None:  # type: ignore[no-untyped-def]
    """The Dask keys of ``analysis`` settings (checked when ``executor`` is dask)."""
    tls = tls_files(analysis)
    if tls.partial:
        raise ConfigError("analysis.dask_tls_ca, dask_tls_cert and dask_tls_key must be set together",
                          hint=CERTS_HINT)
    if analysis.executor != "dask":
        return
    if analysis.dask_scheduler:
        check_address("config key 'analysis.dask_scheduler'", analysis.dask_scheduler, tls)
    else:
        check_address("config key 'analysis.dask_listen'", analysis.dask_listen or default_listen(tls), tls)
    for prefix, target in analysis.dask_path_map.items():
        if not prefix or not target:
            raise ConfigError("config key 'analysis.dask_path_map' has an empty prefix",
                              hint="write it as dask_path_map: {/srv/music: /mnt/music}")

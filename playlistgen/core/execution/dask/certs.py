"""TLS material for a Dask cluster (`playlistgen cluster certs DIR`), made with ``cryptography``:
a private CA, a certificate for the daemon (its scheduler and client) and one for the workers.
Dask does mutual TLS against our CA (it does not check host names), so only holders of a
certificate signed by this CA can talk to the scheduler or the workers. Private keys are
written with mode 0600; the CA key stays on this machine."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from ....errors import ConfigError

VALID_DAYS = 3650
FILES = ("ca.pem", "ca.key", "daemon.pem", "daemon.key", "worker.pem", "worker.key")


def _key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "playlistgen"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject_key, common: str, issuer_key, issuer_name, *, ca: bool, sans: list) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(issuer_name or _name(common))
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                      content_commitment=False, key_encipherment=False,
                                                      data_encipherment=False, key_agreement=False,
                                                      encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                               ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _sans(hosts: list[str]) -> list:  # type: ignore[type-arg]
    from cryptography import x509

    out: list = []
    for host in dict.fromkeys(["localhost", "127.0.0.1", socket.gethostname(), *hosts]):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def make_certs(directory: Path, *, hosts: list[str] | None = None, force: bool = False) -> dict[str, Path]:
    """Write the CA and the daemon/worker certificates into ``directory``; refuses to overwrite
    existing files unless ``force``. Returns {file name: path}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    existing = [name for name in FILES if (directory / name).exists()]
    if existing and not force:
        raise ConfigError(f"{directory} already holds {', '.join(existing)}",
                          hint="use another folder, or --force to replace them (old workers then need the new files)",
                          path=str(directory))
    ca_key = _key()
    ca_pem = _cert(ca_key, "playlistgen CA", ca_key, None, ca=True, sans=[])
    out = {"ca.pem": ca_pem, "ca.key": _key_pem(ca_key)}
    sans = _sans(hosts or [])
    for role in ("daemon", "worker"):
        key = _key()
        out[f"{role}.pem"] = _cert(key, f"playlistgen {role}", ca_key, _name("playlistgen CA"), ca=False, sans=sans)
        out[f"{role}.key"] = _key_pem(key)
    paths = {}
    for name, data in out.items():
        path = directory / name
        tmp = directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if name.endswith(".key") else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        paths[name] = path
    return paths

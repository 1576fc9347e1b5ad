"""TLS material for a Dask cluster (`playlistgen cluster certs DIR`), made with ``cryptography``:
a private CA, a certificate for the daemon (its scheduler and client) and one for the workers.
Dask does mutual TLS against our CA (it does not check host names), so only holders of a
certificate signed by this CA can talk to the scheduler or the workers; each certificate names
its role in its subject (OU ``daemon`` or ``worker``), and the daemon trusts only its own
certificate with more than work (see ``guard.py``). A worker machine needs ``ca.pem``,
``worker.pem`` and ``worker.key``; ``ca.key`` (which signs new certificates) and the daemon's
files stay here. Private keys are written with mode 0600."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from ....errors import ConfigError

VALID_DAYS = 3650
FILES = ("ca.pem", "ca.key", "daemon.pem", "daemon.key", "worker.pem", "worker.key")
WORKER_FILES = ("ca.pem", "worker.pem", "worker.key")   # all a worker machine needs
ROLES = ("daemon", "worker")


def _key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str, role: str | None = None):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    unit = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)] if role else []
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "playlistgen"), *unit,
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject_key, subject, issuer_key, issuer_name, *, ca: bool, sans: list) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
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
    ca_name = _name(f"playlistgen CA {os.urandom(4).hex()}")   # its own name: never mistaken for another run's
    ca_pem = _cert(ca_key, ca_name, ca_key, None, ca=True, sans=[])
    out = {"ca.pem": ca_pem, "ca.key": _key_pem(ca_key)}
    sans = _sans(hosts or [])
    for role in ROLES:
        key = _key()
        out[f"{role}.pem"] = _cert(key, _name(f"playlistgen {role}", role), ca_key, ca_name, ca=False, sans=sans)
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


# ----------------------------------------------------------------------------- checking them

HINT = "use ca.pem and the certificate and key of one `playlistgen cluster certs` folder"


def _load(path: str, what: str):  # type: ignore[no-untyped-def]
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}", hint=HINT, path=path) from None
    except ValueError:
        raise ConfigError(f"{what} {path} is not a PEM certificate", hint=HINT, path=path) from None


def role_of(cert) -> str | None:  # type: ignore[no-untyped-def]
    """The role in a certificate's subject (OU); older ones name it in their CN only."""
    from cryptography.x509.oid import NameOID

    for oid in (NameOID.ORGANIZATIONAL_UNIT_NAME, NameOID.COMMON_NAME):
        for attr in cert.subject.get_attributes_for_oid(oid):
            value = str(attr.value).removeprefix("playlistgen ")
            if value in ROLES:
                return value
    return None


def der_of(path: str) -> bytes:
    """A certificate file's first certificate, DER-encoded (what TLS shows the peer)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return _load(path, "certificate").public_bytes(Encoding.DER)


def check_files(ca: str, cert: str, key: str, *, role: str, names: tuple[str, str, str]) -> None:
    """Refuse, in one line, TLS files that cannot work for ``role``: unreadable, a key that is not
    the certificate's, a certificate our CA did not sign, or another role's certificate (a daemon
    with the workers' certificate would trust every worker; a worker with the daemon's would hold
    more than work). ``names`` are the settings or flags naming the three files."""
    from cryptography.hazmat.primitives import serialization

    ca_cert, own = _load(ca, names[0]), _load(cert, names[1])
    try:
        private = serialization.load_pem_private_key(Path(key).read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read {names[2]} {key}: {exc.strerror or exc}", hint=HINT, path=key) from None
    except (ValueError, TypeError):
        raise ConfigError(f"{names[2]} {key} is not an unencrypted PEM private key", hint=HINT, path=key) from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*spki) != own.public_key().public_bytes(*spki):
        raise ConfigError(f"{names[2]} {key} is not the key of {names[1]} {cert}", hint=HINT, path=key)
    found = role_of(own)
    signed = own.issuer == ca_cert.subject
    if signed:   # ours are signed by the CA itself (another PKI may chain: TLS checks that)
        try:
            own.verify_directly_issued_by(ca_cert)
        except Exception:
            signed = False
    if not signed and (found is not None or own.issuer == ca_cert.subject):
        raise ConfigError(f"{names[1]} {cert} is not signed by the CA in {names[0]} {ca} (they come from "
                          "different `playlistgen cluster certs` runs)", hint=HINT, path=cert)
    if found is not None and found != role:
        what = {"daemon": "the daemon's", "worker": "the workers'"}[found]
        raise ConfigError(f"{names[1]} {cert} is {what} certificate; the {role} needs {role}.pem and {role}.key",
                          hint=f"copy {role}.pem and {role}.key from the `playlistgen cluster certs` folder",
                          path=cert)

"""Mutual TLS: a small certificate authority for trying it, and loading credentials.

Each party has a certificate naming it (common name and DNS name = its learner id, or
``coordinator``) signed by a CA everyone trusts. A learner server asks every client for
a certificate its CA signed and refuses the others; the coordinator checks that a
learner's certificate names the learner id it expects at that address (TLS host-name
verification against the id), so a learner with the wrong identity is refused during
the handshake. There is no fallback to plaintext.

``colearn certs init DIR`` makes the CA (``DIR/ca.pem``, ``DIR/ca.key``) and
``colearn certs issue DIR NAME`` a party's ``DIR/NAME.pem`` and ``DIR/NAME.key``. Real
parties bring certificates from their own CA; the files are plain PEM.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
COORDINATOR = "coordinator"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"a certificate name must be letters, digits, '-' and '.' (a DNS label, at most "
            f"63 characters, starting with a letter or digit); got {name!r}"
        )
    return name


def _read(path: Path, what: str, fix: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist; {fix}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None


@dataclass(frozen=True)
class ServerCredentials:
    """A learner server's mutual-TLS material (PEM bytes)."""

    ca: bytes
    cert: bytes
    key: bytes
    name: str

    def grpc(self) -> Any:
        import grpc

        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )


@dataclass(frozen=True)
class ClientCredentials:
    """The coordinator's mutual-TLS material (PEM bytes)."""

    ca: bytes
    cert: bytes
    key: bytes
    name: str

    def grpc(self) -> Any:
        import grpc

        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def load(directory: str | Path, name: str) -> tuple[bytes, bytes, bytes]:
    """``(ca, cert, key)`` PEM bytes of ``name`` from a certificates directory."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(
            f"certificates directory {d} does not exist; make one with: colearn certs init {d}"
        )
    check_name(name)
    ca = _read(d / CA_CERT, "CA certificate", f"make one with: colearn certs init {d}")
    fix = f"issue one with: colearn certs issue {d} {name}"
    cert = _read(d / f"{name}.pem", f"the certificate of {name!r}", fix)
    key = _read(d / f"{name}.key", f"the private key of {name!r}", fix)
    return ca, cert, key


def server_credentials(directory: str | Path, name: str) -> ServerCredentials:
    return ServerCredentials(*load(directory, name), name=name)


def client_credentials(directory: str | Path, name: str = COORDINATOR) -> ClientCredentials:
    return ClientCredentials(*load(directory, name), name=name)


def peer_identity(context: Any) -> str | None:
    """The common name of a client's verified certificate (``None`` for plaintext)."""
    names = peer_names(context)
    return names[0] if names else None


def peer_names(context: Any) -> list[str]:
    """Every name a client's verified certificate carries: its common name first, then
    its DNS subject alternative names (empty for plaintext)."""
    try:
        auth = context.auth_context()
    except Exception:
        return []
    names = [
        n.decode("utf-8", "replace")
        for key in ("x509_common_name", "x509_subject_alternative_name")
        for n in auth.get(key) or []
    ]
    return list(dict.fromkeys(names))


# -- a small CA (needs the cryptography package, in the grpc extra) -----------------------


def _crypto() -> Any:
    from colearning.core.exceptions import require_extra

    require_extra("cryptography", "grpc", "colearn certs")
    import cryptography

    return cryptography


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def init_ca(directory: str | Path, *, days: int = 365, name: str = "colearning CA") -> Path:
    """Make a CA in ``directory`` (created if missing); refuses to overwrite one."""
    _crypto()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = Path(directory)
    if (d / CA_CERT).exists() or (d / CA_KEY).exists():
        raise ConfigError(
            f"{d} already holds a CA ({CA_CERT}); use it (colearn certs issue {d} NAME) or "
            "choose another directory"
        )
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(
        d / CA_KEY,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    (d / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return d / CA_CERT


def issue(directory: str | Path, name: str, *, days: int = 365) -> tuple[Path, Path]:
    """Issue ``name``'s certificate and key from the CA in ``directory``."""
    _crypto()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    check_name(name)
    d = Path(directory)
    fix = f"make one with: colearn certs init {d}"
    ca_cert = x509.load_pem_x509_certificate(_read(d / CA_CERT, "CA certificate", fix))
    ca_key = serialization.load_pem_private_key(_read(d / CA_KEY, "CA key", fix), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{d / CA_KEY} is not the EC key colearn certs init writes")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = d / f"{name}.pem", d / f"{name}.key"
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path

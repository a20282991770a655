"""Keys and self-signed certificates for the tests that register certificates and sign assertions."""

from __future__ import annotations

import functools
from datetime import timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from embedauth.clock import from_timestamp

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@functools.cache
def private_key(name: str) -> PrivateKey:
    """``rsa``, ``p256`` or ``ed25519``, optionally suffixed (``rsa-2``) for another key of the kind.
    Generated once per run: RSA generation is slow."""
    kind = name.split("-")[0]
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    assert kind == "ed25519", kind
    return ed25519.Ed25519PrivateKey.generate()


def alg_for(key: PrivateKey) -> str:
    """The JOSE algorithm a client signs with for ``key``."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    return "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "EdDSA"


def private_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM: what clients load."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def certificate_pem(key: PrivateKey, *, now: float, days: int = 30, cn: str = "backup") -> bytes:
    """A self-signed certificate for ``key``, valid from a day before ``now`` for ``days`` days."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = from_timestamp(now) - timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days + 1))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)

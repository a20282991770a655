"""Uploaded client certificates (RFC 7523 ``private_key_jwt``): check one and reduce it to facts.

An admin uploads the certificate whose private key a client signs its assertions with. Accepted:
exactly one X.509 certificate, as PEM (text or bytes; surrounding text and whitespace are ignored)
or DER (a binary ``.cer``), at most 64 KiB, valid at ``now``, whose key is one JOSE signs with: RSA
of 2048 bits or more (RS*/PS*), EC on P-256, P-384 or P-521 (ES256/384/512), or Ed25519 (EdDSA).

Refused, each with an :class:`~embedauth.errors.InvalidCertificate` saying what to do instead:

* more than 64 KiB, checked before any parsing;
* anything holding a private key: a PEM ``... PRIVATE KEY-----`` block of any flavour (PKCS#8,
  encrypted, RSA, EC, OpenSSH) or a DER private key. The private key never leaves the client;
* several certificates (a chain or a bundle): a client is identified by its own certificate alone;
* garbage, an expired or not-yet-valid certificate, and weak or unusual keys (RSA under 2048 or over 8192 bits,
  curves other than the three NIST ones such as secp256k1 or P-224, DSA, Ed448, X25519...).

The issuer and chain are not judged: client certificates are usually self-signed (as for Entra ID
app registrations), and trust comes from the admin's upload, not from a CA. The thumbprint is the
JOSE ``x5t#S256`` (RFC 7515 §4.1.8): base64url without padding of the SHA-256 of the DER
certificate, which a client may put in its assertion's header to name the key it signed with.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import PublicKeyAlgorithmOID

from embedauth.errors import InvalidCertificate

__all__ = ["MAX_CERTIFICATE_BYTES", "MAX_RSA_BITS", "MIN_RSA_BITS", "ParsedCertificate", "parse_certificate"]

MAX_CERTIFICATE_BYTES = 64 * 1024
MIN_RSA_BITS = 2048
#: Larger keys only cost verification time (and OpenSSL refuses to verify over 16384 bits).
MAX_RSA_BITS = 8192
_NIST_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}

_NOT_A_CERTIFICATE = (
    "this is not an X.509 certificate in PEM or DER form; upload the certificate file (.pem, .crt or .cer)"
)
_PRIVATE_KEY = (
    "this contains a private key: never upload a private key, only the certificate "
    "(the -----BEGIN CERTIFICATE----- block, or the .cer file)"
)
_ACCEPTED_KEYS = "accepted keys are RSA of 2048 to 8192 bits, EC P-256, P-384 or P-521, and Ed25519"


@dataclass(frozen=True, slots=True)
class ParsedCertificate:
    """What embedauth stores about an uploaded certificate."""

    thumbprint: str  # x5t#S256: base64url (no padding) of SHA-256 over the DER certificate
    subject: str  # RFC 4514, e.g. "CN=backup,O=Acme"
    key_type: str  # "RSA 2048", "EC P-256", "Ed25519"...
    public_key_pem: str  # SubjectPublicKeyInfo PEM
    not_before: datetime  # aware UTC
    not_after: datetime  # aware UTC


def parse_certificate(data: bytes | str, *, now: datetime) -> ParsedCertificate:
    """Check one uploaded certificate (PEM or DER) at the aware instant ``now``; see the module doc.

    Raises :class:`~embedauth.errors.InvalidCertificate` with a one-line message for every refusal.
    """
    # A str of more than the limit in characters is more than the limit in UTF-8 bytes, so cutting it
    # there first keeps a huge str from being encoded whole; surrogatepass makes any str encodable.
    raw = (
        data[: MAX_CERTIFICATE_BYTES + 1].encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    )
    if len(raw) > MAX_CERTIFICATE_BYTES:
        raise InvalidCertificate("the upload is larger than 64 KiB, which no single certificate is")
    if not raw.strip():
        raise InvalidCertificate("the upload is empty; upload the certificate file (.pem, .crt or .cer)")
    if b"PRIVATE KEY-----" in raw:
        raise InvalidCertificate(_PRIVATE_KEY)
    cert = _load(raw)
    try:  # the parser is lazy: a damaged field only shows when it is read
        # DSA is refused unloaded (key None): cryptography deprecates it and warns on loading one.
        key = None if cert.public_key_algorithm_oid == PublicKeyAlgorithmOID.DSA else cert.public_key()
        subject = cert.subject.rfc4514_string()
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    except UnsupportedAlgorithm:
        raise InvalidCertificate(
            f"the certificate's key is of a type embedauth cannot read; {_ACCEPTED_KEYS}"
        ) from None
    except (ValueError, TypeError):  # TypeError: e.g. a name attribute re-tagged as a BIT STRING
        raise InvalidCertificate(_NOT_A_CERTIFICATE) from None
    key_type, accepted = ("DSA", False) if key is None else _describe(key)
    if key is None or not accepted:
        raise InvalidCertificate(f"the certificate's key is {key_type}; {_ACCEPTED_KEYS}")
    if now >= not_after:
        raise InvalidCertificate(
            f"the certificate expired on {not_after:%Y-%m-%d %H:%M:%S} UTC; upload a current one"
        )
    if now < not_before:
        raise InvalidCertificate(f"the certificate is not valid until {not_before:%Y-%m-%d %H:%M:%S} UTC")
    der = cert.public_bytes(serialization.Encoding.DER)
    return ParsedCertificate(
        thumbprint=base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii"),
        subject=subject,
        key_type=key_type,
        public_key_pem=key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii"),
        not_before=not_before,
        not_after=not_after,
    )


def _load(raw: bytes) -> x509.Certificate:
    """The one certificate in PEM or DER ``raw``; a DER private key is told apart from garbage."""
    if b"-----BEGIN" in raw:
        try:
            certs = x509.load_pem_x509_certificates(raw)
        except (ValueError, x509.InvalidVersion):
            certs = []
        if len(certs) == 1:
            return certs[0]
        if certs:
            raise InvalidCertificate(
                f"found {len(certs)} certificates: upload one certificate, not a chain or a bundle"
            )
    else:
        try:
            return x509.load_der_x509_certificate(raw)
        except (ValueError, x509.InvalidVersion):
            if _is_der_private_key(raw):
                raise InvalidCertificate(_PRIVATE_KEY) from None
    raise InvalidCertificate(_NOT_A_CERTIFICATE)


def _is_der_private_key(raw: bytes) -> bool:
    try:  # the key is only recognised, never used: skip the costly RSA consistency checks
        serialization.load_der_private_key(raw, None, unsafe_skip_rsa_key_validation=True)
    except ValueError:
        return False
    except (TypeError, UnsupportedAlgorithm):  # encrypted, or a type this build lacks: a key all the same
        pass
    return True


def _describe(key: CertificatePublicKeyTypes) -> tuple[str, bool]:
    """The key's type as stored (``"RSA 2048"``, ``"EC P-256"``...) and whether it is accepted."""
    match key:
        case rsa.RSAPublicKey():
            return f"RSA {key.key_size}", MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS
        case ec.EllipticCurvePublicKey():
            curve = _NIST_CURVES.get(key.curve.name)
            return f"EC {curve or key.curve.name}", curve is not None
        case ed25519.Ed25519PublicKey():
            return "Ed25519", True
    return type(key).__name__.removesuffix("PublicKey"), False

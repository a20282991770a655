"""Compact JWS (RFC 7515) read strictly, and signatures checked with ``cryptography`` directly.

Both access tokens and client assertions pass through here. Signing stays with PyJWT; checking is
written against ``cryptography`` because it is the hot path of every protected request, and a
general JOSE library's per-call work (header policy objects, key parsing, option dictionaries)
costs more than the signature itself.

Every failure raises :class:`~embedauth.errors.InvalidToken` with no detail: the caller records
the reason with :class:`Refused` where one is useful for audit.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, TypeGuard

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from embedauth.errors import InvalidToken

__all__ = [
    "ASYMMETRIC",
    "Compact",
    "Refused",
    "Verifier",
    "b64decode",
    "b64encode",
    "is_numeric_date",
    "parse",
    "verifier",
]

#: The asymmetric algorithms embedauth signs or accepts, by key type.
ASYMMETRIC = ("RS256", "PS256", "ES256", "EdDSA")
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: Header parameters that would let a token choose its own key or change how it is processed.
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})

Verifier = Callable[[bytes, bytes], bool]
"""``verify(signature, signing_input)``: True if the signature is good."""


class Refused(InvalidToken):
    """An :class:`InvalidToken` that carries its reason for the audit hook (never for the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """A JSON NumericDate (RFC 7519 §2): a finite number, not a boolean, within what a float holds."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) < 2**53
    return isinstance(value, float) and math.isfinite(value)


def b64encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(segment: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2); the caller has checked the alphabet."""
    if len(segment) % 4 == 1:
        raise Refused("bad base64url length")
    try:
        # str.replace, not str.translate: several times faster on a token's mixed characters
        standard = segment.replace("-", "+").replace("_", "/")
        return binascii.a2b_base64(standard + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Refused("bad base64url") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))  # from str: json skips guessing the encoding
    except (ValueError, RecursionError):
        raise Refused(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class Compact:
    """A compact JWS split and decoded, its signature not yet checked."""

    header: dict[str, Any]
    payload_segment: str
    signing_input: bytes
    signature: bytes

    def payload(self) -> dict[str, Any]:
        """The claims (call only after the signature checked out)."""
        return _json_object(b64decode(self.payload_segment), "payload")


def parse(token: object, *, max_bytes: int) -> Compact:
    """Split a compact JWS: size, shape and header checked before anything costly."""
    if not isinstance(token, str) or len(token) > max_bytes:
        raise Refused("not a string, or over the size limit")
    if not _SHAPE.fullmatch(token):
        raise Refused("not three base64url segments")
    header_segment, payload_segment, signature_segment = token.split(".")
    header = _json_object(b64decode(header_segment), "header")
    if not isinstance(header.get("alg"), str):
        raise Refused("header without alg")
    if _FORBIDDEN_HEADERS.intersection(header):
        raise Refused(f"forbidden header parameter: {sorted(_FORBIDDEN_HEADERS.intersection(header))}")
    signature = b64decode(signature_segment)
    # The header and payload text is what the signature covers; the signature's own text must
    # be the one canonical encoding, so that no second spelling of a token verifies.
    if b64encode(signature) != signature_segment:
        raise Refused("non-canonical signature encoding")
    return Compact(
        header=header,
        payload_segment=payload_segment,
        signing_input=f"{header_segment}.{payload_segment}".encode("ascii"),
        signature=signature,
    )


def verifier(alg: str, key: PublicKeyTypes | bytes) -> Verifier:
    """A signature check for ``alg`` with ``key``, or ``Refused`` if the two do not belong together.

    The algorithm comes from the key's registration (the key ring or a certificate), so a token
    cannot pick ``none``, or HS256 keyed with a public key, by naming it in its header.
    """
    if alg in ("RS256", "PS256") and isinstance(key, rsa.RSAPublicKey):
        pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
        digest = hashes.SHA256()
        return _checked(lambda sig, data: key.verify(sig, data, pad, digest))
    if alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        algorithm = ec.ECDSA(hashes.SHA256())

        def verify_es256(sig: bytes, data: bytes) -> None:
            if len(sig) != 64:
                raise InvalidSignature
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, data, algorithm)

        return _checked(verify_es256)
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
        return _checked(key.verify)
    if alg == "HS256" and isinstance(key, bytes) and len(key) >= 32:
        secret = key
        return lambda sig, data: hmac.compare_digest(sig, hmac.new(secret, data, sha256).digest())
    raise Refused(f"algorithm {alg} does not fit the key")


def _checked(verify: Callable[[bytes, bytes], object]) -> Verifier:
    def check(signature: bytes, signing_input: bytes) -> bool:
        try:
            verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    return check

"""Compact JWS (RFC 7515) read strictly, and signatures checked with ``cryptography`` directly.

Both access tokens and client assertions pass through here. Signing and checking are both written
against ``cryptography``: checking is the hot path of every protected request and signing the
hot path of the token endpoint, and a general JOSE library's per-call work (header policy objects,
key parsing, option dictionaries, the header encoded again for every token) costs more than the
signature itself. :func:`signer` writes exactly the bytes PyJWT writes for the same claims, header
and key (a test holds it to that), except that an ECDSA signature is always the low-S one.

**ECDSA and low S** (RFC 7518 §3.4). If ``(r, s)`` is a valid signature, so is ``(r, n - s)``, with
``n`` the curve's group order: every ECDSA token has a second spelling that verifies. embedauth
signs access tokens with ``s <= n/2`` only, and its access-token verifiers (``low_s_only=True``)
refuse the other spelling, so one token is one cache entry. Client assertions accept both: other
libraries sign either way, and an assertion's ``jti`` is consumed once, so a second spelling of it
is worth nothing.

Every failure raises :class:`~embedauth.errors.InvalidToken` with no detail: the caller records
the reason with :class:`Refused` where one is useful for audit.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Mapping
from hashlib import sha256
from typing import Any, NamedTuple, TypeAlias, TypeGuard

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from embedauth.errors import InvalidToken
from embedauth.lru import BoundedDict

__all__ = [
    "ASYMMETRIC",
    "Compact",
    "Refused",
    "Signer",
    "Verifier",
    "b64decode",
    "b64encode",
    "is_numeric_date",
    "parse",
    "sign",
    "signer",
    "verifier",
]

#: The asymmetric algorithms embedauth accepts in client assertions, by key type. Access tokens are
#: signed with RS256, ES256 or EdDSA only (``tokens/keys.py``).
ASYMMETRIC = ("RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA")
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"  # RFC 4648 §5, in order
#: Header parameters that would let a token choose its own key or change how it is processed.
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})

Verifier = Callable[[bytes, bytes], bool]
"""``verify(signature, signing_input)``: True if the signature is good. One built with
``low_s_only=True`` raises :class:`Refused` for a high-S ECDSA signature, before checking it."""

SigningKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | bytes
"""What :func:`sign` signs with: a private key, or the secret of HS256."""


class _Curve(NamedTuple):
    """An ECDSA algorithm of RFC 7518 §3.4: its curve, hash, and the size of ``r`` and of ``s``."""

    name: str  # cryptography's name of the curve
    hash: type[hashes.HashAlgorithm]
    size: int  # bytes of r and of s each, big-endian, in the JOSE signature (R || S)
    order: int  # n, the order of the curve's base point (SEC 2 §2.4.2, §2.5.1, §2.6.1)


_ECDSA = {
    "ES256": _Curve(
        "secp256r1", hashes.SHA256, 32, 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    ),
    "ES384": _Curve(
        "secp384r1",
        hashes.SHA384,
        48,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    ),
    "ES512": _Curve(
        "secp521r1",
        hashes.SHA512,
        66,
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
    ),
}


class Refused(InvalidToken):
    """An :class:`InvalidToken` that carries its reason for the audit hook (never for the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
        #: The client a signed token names, once its signature verified (who the refusal concerns).
        self.client_id: str | None = None


def is_numeric_date(value: object) -> TypeGuard[int | float]:
    """A JSON NumericDate (RFC 7519 §2): a number, not a boolean, below 2**53 in magnitude (what a
    float holds exactly; NaN fails the comparison). An integer literal too large for 64 bits reads
    as a float (see :func:`_json_object`) and is refused by the same bound."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) and abs(value) < 2**53


def b64encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(segment: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2), strictly: any character outside its alphabet, padding
    included, is refused."""
    if len(segment) % 4 == 1:
        raise Refused("bad base64url length")
    if "+" in segment or "/" in segment or "=" in segment:  # base64's, not base64url's
        raise Refused("bad base64url")
    try:
        # str.replace, not str.translate: several times faster on a token's mixed characters;
        # strict_mode refuses every other character outside the alphabet (whitespace too)
        standard = segment.replace("-", "+").replace("_", "/")
        return binascii.a2b_base64(standard + "=" * (-len(segment) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        raise Refused("bad base64url") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``data``, read by orjson: RFC 8259 strictly (RFC 7519 §7.2 step 10), where
    Python's ``json`` is lenient. The octets must be UTF-8 (no BOM, no encoded surrogates, no
    UTF-16 guessing); ``NaN``, ``Infinity`` and a number beyond a double's range are refused, and
    so is a string with an unpaired surrogate escape (RFC 7493 §2.1: not Unicode text). A
    duplicate member keeps its last value, as with ``json`` and every JOSE library. An integer
    beyond 64 bits reads as a float. orjson also parses three times faster than ``json``: this is
    the first-seen verification's largest cost after the signature."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:  # nesting deeper than orjson's limit (1,024) included
        raise Refused(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(f"{what} is not a JSON object")
    return value


class Compact(NamedTuple):
    """A compact JWS split and decoded, its signature not yet checked."""

    header: dict[str, Any]
    payload_segment: str
    signing_input: bytes
    signature: bytes

    def payload(self) -> dict[str, Any]:
        """The claims (call only after the signature checked out)."""
        return _json_object(b64decode(self.payload_segment), "payload")


#: The last character of a canonical unpadded base64url segment, by the segment's length modulo 4:
#: after 2 characters of a group only 4 bits are data (the other 2 must be zero), after 3, 2 bits.
_CANONICAL_LAST = {
    0: frozenset(_ALPHABET),
    2: frozenset(_ALPHABET[::16]),
    3: frozenset(_ALPHABET[::4]),
}
#: Headers accepted lately, by their segment: tokens of one key share one, so a header is decoded
#: and checked once, not per token. The segment is the whole input to its header: a hit is exactly
#: the decision a miss would make. A BoundedDict (one lookup on the hot path), emptied when full:
#: a deployment has a few keys, so a full map means someone is sending made-up headers.
_HEADERS_MAX = 64
_HEADERS: BoundedDict[str, dict[str, Any]] = BoundedDict(_HEADERS_MAX)
_CACHED_HEADER_LENGTH = 512  # longer header segments are not remembered


def _header(segment: str) -> dict[str, Any]:
    header = _HEADERS.get(segment)
    if header is not None:
        return header
    header = _json_object(b64decode(segment), "header")
    if not isinstance(header.get("alg"), str):
        raise Refused("header without alg")
    forbidden = _FORBIDDEN_HEADERS.intersection(header)
    if forbidden:
        raise Refused(f"forbidden header parameter: {sorted(forbidden)}")
    if len(segment) <= _CACHED_HEADER_LENGTH:
        _HEADERS.put(segment, header)
    return header


def parse(token: object, *, max_bytes: int) -> Compact:
    """Split a compact JWS: size, shape and header checked before anything costly.

    The header is the caller's to read, never to change (it may be shared with other tokens).
    """
    if not isinstance(token, str) or len(token) > max_bytes:
        raise Refused("not a string, or over the size limit")
    segments = token.split(".")
    if len(segments) != 3 or "" in segments or not token.isascii():
        raise Refused("not three base64url segments")
    # Each segment's alphabet is checked where it is decoded (b64decode is strict): the header's
    # (or its cache hit's, the same text) and the signature's now, the payload's once the
    # signature over it has verified.
    header_segment, payload_segment, signature_segment = segments
    header = _header(header_segment)
    # The header and payload text is what the signature covers (no one without the key can
    # respell it, so its pad bits are not checked); the signature's own text must be the one
    # canonical encoding, so that no second spelling of a token verifies.
    last = _CANONICAL_LAST.get(len(signature_segment) % 4)
    if last is None:
        raise Refused("bad base64url length")
    if signature_segment[-1] not in last:
        raise Refused("non-canonical signature encoding")
    return Compact(
        header,
        payload_segment,
        token[: len(header_segment) + len(payload_segment) + 1].encode("ascii"),
        b64decode(signature_segment),
    )


Signer = Callable[[Mapping[str, Any]], str]
"""``sign(claims)``: the compact JWS of ``claims`` under one key and header."""


def sign(claims: Mapping[str, Any], key: SigningKey, alg: str, headers: Mapping[str, Any]) -> str:
    """The compact JWS of ``claims`` (see :func:`signer`, which keeps its header encoded)."""
    return signer(alg, key, headers)(claims)


def signer(alg: str, key: SigningKey, headers: Mapping[str, Any]) -> Signer:
    """Signs claims with ``key`` for ``alg`` under ``{"alg": alg, **headers}``, encoded once.

    The JSON is PyJWT's (sorted header keys, compact separators), so the tokens are byte for byte
    PyJWT's. OpenSSL leaves an ECDSA ``s`` as it comes, above ``n/2`` about half the time; such a
    signature is written as ``(r, n - s)``, the other spelling of the same signature, which
    verifies for the same key and data and which ``low_s_only`` verifiers accept.
    """
    header = json.dumps({"typ": "JWT", "alg": alg, **headers}, separators=(",", ":"), sort_keys=True)
    prefix = b64encode(header.encode()) + "."
    sign_bytes = _signature(alg, key)
    dumps = json.JSONEncoder(separators=(",", ":")).encode

    def sign_claims(claims: Mapping[str, Any]) -> str:
        signing_input = prefix + b64encode(dumps(claims).encode())
        return f"{signing_input}.{b64encode(sign_bytes(signing_input.encode('ascii')))}"

    return sign_claims


def _signature(alg: str, key: SigningKey) -> Callable[[bytes], bytes]:
    """The raw JOSE signature of data (RFC 7518 §3) by ``key`` for ``alg``."""
    if alg == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        pad, digest = padding.PKCS1v15(), hashes.SHA256()
        return lambda data: key.sign(data, pad, digest)
    curve = _ECDSA.get(alg)
    if curve is not None and isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == curve.name:
        algorithm, size, order = ec.ECDSA(curve.hash()), curve.size, curve.order

        def ecdsa(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, algorithm))
            return r.to_bytes(size, "big") + min(s, order - s).to_bytes(size, "big")

        return ecdsa
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    if alg == "HS256" and isinstance(key, bytes):
        secret = key
        return lambda data: hmac.new(secret, data, sha256).digest()
    raise ValueError(f"algorithm {alg} does not fit the signing key")


def verifier(alg: str, key: PublicKeyTypes | bytes, *, low_s_only: bool = False) -> Verifier:
    """A signature check for ``alg`` with ``key``, or ``Refused`` if the two do not belong together.

    The algorithm comes from the key's registration (the key ring or a certificate), so a token
    cannot pick ``none``, or HS256 keyed with a public key, by naming it in its header. An ECDSA
    algorithm needs a key on exactly its curve (ES256: P-256, ES384: P-384, ES512: P-521).

    ``low_s_only`` (access tokens): an ECDSA signature whose ``s`` is above ``n/2`` raises
    ``Refused("high-S ECDSA signature")`` before the signature is checked; other algorithms are
    unaffected. Without it (client assertions) both spellings of an ECDSA signature verify.
    """
    if alg in ("RS256", "PS256") and isinstance(key, rsa.RSAPublicKey):
        pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(padding.MGF1(hashes.SHA256()), 32)
        digest, rsa_verify = hashes.SHA256(), key.verify

        def verify_rsa(sig: bytes, data: bytes) -> bool:
            try:
                rsa_verify(sig, data, pad, digest)
            except InvalidSignature:
                return False
            return True

        return verify_rsa
    curve = _ECDSA.get(alg)
    if curve is not None and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == curve.name:
        return _ecdsa(key, curve, low_s_only=low_s_only)
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PublicKey):
        return _checked(key.verify)
    if alg == "HS256" and isinstance(key, bytes) and len(key) >= 32:
        secret = key
        return lambda sig, data: hmac.compare_digest(sig, hmac.new(secret, data, sha256).digest())
    raise Refused(f"algorithm {alg} does not fit the key")


def _ecdsa(key: ec.EllipticCurvePublicKey, curve: _Curve, *, low_s_only: bool) -> Verifier:
    """The check of a JOSE ECDSA signature (``R || S``, RFC 7518 §3.4) by ``key``, for ``curve``."""
    algorithm = ec.ECDSA(curve.hash())
    size, length, half, ec_verify = curve.size, 2 * curve.size, curve.order // 2, key.verify

    def verify(sig: bytes, data: bytes) -> bool:
        if len(sig) != length:
            return False
        s = int.from_bytes(sig[size:], "big")
        if (
            low_s_only and s > half
        ):  # (r, n - s) is the one spelling accepted: refused before the costly check
            raise Refused("high-S ECDSA signature")
        try:
            ec_verify(encode_dss_signature(int.from_bytes(sig[:size], "big"), s), data, algorithm)
        except InvalidSignature:
            return False
        return True

    return verify


def _checked(verify: Callable[[bytes, bytes], object]) -> Verifier:
    def check(signature: bytes, signing_input: bytes) -> bool:
        try:
            verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    return check

"""ECDSA helpers the low-S and ES384/ES512 tests share: group orders, keys, the two spellings of S.

The orders are written out here from SEC 2 (§2.4.2, §2.5.1, §2.6.1) independently of
``embedauth.tokens.jws``; ``tests/tokens/test_jws.py`` proves them right against ``cryptography``
and checks that jws uses the same.
"""

from __future__ import annotations

import base64
import functools

from cryptography.hazmat.primitives.asymmetric import ec

#: JOSE algorithm -> (curve, bytes of r and of s, group order n).
CURVES: dict[str, tuple[ec.EllipticCurve, int, int]] = {
    "ES256": (
        ec.SECP256R1(),
        32,
        int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16),
    ),
    "ES384": (
        ec.SECP384R1(),
        48,
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
            "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    ),
    "ES512": (
        ec.SECP521R1(),
        66,
        int(
            "01FF" + "FF" * 31 + "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
}
#: The curve each test key name stands for.
KEY_CURVES = {"p256": "ES256", "p384": "ES384", "p521": "ES512"}


@functools.cache
def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    """``p256``, ``p384`` or ``p521``, optionally suffixed (``p384-attacker``): one key per name and run."""
    curve, _, _ = CURVES[KEY_CURVES[name.split("-")[0]]]
    return ec.generate_private_key(curve)


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s_of(token: str, alg: str) -> int:
    """The ``s`` of a compact JWS signed with ``alg``."""
    _, size, _ = CURVES[alg]
    signature = _b64d(token.rsplit(".", 1)[1])
    assert len(signature) == 2 * size
    return int.from_bytes(signature[size:], "big")


def is_low_s(token: str, alg: str) -> bool:
    """Whether ``s <= n/2``."""
    return s_of(token, alg) <= CURVES[alg][2] // 2


def flip_s(token: str, alg: str) -> str:
    """The other spelling of the same signature: ``(r, n - s)``, which verifies just the same."""
    _, size, order = CURVES[alg]
    signing_input, signature_segment = token.rsplit(".", 1)
    signature = _b64d(signature_segment)
    flipped = signature[:size] + (order - int.from_bytes(signature[size:], "big")).to_bytes(size, "big")
    return f"{signing_input}.{_b64e(flipped)}"


def spelled(token: str, alg: str, *, high: bool) -> str:
    """``token`` with its signature spelled high-S (``high``) or low-S."""
    return token if is_low_s(token, alg) != high else flip_s(token, alg)

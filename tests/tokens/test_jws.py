"""Strict compact JWS reading: hostile tokens (self-supplied keys, tampering, size, random bytes);
ECDSA on its three curves, and the low-S rule of access tokens (signing and verifying)."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedauth import EmbedAuth
from embedauth.models import CreatedSecret
from embedauth.tokens import jws
from tests.tokens.ecdsa import CURVES, KEY_CURVES, ec_key, flip_s, is_low_s
from tests.tokens.helpers import b64e, refused, segments, token_for

KEY_CURVES_BY_ALG = {alg: name for name, alg in KEY_CURVES.items()}
DIGESTS: dict[str, hashes.HashAlgorithm] = {
    "ES256": hashes.SHA256(),
    "ES384": hashes.SHA384(),
    "ES512": hashes.SHA512(),
}


def test_unknown_kid_and_self_supplied_keys_are_refused(auth: EmbedAuth, created: CreatedSecret) -> None:
    header, claims, _ = segments(token_for(auth, created))
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    header.pop("alg")
    for extra in (
        {"kid": "nope"},
        {"jwk": attacker_jwk},
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil"},
    ):
        refused(auth, jwt.encode(claims, attacker, algorithm="ES256", headers=header | extra))
    # the right kid, signed by another key
    refused(auth, jwt.encode(claims, attacker, algorithm="ES256", headers=header))


def test_tampered_stripped_and_oversized_tokens_are_refused(auth: EmbedAuth, created: CreatedSecret) -> None:
    token = token_for(auth, created, scope="devices:read")
    head, body, signature = token.split(".")
    _, claims, _ = segments(token)
    refused(auth, f"{head}.{b64e(claims | {'scope': 'devices:read devices:write'})}.{signature}")
    refused(auth, f"{head}.{body}.")
    refused(auth, f"{head}.{body}")
    refused(auth, f"{head}.{body}.{signature}.{signature}")
    refused(auth, token + "=")
    refused(auth, " " + token)
    big = auth.with_settings(max_token_bytes=len(token) - 1)
    refused(big, token)
    assert auth.verify(token).scopes == {"devices:read"}


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=2000), st.binary(max_size=2000), st.none(), st.integers()))
def test_random_input_only_raises_invalid_token(auth: EmbedAuth, value: Any) -> None:
    refused(auth, value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_tokens_only_raise_invalid_token(
    auth: EmbedAuth, created: CreatedSecret, data: st.DataObject
) -> None:
    token = token_for(auth, created)
    i = data.draw(st.integers(0, len(token) - 1))
    ch = data.draw(st.sampled_from("ABCabc0189-_.=+/ ").filter(lambda c: c != token[i]))
    refused(auth, token[:i] + ch + token[i + 1 :])


# ------------------------------------------------------------------------- ECDSA (RFC 7518 §3.4)


def raw_signature(key: ec.EllipticCurvePrivateKey, alg: str, data: bytes) -> tuple[int, int]:
    """``(r, s)`` of an ECDSA signature over ``data`` made by cryptography (OpenSSL: either S)."""
    return decode_dss_signature(key.sign(data, ec.ECDSA(DIGESTS[alg])))


def jose(r: int, s: int, alg: str) -> bytes:
    _, size, _ = CURVES[alg]
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_group_orders_are_the_curves(alg: str) -> None:
    """(r, n - s) verifies with plain cryptography for the n written down, and jws uses that n."""
    curve, _, order = CURVES[alg]
    key = ec_key(KEY_CURVES_BY_ALG[alg])
    digest = DIGESTS[alg]
    assert order.bit_length() == curve.key_size
    for _ in range(8):
        r, s = raw_signature(key, alg, b"data")
        key.public_key().verify(encode_dss_signature(r, order - s), b"data", ec.ECDSA(digest))
        with pytest.raises(InvalidSignature):
            key.public_key().verify(encode_dss_signature(r, order - s + 1), b"data", ec.ECDSA(digest))
    assert jws._ECDSA[alg].order == order


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_both_spellings_verify_without_low_s_only(alg: str) -> None:
    """What client assertions get: (r, s) and (r, n - s) are both good signatures."""
    key = ec_key(KEY_CURVES_BY_ALG[alg])
    _, _, order = CURVES[alg]
    verify = jws.verifier(alg, key.public_key())
    r, s = raw_signature(key, alg, b"data")
    assert verify(jose(r, s, alg), b"data")
    assert verify(jose(r, order - s, alg), b"data")
    assert not verify(jose(r, s, alg), b"other data")
    assert not verify(jose(r, s, alg)[:-1], b"data")  # the raw signature is exactly 2 x size bytes
    assert not verify(jose(r, s, alg) + b"\x00", b"data")


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_low_s_only_refuses_the_high_spelling_before_checking_it(alg: str) -> None:
    key = ec_key(KEY_CURVES_BY_ALG[alg])
    _, _, order = CURVES[alg]
    verify = jws.verifier(alg, key.public_key(), low_s_only=True)
    r, s = raw_signature(key, alg, b"data")
    low, high = min(s, order - s), max(s, order - s)
    assert verify(jose(r, low, alg), b"data")
    with pytest.raises(jws.Refused) as caught:
        verify(jose(r, high, alg), b"data")
    assert caught.value.reason == "high-S ECDSA signature"
    # The refusal looks at s alone: a high s over the wrong data, or with a garbage r, is refused
    # the same way, before any curve arithmetic.
    for signature, data in ((jose(r, high, alg), b"other"), (jose(1, order // 2 + 1, alg), b"data")):
        with pytest.raises(jws.Refused) as caught:
            verify(signature, data)
        assert caught.value.reason == "high-S ECDSA signature"
    # s = n/2 (rounded down) is the largest low s: a bad signature, but not refused for its S
    assert verify(jose(r, order // 2, alg), b"data") is False
    assert verify(jose(r, low, alg), b"other") is False


@pytest.mark.rfc("7518", "3.4")
def test_low_s_only_changes_nothing_for_other_algorithms() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    for alg, key in (("RS256", rsa_key), ("PS256", rsa_key), ("EdDSA", ed_key)):
        token = jwt.encode({"a": 1}, key, algorithm=alg)
        compact = jws.parse(token, max_bytes=8192)
        for low_s_only in (False, True):
            verify = jws.verifier(alg, key.public_key(), low_s_only=low_s_only)
            assert verify(compact.signature, compact.signing_input)
            assert not verify(compact.signature, compact.signing_input + b"x")


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
@pytest.mark.parametrize("key_name", ["p256", "p384", "p521"])
def test_an_ecdsa_algorithm_needs_a_key_on_exactly_its_curve(alg: str, key_name: str) -> None:
    key = ec_key(key_name).public_key()
    if KEY_CURVES[key_name] == alg:
        jws.verifier(alg, key)  # fits
        return
    for low_s_only in (False, True):
        with pytest.raises(jws.Refused) as caught:
            jws.verifier(alg, key, low_s_only=low_s_only)
        assert caught.value.reason == f"algorithm {alg} does not fit the key"


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.parametrize("alg", ["ES384", "ES512"])
def test_es384_and_es512_signed_by_pyjwt_verify(alg: str) -> None:
    key = ec_key(KEY_CURVES_BY_ALG[alg])
    token = jwt.encode({"sub": "x"}, key, algorithm=alg)
    compact = jws.parse(token, max_bytes=8192)
    assert len(compact.signature) == {"ES384": 96, "ES512": 132}[alg]
    assert jws.verifier(alg, key.public_key())(compact.signature, compact.signing_input)
    assert jws.verifier(alg, key.public_key())(
        jws.b64decode(flip_s(token, alg).rsplit(".")[2]), compact.signing_input
    )
    other = ec_key(KEY_CURVES_BY_ALG[alg] + "-other").public_key()
    assert not jws.verifier(alg, other)(compact.signature, compact.signing_input)


@pytest.mark.rfc("7518", "3.4")
@settings(max_examples=60, deadline=None)
@given(
    claims=st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=20)), max_size=5),
    alg=st.sampled_from(["ES256", "ES384", "ES512"]),
)
def test_sign_gives_low_s_signatures_any_library_verifies(claims: dict[str, Any], alg: str) -> None:
    key = ec_key(KEY_CURVES_BY_ALG[alg])
    token = jws.sign(claims, key, alg, {"typ": "at+jwt", "kid": "k"})
    assert is_low_s(token, alg)
    # The signature is what is checked here: the generated claims are not a token's (an "nbf" may be
    # text), so PyJWT's claim checks are off, its signature check on.
    no_claim_checks: jwt.types.Options = {
        "verify_aud": False,
        "verify_exp": False,
        "verify_iat": False,
        "verify_iss": False,
        "verify_jti": False,
        "verify_nbf": False,
        "verify_sub": False,
    }
    assert jwt.decode(token, key.public_key(), algorithms=[alg], options=no_claim_checks) == claims
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": "k", "typ": "at+jwt"}
    compact = jws.parse(token, max_bytes=1 << 16)
    assert jws.verifier(alg, key.public_key(), low_s_only=True)(compact.signature, compact.signing_input)


def test_sign_leaves_other_algorithms_as_pyjwt_signs_them() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    secret = b"s" * 32
    headers = {"typ": "at+jwt", "kid": "k"}
    for alg, key in (("RS256", rsa_key), ("EdDSA", ed_key), ("HS256", secret)):  # all deterministic
        assert jws.sign({"a": 1}, key, alg, headers) == jwt.encode(
            {"a": 1}, key, algorithm=alg, headers=headers
        )


_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.mark.rfc("7515", "2")
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_B64URL, min_size=1, max_size=90), st.binary(max_size=70))
def test_a_signature_segment_passes_only_in_its_one_canonical_spelling(text: str, data: bytes) -> None:
    """``parse``'s cheap check (the last character, by the length modulo 4) decides exactly as
    decoding and encoding again would: a segment is accepted iff it is the canonical unpadded
    base64url of its bytes (RFC 7515 §2, RFC 4648 §3.5). Checked on arbitrary text and on the
    encodings of arbitrary bytes."""
    header = b64e({"alg": "ES256", "typ": "at+jwt", "kid": "k"})
    for segment in (text, jws.b64encode(data) or "A"):
        token = f"{header}.{b64e({'sub': 's'})}.{segment}"
        canonical = len(segment) % 4 != 1 and jws.b64encode(jws.b64decode(segment)) == segment
        if canonical:
            assert jws.parse(token, max_bytes=4096).signature == jws.b64decode(segment)
        else:
            with pytest.raises(jws.Refused) as refusal:
                jws.parse(token, max_bytes=4096)
            assert refusal.value.reason in {"bad base64url length", "non-canonical signature encoding"}

"""Strict compact JWS reading: hostile tokens (self-supplied keys, tampering, size, random bytes)."""

from __future__ import annotations

import json
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedauth import EmbedAuth
from embedauth.models import CreatedSecret
from tests.tokens.helpers import b64e, refused, segments, token_for


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

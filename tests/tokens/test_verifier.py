"""Access-token verification: the principal, algorithm confusion, claims, leeway, typ, the cache."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret, Principal
from embedauth.tokens import jws
from tests.tokens.helpers import b64e, make_auth, refused, segments, token_for


def test_verify_gives_the_principal(auth: EmbedAuth, created: CreatedSecret) -> None:
    principal = auth.verify(token_for(auth, created, scope="devices:read"))
    assert isinstance(principal, Principal)
    assert principal.subject == principal.client_id == created.client_id
    assert principal.tenant == "site-1"
    assert principal.scopes == {"devices:read"}
    assert str(principal.customer_scope) == "groups:g1"
    assert principal.credential_id == created.credential.id
    assert principal.has_scopes("devices:read") and not principal.has_scopes("devices:write")
    with pytest.raises(TypeError):
        principal.claims["scope"] = "devices:write"  # type: ignore[index]


# ------------------------------------------------------------------------- hostile tokens


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64e(header)}.{b64e(claims)}.{b64e(signature)}"


@pytest.mark.rfc("8725", "3.1")
def test_alg_none_is_refused(auth: EmbedAuth, created: CreatedSecret) -> None:
    header, claims, _ = segments(token_for(auth, created))
    refused(auth, forge(header | {"alg": "none"}, claims) + "")
    refused(auth, f"{b64e(header | {'alg': 'none'})}.{b64e(claims)}.")


@pytest.mark.rfc("8725", "2.1")
def test_hs256_keyed_with_the_public_key_is_refused(auth: EmbedAuth, created: CreatedSecret) -> None:
    header, claims, _ = segments(token_for(auth, created))
    public_pem = jwt.PyJWK(auth.jwks()["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for key in (public_pem, json.dumps(auth.jwks()["keys"][0]).encode()):
        forged_header = b64e(header | {"alg": "HS256"})
        body = b64e(claims)
        mac = hmac.new(key, f"{forged_header}.{body}".encode(), hashlib.sha256).digest()
        refused(auth, f"{forged_header}.{body}.{b64e(mac)}")


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "https://evil.example"},
        {"aud": "https://other.example"},
        {"aud": ["https://other.example"]},
        {"exp": "soon"},
        {"exp": None},
        {"exp": True},
        {"iat": 1e400},
        {"sub": None},
        {"jti": 5},
        {"client_id": None},
        {"scope": ["devices:read"]},
        {"customer_scope": "everyone"},
    ],
)
def test_claims_that_do_not_check_out_are_refused(
    auth: EmbedAuth, created: CreatedSecret, changes: dict[str, Any]
) -> None:
    """Signed with the real key (as a key compromise or a bug elsewhere would), still refused."""
    header, claims, _ = segments(token_for(auth, created))
    _, private_key = auth.keys.signing_key()
    claims = {k: v for k, v in (claims | changes).items() if v is not None}
    refused(auth, jws.sign(claims, private_key, header["alg"], header))


def test_audience_list_and_extra_audiences(clock: FrozenClock) -> None:
    auth = make_auth(clock, audiences=("https://api.example.com/devices", "https://other"))
    made = auth.registrations.create(tenant="t", name="n")
    token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
    assert segments(token)[1]["aud"] == "https://api.example.com/devices"
    assert auth.verify(token)
    header, claims, _ = segments(token)
    _, private_key = auth.keys.signing_key()
    assert auth.verify(jws.sign(claims | {"aud": ["x", "https://other"]}, private_key, header["alg"], header))


def test_expiry_and_not_before_with_leeway(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    token = token_for(auth, created)
    clock.advance(3600 + 29)
    assert auth.verify(token)  # within the 30 s leeway (and now from the cache)
    clock.advance(1)
    refused(auth, token)
    fresh = make_auth(clock)  # no cache: the same answer from a first look
    fresh.storage = auth.storage
    header, claims, _ = segments(token_for(auth, created))
    _, private_key = auth.keys.signing_key()
    refused(auth, jws.sign(claims | {"nbf": claims["iat"] + 31}, private_key, header["alg"], header))
    refused(auth, jws.sign(claims | {"iat": claims["iat"] + 31}, private_key, header["alg"], header))
    assert auth.verify(jws.sign(claims | {"nbf": claims["iat"] + 29}, private_key, header["alg"], header))


def test_a_client_assertion_is_not_an_access_token(auth: EmbedAuth, created: CreatedSecret) -> None:
    header, claims, _ = segments(token_for(auth, created))
    _, private_key = auth.keys.signing_key()
    for typ in ("JWT", None, "at+JWT+x"):
        forged_header = {k: v for k, v in (header | {"typ": typ}).items() if v is not None}
        refused(auth, jws.sign(claims, private_key, header["alg"], forged_header))


# ------------------------------------------------------------------------- the cache


def test_cache_hit_still_checks_revocation_and_expiry(auth: EmbedAuth, created: CreatedSecret) -> None:
    token = token_for(auth, created)
    calls = count_signature_checks(auth)
    for _ in range(5):
        auth.verify(token)
    assert calls() == 1
    auth.registrations.disable(created.client_id)
    refused(auth, token)


def test_cache_can_be_turned_off(auth: EmbedAuth, created: CreatedSecret) -> None:
    uncached = auth.with_settings(token_cache_size=0)
    token = token_for(uncached, created)
    calls = count_signature_checks(uncached)
    for _ in range(3):
        uncached.verify(token)
    assert calls() == 3


def test_cache_is_bounded(clock: FrozenClock) -> None:
    auth = make_auth(clock, token_cache_size=10)
    made = auth.registrations.create(tenant="t", name="n")
    for _ in range(50):
        auth.verify(auth.tokens.client_credentials(made.client_id, made.client_secret).access_token)
    assert auth.tokens._verifier.cache_size() == 10


def count_signature_checks(auth: EmbedAuth) -> Any:
    key, _ = auth.keys.signing_key()
    calls = [0]
    original = key.verify

    def counting(signature: bytes, data: bytes) -> bool:
        calls[0] += 1
        return original(signature, data)

    object.__setattr__(key, "verify", counting)
    return lambda: calls[0]

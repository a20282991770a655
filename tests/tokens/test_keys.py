"""The signing key ring: JWKS, rotation with overlap, each algorithm, encryption at rest."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from embedauth import ConfigurationError, EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret
from tests.conftest import ISSUER
from tests.tokens.helpers import b64e, make_auth, segments, token_for


@pytest.mark.rfc("9068", "4")
def test_any_jwt_library_verifies_with_the_jwks(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    token = token_for(auth, created)
    [jwk] = auth.jwks()["keys"]
    assert jwk["use"] == "sig" and jwk["alg"] == "RS256" and "d" not in jwk
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["client_id"] == created.client_id


def test_key_rotation_with_overlap(auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock) -> None:
    before = token_for(auth, created)
    [old] = auth.jwks()["keys"]
    new_record = auth.keys.rotate()
    kids = {k["kid"] for k in auth.jwks()["keys"]}
    assert kids == {old["kid"], new_record.kid}  # published before it signs
    assert segments(token_for(auth, created))[0]["kid"] == old["kid"]
    clock.advance(600)
    after = token_for(auth, created)
    assert segments(after)[0]["kid"] == new_record.kid
    assert auth.verify(before) and auth.verify(after)
    clock.advance(3600 + 30 - 1)
    assert {k["kid"] for k in auth.jwks()["keys"]} == {old["kid"], new_record.kid}
    clock.advance(1)
    assert [k["kid"] for k in auth.jwks()["keys"]] == [new_record.kid]


def test_other_process_learns_the_new_key(clock: FrozenClock) -> None:
    issuer = make_auth(clock)
    made = issuer.registrations.create(tenant="t", name="n")
    verifier = EmbedAuth(issuer.storage, clock=clock, issuer=ISSUER)
    assert verifier.verify(issuer.tokens.client_credentials(made.client_id, made.client_secret).access_token)
    issuer.keys.rotate()
    clock.advance(600)
    assert verifier.verify(issuer.tokens.client_credentials(made.client_id, made.client_secret).access_token)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "RS256"])
def test_each_algorithm(clock: FrozenClock, algorithm: str) -> None:
    auth = make_auth(clock, signing_algorithm=algorithm)
    made = auth.registrations.create(tenant="t", name="n")
    token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
    header, _, _ = segments(token)
    assert header["alg"] == algorithm
    assert auth.verify(token).client_id == made.client_id
    jwk = auth.jwks()["keys"][0]
    decoded = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=[algorithm],
        audience=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert decoded["jti"]


def test_hs256_only_when_asked_for(clock: FrozenClock) -> None:
    with pytest.raises(ConfigurationError):
        make_auth(clock, signing_algorithm="HS256")
    auth = make_auth(clock, signing_algorithm="HS256", algorithms=("HS256",))
    made = auth.registrations.create(tenant="t", name="n")
    token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
    assert auth.verify(token)
    assert auth.jwks() == {"keys": []}


def test_unencrypted_keys_are_warned_about(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    auth = make_auth(clock)
    auth.keys.rotate()
    assert "stored unencrypted" in caplog.text
    caplog.clear()
    make_auth(clock, key_encryption_key=b64e(bytes(32))).keys.rotate()
    assert "unencrypted" not in caplog.text


def test_private_keys_encrypted_at_rest(clock: FrozenClock) -> None:
    kek = b64e(bytes(range(32)))
    auth = make_auth(clock, key_encryption_key=kek)
    made = auth.registrations.create(tenant="t", name="n")
    token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
    [record] = auth.storage.list_signing_keys()
    assert record.encrypted
    with pytest.raises(ValueError, match=r"(?i)key|der|asn1|parse"):
        serialization.load_der_private_key(record.private_key, None)
    wrong = EmbedAuth(auth.storage, clock=clock, issuer=ISSUER, key_encryption_key=b64e(bytes(32)))
    assert wrong.verify(token)  # verifying needs only the public key
    with pytest.raises(ConfigurationError, match="wrong key_encryption_key"):
        wrong.tokens.client_credentials(made.client_id, made.client_secret)
    with pytest.raises(ConfigurationError, match="set key_encryption_key"):
        EmbedAuth(auth.storage, clock=clock, issuer=ISSUER).tokens.client_credentials(
            made.client_id, made.client_secret
        )
    with pytest.raises(ConfigurationError):
        make_auth(clock, key_encryption_key="too-short")

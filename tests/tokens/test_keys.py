"""The signing key ring: JWKS, rotation with overlap, each algorithm, encryption at rest."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from embedauth import ConfigurationError, EmbedAuth, InvalidToken, NotFound
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret
from embedauth.storage.memory import MemoryStorage
from tests.conftest import ISSUER, TEST_SETTINGS
from tests.tokens.helpers import b64e, make_auth, segments, token_for


@pytest.mark.rfc("9068", "4")
def test_any_jwt_library_verifies_with_the_jwks(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    token = token_for(auth, created)
    [jwk] = auth.jwks()["keys"]
    assert jwk["use"] == "sig" and jwk["alg"] == "ES256" and "d" not in jwk
    claims = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
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
    token = issuer.tokens.client_credentials(made.client_id, made.client_secret).access_token
    # The unknown kid starts a re-read of the ring in the background (never a wait on storage):
    # refused until it lands, at most a second after the verifier's last read, then accepted.
    deadline = time.monotonic() + 3
    while True:
        try:
            assert verifier.verify(token)
            break
        except InvalidToken:
            assert time.monotonic() < deadline, "the new key was not learned within 3 s"
            time.sleep(0.05)


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


def test_keys_are_encrypted_by_default(clock: FrozenClock, tmp_path: Path) -> None:
    """memory:// and SQLite encrypt without being told; a network store without a key refuses."""
    no_kek = {k: v for k, v in TEST_SETTINGS.items() if k != "key_encryption_key"}
    memory = EmbedAuth("memory://", clock=clock, issuer=ISSUER, **no_kek)
    assert memory.keys.rotate().encrypted
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    with EmbedAuth(url, clock=clock, issuer=ISSUER, **no_kek) as sqlite:
        assert sqlite.keys.rotate().encrypted
    kek_file = tmp_path / "keys.db.kek"
    assert kek_file.stat().st_mode & 0o777 == 0o600
    with EmbedAuth(url, clock=clock, issuer=ISSUER, **no_kek) as again:  # the same file, the same key
        made = again.registrations.create(tenant="t", name="n")
        assert again.tokens.client_credentials(made.client_id, made.client_secret)
    network = MemoryStorage("postgresql://db.example/embedauth", clock=clock)  # what the policy reads
    with pytest.raises(ConfigurationError, match="generate-kek"):
        EmbedAuth(network, clock=clock, issuer=ISSUER, **no_kek).keys.rotate()
    assert network.list_signing_keys() == []


def test_unencrypted_keys_only_when_allowed(clock: FrozenClock, caplog: pytest.LogCaptureFixture) -> None:
    no_kek = {k: v for k, v in TEST_SETTINGS.items() if k != "key_encryption_key"}
    network = MemoryStorage("redis://cache.example/0", clock=clock)
    allowed = EmbedAuth(network, clock=clock, issuer=ISSUER, allow_unencrypted_keys=True, **no_kek)
    assert not allowed.keys.rotate().encrypted
    assert "UNENCRYPTED" in caplog.text


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
    no_kek = {k: v for k, v in TEST_SETTINGS.items() if k != "key_encryption_key"}
    network = MemoryStorage("postgresql://db.example/embedauth", clock=clock)
    network.add_signing_key(record)
    network.create_registration(auth.registrations.get(made.client_id))
    with pytest.raises(ConfigurationError, match="set key_encryption_key"):
        EmbedAuth(network, clock=clock, issuer=ISSUER, **no_kek).tokens.client_credentials(
            made.client_id, made.client_secret
        )
    with pytest.raises(ConfigurationError):
        make_auth(clock, key_encryption_key="too-short")


def test_a_leaked_key_is_withdrawn_everywhere(clock: FrozenClock) -> None:
    """Its tokens are refused by every process, it leaves the JWKS, and a new key signs at once."""
    issuer = make_auth(clock)
    made = issuer.registrations.create(tenant="t", name="n")
    token = token_for(issuer, made)
    leaked = segments(token)[0]["kid"]
    other = EmbedAuth(issuer.storage, clock=clock, issuer=ISSUER, **TEST_SETTINGS)
    assert other.verify(token)
    withdrawn = issuer.keys.withdraw(leaked)
    assert withdrawn.kid == leaked
    with pytest.raises(InvalidToken):
        issuer.verify(token)
    other.revocations.sync()  # what the feed delivers within a second
    with pytest.raises(InvalidToken):
        other.verify(token)  # refused although the token was cached there
    assert leaked not in {key["kid"] for key in issuer.jwks()["keys"]}
    fresh = token_for(issuer, made)
    assert segments(fresh)[0]["kid"] != leaked
    assert issuer.verify(fresh)
    deadline = time.monotonic() + 3  # the other process learns the new key in the background
    while not verifies(other, fresh):
        assert time.monotonic() < deadline, "the new key was not learned within 3 s"
        time.sleep(0.05)
    with pytest.raises(NotFound):
        issuer.keys.withdraw(leaked)


def verifies(auth: EmbedAuth, token: str) -> bool:
    try:
        auth.verify(token)
    except InvalidToken:
        return False
    return True


def test_a_verifier_forgets_a_key_deleted_from_storage(clock: FrozenClock) -> None:
    """A verifier-only process re-reads the ring in the background, so a key deleted from storage
    (by hand, after a leak) stops verifying there too, without any token naming a new kid."""
    issuer = make_auth(clock)
    made = issuer.registrations.create(tenant="t", name="n")
    token = token_for(issuer, made)
    verifier = EmbedAuth(issuer.storage, clock=clock, issuer=ISSUER, key_reload_interval=0.2, **TEST_SETTINGS)
    fresh = token_for(issuer, made)
    assert verifier.verify(token)  # cached there now
    issuer.storage.delete_signing_key(segments(token)[0]["kid"])
    deadline = time.monotonic() + 5
    while verifies(verifier, fresh) or verifies(verifier, token):  # a cached token too
        assert time.monotonic() < deadline, "the deleted key kept verifying"
        time.sleep(0.05)

"""Access tokens: the grants, RFC 9068 claims, verification, hostile tokens, revocation, key rotation."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedauth import (
    ConfigurationError,
    EmbedAuth,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    InvalidToken,
    UnauthorizedClient,
)
from embedauth.clock import FrozenClock, utcnow
from embedauth.hooks import hookimpl
from embedauth.models import CreatedSecret, Principal
from tests.conftest import FAST_HASHING, ISSUER, Recorder, last_changed


class ExpiryRecorder:
    def __init__(self) -> None:
        self.events: list[int] = []

    @hookimpl
    def embedauth_credential_expiring(self, registration: Any, credential: Any, days_left: int) -> None:
        self.events.append(days_left)


def test_credentials_near_expiry_are_reported(clock: FrozenClock) -> None:
    recorder = ExpiryRecorder()
    with EmbedAuth("memory://", clock=clock, issuer=ISSUER, plugins=[recorder], **FAST_HASHING) as auth:
        made = auth.registrations.create(
            tenant="t", name="n", secret_expires_at=utcnow(clock) + timedelta(days=40)
        )

        def use() -> None:
            with contextlib.suppress(InvalidClient):  # the last uses present an expired secret
                auth.tokens.client_credentials(made.client_id, made.client_secret)

        use()
        clock.advance(15 * 86400)  # 25 days left
        use()
        use()
        clock.advance(19 * 86400)  # 6 days left
        use()
        clock.advance(7 * 86400)  # expired
        use()
        use()
        assert recorder.events == [25, 6, -1]  # once per threshold: 30, 7, expired


class ExtraClaims:
    @hookimpl
    def embedauth_extra_claims(self, subject: str, client_id: str | None, scopes: Any) -> dict[str, Any]:
        return {"plan": "gold", "sub": "attacker", "scope": "everything"}


def make_auth(clock: FrozenClock, url: str = "memory://", **settings: Any) -> EmbedAuth:
    return EmbedAuth(url, clock=clock, issuer=ISSUER, **(FAST_HASHING | settings))


@pytest.fixture
def created(auth: EmbedAuth) -> CreatedSecret:
    return auth.registrations.create(
        tenant="site-1", name="Backup", scopes=["devices:read", "devices:write"], customer_scope="groups:g1"
    )


def token_for(auth: EmbedAuth, created: CreatedSecret, scope: str | None = None) -> str:
    return auth.tokens.client_credentials(created.client_id, created.client_secret, scope=scope).access_token


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(b64d(header)), json.loads(b64d(payload)), signature


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64e(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refused(auth: EmbedAuth, token: Any) -> None:
    with pytest.raises(InvalidToken) as caught:
        auth.verify(token)
    assert str(caught.value) == "invalid token"


# ------------------------------------------------------------------------- issuing


@pytest.mark.rfc("9068", "2.2")
def test_client_credentials_token(auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock) -> None:
    response = auth.tokens.client_credentials(created.client_id, created.client_secret)
    assert (response.token_type, response.expires_in, response.scope) == (
        "Bearer",
        3600,
        "devices:read devices:write",
    )
    assert response.refresh_token is None
    assert created.client_secret not in repr(response) and response.access_token not in repr(response)
    header, claims, _ = segments(response.access_token)
    [key] = auth.jwks()["keys"]
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": key["kid"]}
    now = int(clock())
    assert claims == {
        "iss": ISSUER,
        "sub": created.client_id,
        "aud": ISSUER,
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "jti": claims["jti"],
        "client_id": created.client_id,
        "scope": "devices:read devices:write",
        "tenant": "site-1",
        "customer_scope": "groups:g1",
        "cred": created.credential.id,
    }
    assert response.to_json() == {
        "access_token": response.access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "devices:read devices:write",
    }


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


@pytest.mark.rfc("6749", "3.3")
def test_scope_subset_and_refusals(auth: EmbedAuth, created: CreatedSecret) -> None:
    assert auth.tokens.client_credentials(
        created.client_id, created.client_secret, scope="devices:write"
    ).scope == ("devices:write")
    with pytest.raises(InvalidScope, match="users:read"):
        auth.tokens.client_credentials(
            created.client_id, created.client_secret, scope="devices:read users:read"
        )
    with pytest.raises(InvalidScope):
        auth.tokens.client_credentials(created.client_id, created.client_secret, scope="devices:read  bad")


@pytest.mark.rfc("6749", "5.2")
def test_unknown_client_and_wrong_secret_answer_the_same(
    auth: EmbedAuth, created: CreatedSecret, recorder: Recorder
) -> None:
    other = auth.registrations.create(tenant="site-1", name="Other")
    attempts = [
        (created.client_id, other.client_secret),
        ("00000000-0000-4000-8000-000000000000", created.client_secret),
        (created.client_id, last_changed(created.client_secret)),
        (created.client_id, "hunter2"),
    ]
    for client_id, secret in attempts:
        with pytest.raises(InvalidClient) as caught:
            auth.tokens.client_credentials(client_id, secret)
        assert caught.value.body() == {
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }
    assert [reason for _, reason in recorder.denied] == ["unknown client or wrong secret"] * 4


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("disable", "the registration is disabled"),
        ("expire_registration", "the registration has expired"),
        ("expire_secret", "the client secret has expired"),
    ],
)
def test_unusable_after_authentication_says_why(
    auth: EmbedAuth, clock: FrozenClock, change: str, reason: str
) -> None:
    now = utcnow(clock)
    made = auth.registrations.create(
        tenant="site-1",
        name="Job",
        secret_expires_at=now + timedelta(days=2),
        expires_at=now + timedelta(days=1),
    )
    if change == "disable":
        auth.registrations.disable(made.client_id)
    elif change == "expire_registration":
        clock.advance(86400)
    else:
        auth.registrations.renew(made.client_id, days=10)
        clock.advance(2 * 86400)
    with pytest.raises(InvalidClient, match=reason):
        auth.tokens.client_credentials(made.client_id, made.client_secret)


def test_last_used_is_recorded_at_most_once_a_minute(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    first = utcnow(clock)
    token_for(auth, created)
    assert auth.registrations.get(created.client_id).last_used_at == first
    clock.advance(30)
    token_for(auth, created)
    assert auth.registrations.get(created.client_id).last_used_at == first
    clock.advance(31)
    token_for(auth, created)
    assert auth.registrations.get(created.client_id).last_used_at == utcnow(clock)


def test_hooks_see_issue_and_extra_claims(clock: FrozenClock, recorder: Recorder) -> None:
    with EmbedAuth(
        "memory://", clock=clock, issuer=ISSUER, plugins=[recorder, ExtraClaims()], **FAST_HASHING
    ) as auth:
        made = auth.registrations.create(tenant="t", name="n")
        token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
        _, claims, _ = segments(token)
        assert claims["plan"] == "gold"
        assert claims["sub"] == made.client_id and claims["scope"] == ""
        assert recorder.issued == [claims["jti"]]


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
    refused(auth, jwt.encode(claims, private_key, algorithm="RS256", headers=header))


def test_audience_list_and_extra_audiences(clock: FrozenClock) -> None:
    auth = make_auth(clock, audiences=("https://api.example.com/devices", "https://other"))
    made = auth.registrations.create(tenant="t", name="n")
    token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
    assert segments(token)[1]["aud"] == "https://api.example.com/devices"
    assert auth.verify(token)
    header, claims, _ = segments(token)
    _, private_key = auth.keys.signing_key()
    assert auth.verify(
        jwt.encode(claims | {"aud": ["x", "https://other"]}, private_key, algorithm="RS256", headers=header)
    )


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
    refused(
        auth, jwt.encode(claims | {"nbf": claims["iat"] + 31}, private_key, algorithm="RS256", headers=header)
    )
    refused(
        auth, jwt.encode(claims | {"iat": claims["iat"] + 31}, private_key, algorithm="RS256", headers=header)
    )
    assert auth.verify(
        jwt.encode(claims | {"nbf": claims["iat"] + 29}, private_key, algorithm="RS256", headers=header)
    )


def test_a_client_assertion_is_not_an_access_token(auth: EmbedAuth, created: CreatedSecret) -> None:
    header, claims, _ = segments(token_for(auth, created))
    _, private_key = auth.keys.signing_key()
    for typ in ("JWT", None, "at+JWT+x"):
        forged_header = {k: v for k, v in (header | {"typ": typ}).items() if v is not None}
        refused(auth, jwt.encode(claims, private_key, algorithm="RS256", headers=forged_header))


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


# ------------------------------------------------------------------------- revocation at once


@pytest.mark.parametrize("action", ["disable", "delete", "rotate_secret", "delete_secret"])
def test_revocation_is_immediate(auth: EmbedAuth, created: CreatedSecret, action: str) -> None:
    tokens = [token_for(auth, created) for _ in range(2)]
    auth.verify(tokens[0])  # one of them cached
    if action == "delete_secret":
        auth.registrations.add_secret(created.client_id)
        auth.registrations.delete_secret(created.client_id, created.credential.id)
    else:
        getattr(auth.registrations, action)(created.client_id)
    for token in tokens:
        refused(auth, token)


def test_tokens_issued_after_rotation_or_enable_work(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    rotated = auth.registrations.rotate_secret(created.client_id)
    clock.advance(1)
    assert auth.verify(auth.tokens.client_credentials(created.client_id, rotated.client_secret).access_token)
    auth.registrations.disable(created.client_id)
    auth.registrations.enable(created.client_id)
    clock.advance(1)
    assert auth.verify(auth.tokens.client_credentials(created.client_id, rotated.client_secret).access_token)


@pytest.mark.rfc("7009", "2.1")
def test_revoke_access_token(auth: EmbedAuth, created: CreatedSecret) -> None:
    token, other = token_for(auth, created), token_for(auth, created)
    auth.verify(token)
    auth.tokens.revoke(token)
    refused(auth, token)
    assert auth.verify(other)  # only that one
    auth.tokens.revoke("not a token")  # ignored, RFC 7009 §2.2


@pytest.mark.rfc("7009", "2.1")
def test_revoking_another_clients_token_is_refused(auth: EmbedAuth, created: CreatedSecret) -> None:
    token = token_for(auth, created)
    with pytest.raises(UnauthorizedClient):
        auth.tokens.revoke(token, client_id="someone-else")
    assert auth.verify(token)
    auth.tokens.revoke(token, client_id=created.client_id)
    refused(auth, token)


def test_revocation_entries_expire_with_the_tokens(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    auth.registrations.disable(created.client_id)
    assert auth.revocations._clients
    clock.advance(3600 + 31)
    auth.revocations.sync()
    assert not auth.revocations._clients


# ------------------------------------------------------------------------- refresh tokens


@pytest.mark.rfc("6749", "6")
def test_refresh_token_grant(auth: EmbedAuth, clock: FrozenClock) -> None:
    made = auth.refresh_tokens.create("alice", scopes=["devices:read", "users:read"], tenant="site-1")
    assert made.refresh_token.startswith("ear_") and made.refresh_token not in repr(made)
    response = auth.tokens.refresh(made.refresh_token)
    assert response.refresh_token == made.refresh_token
    assert response.scope == "devices:read users:read"
    principal = auth.verify(response.access_token)
    assert (principal.subject, principal.tenant, principal.credential_id) == ("alice", "site-1", made.id)
    assert auth.tokens.refresh(made.refresh_token, scope="users:read").scope == "users:read"
    with pytest.raises(InvalidScope):
        auth.tokens.refresh(made.refresh_token, scope="devices:write")
    [listed] = auth.refresh_tokens.list("alice")
    assert listed.last_used_at == utcnow(clock) and listed.revoked_at is None


def test_unlimited_refresh_token_gets_the_catalog(auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("bob")
    assert auth.tokens.refresh(made.refresh_token).scope == "devices:read devices:write users:read"


@pytest.mark.rfc("6749", "5.2")
def test_bad_refresh_tokens_are_invalid_grant(auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice")
    for bad in ("ear_nope", last_changed(made.refresh_token), "eas_" + made.refresh_token[4:]):
        with pytest.raises(InvalidGrant) as caught:
            auth.tokens.refresh(bad)
        assert caught.value.status == 400 and caught.value.error == "invalid_grant"


def test_revoked_refresh_token_and_its_access_tokens(auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice")
    access = auth.tokens.refresh(made.refresh_token).access_token
    auth.verify(access)
    auth.refresh_tokens.revoke(made.id)
    refused(auth, access)
    with pytest.raises(InvalidGrant, match="revoked"):
        auth.tokens.refresh(made.refresh_token)
    assert auth.refresh_tokens.list("alice")[0].revoked_at is not None


def test_refresh_token_revoked_by_presenting_it(auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice")
    auth.tokens.revoke(made.refresh_token)
    with pytest.raises(InvalidGrant):
        auth.tokens.refresh(made.refresh_token)


def test_refresh_token_revoked_after_a_year_unused(auth: EmbedAuth, clock: FrozenClock) -> None:
    made = auth.refresh_tokens.create("alice")
    clock.advance(364 * 86400)
    auth.tokens.refresh(made.refresh_token)  # used: the year starts again
    clock.advance(365 * 86400)
    auth.tokens.refresh(made.refresh_token)
    clock.advance(365 * 86400 + 1)
    with pytest.raises(InvalidGrant, match="revoked"):
        auth.tokens.refresh(made.refresh_token)
    assert auth.refresh_tokens.get(made.id).revoked_at is not None


# ------------------------------------------------------------------------- keys


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

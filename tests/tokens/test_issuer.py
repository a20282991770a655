"""The grants that issue access tokens (``auth.tokens``): RFC 9068 claims, scopes, hooks, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from embedauth import EmbedAuth, InvalidScope, UnauthorizedClient
from embedauth.clock import FrozenClock, utcnow
from embedauth.hooks import hookimpl
from embedauth.models import CreatedSecret
from tests.conftest import ISSUER, TEST_SETTINGS, Recorder
from tests.tokens.helpers import refused, segments, token_for


class ExtraClaims:
    @hookimpl
    def embedauth_extra_claims(self, subject: str, client_id: str | None, scopes: Any) -> dict[str, Any]:
        return {"plan": "gold", "sub": "attacker", "scope": "everything"}


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
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": key["kid"]}
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
        "gen": 1,
    }
    assert response.to_json() == {
        "access_token": response.access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "devices:read devices:write",
    }


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


def test_hooks_see_issue_and_extra_claims(clock: FrozenClock, recorder: Recorder) -> None:
    with EmbedAuth(
        "memory://", clock=clock, issuer=ISSUER, plugins=[recorder, ExtraClaims()], **TEST_SETTINGS
    ) as auth:
        made = auth.registrations.create(tenant="t", name="n")
        token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
        _, claims, _ = segments(token)
        assert claims["plan"] == "gold"
        assert claims["sub"] == made.client_id and claims["scope"] == ""
        assert recorder.issued == [claims["jti"]]


# ------------------------------------------------------------------------- revoking


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


def test_a_token_never_outlives_its_credential_or_registration(auth: EmbedAuth, clock: FrozenClock) -> None:
    soon = utcnow(clock) + timedelta(minutes=10)
    made = auth.registrations.create(tenant="t", name="n", secret_expires_at=soon)
    response = auth.tokens.client_credentials(made.client_id, made.client_secret)
    assert response.expires_in == 600
    assert auth.verify(response.access_token).expires_at == soon.timestamp()
    later = auth.registrations.create(tenant="t", name="m", expires_at=utcnow(clock) + timedelta(minutes=20))
    assert auth.tokens.client_credentials(later.client_id, later.client_secret).expires_in == 1200

"""A person's API refresh tokens (``auth.refresh_tokens``): the grant, scopes, revocation, idle expiry."""

from __future__ import annotations

import pytest

from embedauth import EmbedAuth, InvalidGrant, InvalidScope
from embedauth.clock import FrozenClock, utcnow
from tests.conftest import last_changed
from tests.tokens.helpers import refused


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
    auth.flush()  # last uses are written behind
    [listed] = auth.refresh_tokens.list("alice")
    assert listed.last_used_at == utcnow(clock) and listed.revoked_at is None


def test_a_refresh_token_without_scopes_gets_the_read_permissions_of_now(auth: EmbedAuth) -> None:
    """Read-only by default, said in its record, and fixed: the catalog growing changes nothing."""
    made = auth.refresh_tokens.create("bob")
    assert made.record.scopes == ("devices:read", "users:read")
    auth.permissions.add("reports:read")
    assert auth.tokens.refresh(made.refresh_token).scope == "devices:read users:read"
    writer = auth.refresh_tokens.create("carol", scopes=["devices:write"])
    assert auth.tokens.refresh(writer.refresh_token).scope == "devices:write"
    assert auth.refresh_tokens.create("dave", scopes=[]).record.scopes == ()


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
    auth.flush()  # (written behind within last_used_interval)
    clock.advance(365 * 86400)
    auth.tokens.refresh(made.refresh_token)
    auth.flush()
    clock.advance(365 * 86400 + 1)
    with pytest.raises(InvalidGrant, match="revoked"):
        auth.tokens.refresh(made.refresh_token)
    assert auth.refresh_tokens.get(made.id).revoked_at is not None


def test_a_refresh_tokens_customer_scope_and_tenant_reach_its_access_tokens(auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create(
        "alice", scopes=["devices:read"], tenant="site-1", customer_scope="groups:g1"
    )
    principal = auth.verify(auth.tokens.refresh(made.refresh_token).access_token)
    assert (principal.tenant, str(principal.customer_scope)) == ("site-1", "groups:g1")
    assert str(auth.refresh_tokens.get(made.id).customer_scope) == "groups:g1"
    everyone = auth.refresh_tokens.create("bob", scopes=["devices:read"])  # no tenant: names none
    principal = auth.verify(auth.tokens.refresh(everyone.refresh_token).access_token)
    assert (principal.tenant, str(principal.customer_scope)) == (None, "all")

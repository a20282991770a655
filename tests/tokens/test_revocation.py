"""Revocation that takes effect at once, and its entries expiring with the tokens they cover."""

from __future__ import annotations

import pytest

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret
from tests.tokens.helpers import refused, token_for


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


def test_revocation_entries_expire_with_the_tokens(
    auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    auth.registrations.disable(created.client_id)
    assert auth.revocations.size() == 1
    clock.advance(3600 + 30 + 5)  # the lifetime, the leeway and the skew margin
    auth.revocations.sync()
    assert auth.revocations.size() == 0

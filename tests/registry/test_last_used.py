"""``last_used_at``, coalesced: written at most once a minute per registration."""

from __future__ import annotations

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock, utcnow
from embedauth.models import CreatedSecret
from tests.tokens.helpers import token_for


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

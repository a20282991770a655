"""Secret rotation with a grace period: the old secret works until the window ends and not a
millisecond after, in every process; without one, it dies at once (the seeds' rule)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from embedauth import EmbedAuth, InvalidClient, InvalidInput
from embedauth.clock import FrozenClock, utcnow
from tests.conftest import catalogued
from tests.registry.processes import tokens_in_processes
from tests.registry.test_lifecycle import MS, at
from tests.tokens.helpers import token_for

GRACE = timedelta(hours=24)


def test_without_grace_the_old_secret_dies_at_once(auth: EmbedAuth, clock: FrozenClock) -> None:
    made = auth.registrations.create(tenant="site-1", name="B")
    old_token = token_for(auth, made)
    auth.registrations.rotate_secret(made.client_id)
    with pytest.raises(InvalidClient):
        token_for(auth, made)
    with pytest.raises(Exception, match="invalid token"):
        auth.verify(old_token)


def test_the_old_secret_works_until_the_grace_ends_and_not_a_millisecond_after(
    auth: EmbedAuth, clock: FrozenClock
) -> None:
    made = auth.registrations.create(tenant="site-1", name="B", scopes=["devices:read"])
    rotated = auth.registrations.rotate_secret(made.client_id, grace=GRACE)
    end = utcnow(clock) + GRACE
    old = next(s for s in rotated.registration.secrets if s.id == made.credential.id)
    assert (old.expires_at, old.replaced_at) == (end, utcnow(clock))
    assert rotated.credential.replaced_at is None
    auth.tokens.client_credentials(rotated.client_id, rotated.client_secret)  # the new one works too
    at(clock, end - MS)
    response = auth.tokens.client_credentials(made.client_id, made.client_secret)
    assert auth.verify(response.access_token).expires_at <= end.timestamp()  # never outlives the grace
    at(clock, end)
    with pytest.raises(InvalidClient, match="the client secret has expired"):
        auth.tokens.client_credentials(made.client_id, made.client_secret)
    auth.tokens.client_credentials(rotated.client_id, rotated.client_secret)


def test_grace_is_bounded_and_never_extends_a_secret(auth: EmbedAuth, clock: FrozenClock) -> None:
    made = auth.registrations.create(
        tenant="site-1", name="B", secret_expires_at=utcnow(clock) + timedelta(hours=2)
    )
    for grace, field in ((timedelta(days=8), "grace"), (timedelta(seconds=-1), "grace")):
        with pytest.raises(InvalidInput) as refused:
            auth.registrations.rotate_secret(made.client_id, grace=grace)
        assert refused.value.field == field
    rotated = auth.registrations.rotate_secret(made.client_id, grace=timedelta(days=7))  # the most allowed
    old = next(s for s in rotated.registration.secrets if s.id == made.credential.id)
    assert old.expires_at == made.credential.expires_at  # its own, earlier end stays
    again = auth.registrations.rotate_secret(rotated.client_id)  # no grace: every earlier one dead now
    assert [s.id for s in again.registration.secrets] == [again.credential.id]


@pytest.mark.parametrize(
    "backend",
    [pytest.param(b, marks=getattr(pytest.mark, b)) for b in ("sqlite", "postgres", "mysql", "redis")],
)
def test_the_grace_ends_at_the_same_millisecond_in_every_process(
    backend: str, fresh_url: str, clock: FrozenClock
) -> None:
    with catalogued(fresh_url, clock) as auth:
        made = auth.registrations.create(tenant="site-1", name="Fleet", scopes=["devices:read"])
        auth.registrations.rotate_secret(made.client_id, grace=timedelta(minutes=10))
        end = utcnow(clock) + timedelta(minutes=10)
    moments = [(end - MS).timestamp() + 0.0001, end.timestamp() + 0.0001, (end + MS).timestamp() + 0.0001]
    answers = tokens_in_processes(fresh_url, moments, made.client_id, made.client_secret)
    assert answers == [["ok", "the client secret has expired", "the client secret has expired"]] * 2

"""Fixtures both adapters' tests use: an EmbedAuth, a registration, and its token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret
from tests.adapters.apps import open_auth


@pytest.fixture
def auth(clock: FrozenClock) -> Iterator[EmbedAuth]:
    with open_auth(clock) as instance:
        yield instance


@pytest.fixture
def created(auth: EmbedAuth) -> CreatedSecret:
    return auth.registrations.create(tenant="site-1", name="Backup", scopes=["devices:read"])


@pytest.fixture
def token(auth: EmbedAuth, created: CreatedSecret) -> str:
    return auth.tokens.client_credentials(created.client_id, created.client_secret).access_token

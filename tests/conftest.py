from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.hooks import hookimpl, make_plugin_manager
from embedauth.models import CreatedSecret
from embedauth.storage import Storage, open_storage
from tests.services import BACKENDS, storage_url

# No per-example deadline: on a loaded machine (CI, parallel sessions) one slow example is not a bug.
settings.register_profile("embedauth", deadline=None)
settings.load_profile("embedauth")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rfc(number, section): the RFC section a test checks")
    config.addinivalue_line("markers", "samples: runs a documentation sample in a fresh virtualenv")
    for backend in BACKENDS:
        config.addinivalue_line("markers", f"{backend}: runs against the {backend} backend")


@pytest.fixture
def clock() -> FrozenClock:
    # A fixed, recent instant: real enough for servers that expire keys, and never moves by itself.
    return FrozenClock(1_790_000_000.0)


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty storage URL of each backend in turn."""
    with storage_url(backend, tmp_path) as url:
        yield url


@pytest.fixture
def storage(fresh_url: str, clock: FrozenClock) -> Iterator[Storage]:
    """An empty backend of each kind in turn, on the test clock."""
    store = open_storage(fresh_url, clock=clock, plugins=make_plugin_manager())
    try:
        yield store
    finally:
        store.close()


def last_changed(text: str) -> str:
    """``text`` with its last character replaced by a different one (never the same string)."""
    return text[:-1] + ("A" if text[-1] != "A" else "B")


# Settings of every test instance. argon2 at its cheapest: the tests exercise the logic, not the work factor
# (tests/credentials/test_secrets.py checks the production parameters separately).
TEST_SETTINGS: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 256,
    # Network stores refuse to create signing keys without one (tests/tokens/test_keys.py checks).
    "key_encryption_key": "ZW1iZWRhdXRoLXRlc3Qta2V5LWVuY3J5cHRpb24ta2U",
    # Tests that present many wrong secrets check rotation, not throttling (test_throttle.py does).
    "failed_auth_limit_per_client": 1000,
    "failed_auth_limit_per_address": 1000,
}


ISSUER = "https://api.example.com"
CATALOG = ("devices:read", "devices:write", "users:read")


class Recorder:
    """A plugin that records refusals (with their reasons) and issued token ids."""

    def __init__(self) -> None:
        self.denied: list[tuple[str | None, str]] = []
        self.issued: list[str] = []

    @hookimpl
    def embedauth_token_denied(self, client_id: str | None, reason: str) -> None:
        self.denied.append((client_id, reason))

    @hookimpl
    def embedauth_token_issued(
        self, client_id: str | None, subject: str, token_id: str, scopes: Any, expires_at: Any
    ) -> None:
        self.issued.append(token_id)


@contextmanager
def catalogued(url: str, clock: FrozenClock, **options: Any) -> Iterator[EmbedAuth]:
    """An EmbedAuth at ``url`` issuing as ``ISSUER``, with the catalog the tests use."""
    with EmbedAuth(url, clock=clock, issuer=ISSUER, **TEST_SETTINGS, **options) as instance:
        for name in CATALOG:
            instance.permissions.add(
                name, description=f"{name} access", access="write" if name.endswith(":write") else "read"
            )
        yield instance


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def auth(clock: FrozenClock, recorder: Recorder) -> Iterator[EmbedAuth]:
    """An EmbedAuth on memory:// with the catalog, reporting to ``recorder``."""
    with catalogued("memory://", clock, plugins=[recorder]) as instance:
        yield instance


@pytest.fixture
def created(auth: EmbedAuth) -> CreatedSecret:
    """A registration of tenant site-1 with two scopes and a customer scope, on ``auth``
    (tests/http and tests/adapters define their own)."""
    return auth.registrations.create(
        tenant="site-1", name="Backup", scopes=["devices:read", "devices:write"], customer_scope="groups:g1"
    )


@pytest.fixture
def backend_auth(fresh_url: str, clock: FrozenClock) -> Iterator[EmbedAuth]:
    """The same on each backend in turn."""
    with catalogued(fresh_url, clock) as instance:
        yield instance

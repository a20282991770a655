"""``GET /healthz``: ready when storage answers and revocations are current; 503 otherwise."""

from __future__ import annotations

from typing import Any

from embedauth import EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.http.health import Health
from embedauth.http.messages import Request
from embedauth.storage.memory import MemoryStorage
from tests.conftest import ISSUER, TEST_SETTINGS


class Switchable(MemoryStorage):
    """A memory store whose ping can be made to fail, through the driver-error translation."""

    driver_errors = (ConnectionRefusedError,)
    up = True

    def ping(self) -> None:
        if not self.up:
            raise ConnectionRefusedError("refused")


def get(health: Health, method: str = "GET") -> tuple[int, dict[str, Any], dict[str, str]]:
    response = health.check(Request(method, f"{ISSUER}/healthz", {}))
    assert isinstance(response.body, dict)
    return response.status, dict(response.body), dict(response.headers)


def test_ready_and_not(clock: FrozenClock) -> None:
    store = Switchable("memory://", clock=clock)
    with EmbedAuth(store, clock=clock, issuer=ISSUER, **TEST_SETTINGS) as auth:
        health = Health(auth)
        status, body, headers = get(health)
        assert status == 200 and body["status"] == "ok" and body["storage"]["reachable"] is True
        assert body["revocations"]["loaded"] is False and headers["Cache-Control"] == "no-store"
        auth.prepare()
        status, body, _ = get(health)
        assert status == 200 and body["revocations"]["loaded"] is True
        assert 0 <= body["revocations"]["age_seconds"] <= 1 and body["revocations"]["max_staleness"] == 30.0
        store.up = False
        status, body, headers = get(health)
        assert status == 503 and body["status"] == "unavailable" and headers["Retry-After"] == "1"
        assert body["storage"] == {"reachable": False, "error": "ConnectionRefusedError"}
        status, _, headers = get(health, "POST")
        assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_stale_revocations_are_not_ready(clock: FrozenClock) -> None:
    with EmbedAuth("memory://", clock=clock, issuer=ISSUER, max_staleness=0.01, **TEST_SETTINGS) as auth:
        auth.prepare()
        auth.revocations.stop()  # nothing keeps the state current any more
        import time

        time.sleep(0.05)
        status, body, _ = get(Health(auth))
        assert status == 503 and body["revocations"]["age_seconds"] > 0.01

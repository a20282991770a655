"""The management API while its storage is down: 503 problem details with ``Retry-After``, within
the storage timeout, never a 500, and answers again by itself once storage is back."""

from __future__ import annotations

import time

import httpx
import pytest

from embedauth.http.management import ADMIN_SCOPE, CATALOG_SCOPE
from tests.faults.helpers import (
    MARGIN,
    SERVE_ENV,
    STORAGE_TIMEOUT,
    Http,
    Traffic,
    admin,
    check_serve,
    report,
    wait_ready,
)
from tests.faults.servers import RedisServer, ServeProcess, wait_until
from tests.faults.test_outages import Serve

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

API = "/admin/api"


def _timed(client: httpx.Client, method: str, path: str, **options: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **options)  # type: ignore[arg-type]
    return response, time.monotonic() - started


@pytest.mark.parametrize("framework", ["starlette", "flask"])
def test_the_management_api_while_redis_is_down(
    redis_server: RedisServer, serve: Serve, framework: str
) -> None:
    url = redis_server.url(prefix="faults")
    served: ServeProcess = serve(url, env=SERVE_ENV, framework=framework)
    with admin(url) as auth:
        for name in (ADMIN_SCOPE, CATALOG_SCOPE):
            auth.permissions.add(name, access="write")
        made = auth.registrations.create(tenant="site-1", name="Admin", scopes=[ADMIN_SCOPE, CATALOG_SCOPE])
    traffic = Traffic()
    with httpx.Client(base_url=served.base_url, timeout=10) as client, Http(served, traffic) as http:
        token = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(made.client_id, made.client_secret),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        before, _ = _timed(client, "GET", f"{API}/registrations", headers=headers)
        assert before.status_code == 200 and before.json()["total"] == 1

        redis_server.kill()
        answers = [
            _timed(client, "GET", f"{API}/registrations", headers=headers),
            _timed(client, "GET", f"{API}/registrations/{made.client_id}", headers=headers),
            _timed(
                client,
                "POST",
                f"{API}/registrations",
                headers=headers,
                json={"tenant": "site-1", "name": "n"},
            ),
            _timed(client, "POST", f"{API}/registrations/{made.client_id}/disable", headers=headers, json={}),
        ]
        for response, elapsed in answers:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "1"
            assert response.json()["status"] == 503
            assert elapsed < STORAGE_TIMEOUT + MARGIN, elapsed

        redis_server.start()  # empty: the admin registration is gone, its token is not revoked
        recovered = wait_ready(http)
        wait_until(
            lambda: client.get(f"{API}/registrations", headers=headers).status_code == 200,
            timeout=10,
            interval=0.05,
        )
        assert client.get(f"{API}/registrations", headers=headers).json()["total"] == 0
    report(
        f"admin api, redis killed ({framework})",
        slowest_503=max(elapsed for _, elapsed in answers),
        ready_after_start=recovered,
    )
    check_serve(served, traffic)

"""schemathesis against the management API of a served instance, under each framework.

The document is loaded from ``GET /admin/api/openapi.json`` of ``embedauth serve``; every operation
gets generated requests (valid and invalid), signed in as a catalog admin of site-1, and every
answer must pass schemathesis's checks: no 5xx, a documented status and content type, a body that
matches its schema (problem details included), invalid data refused, and no answer without the
admin's token. Each framework has a server of its own, so nothing here disturbs the other
integration tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from embedauth import EmbedAuth
from embedauth.http.management import ADMIN_SCOPE, CATALOG_SCOPE, OPERATIONS, Operation
from tests.conftest import TEST_SETTINGS
from tests.integration.conftest import FRAMEWORKS, _start, _wait_until_ready, free_port, stop


@dataclass(frozen=True)
class Instance:
    base_url: str
    token: str
    other_tenant: str
    """A registration of site-2, which the admin must never reach."""


@pytest.fixture(scope="module", params=FRAMEWORKS)
def instance(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    directory: Path = tmp_path_factory.mktemp(f"management-{request.param}")
    storage_url = f"sqlite:///{directory / 'e.db'}"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with EmbedAuth(storage_url, issuer=base_url, **TEST_SETTINGS) as auth:
        for name in ("devices:read", "devices:write", ADMIN_SCOPE, CATALOG_SCOPE):
            auth.permissions.add(name, access="write" if name != "devices:read" else "read")
        admin = auth.registrations.create(tenant="site-1", name="Admin", scopes=[ADMIN_SCOPE, CATALOG_SCOPE])
        other = auth.registrations.create(tenant="site-2", name="Other", scopes=["devices:read"])
        log_path = directory / "serve.log"
        with log_path.open("w") as log:
            process = _start(storage_url, port, str(request.param), log)
            try:
                _wait_until_ready(process, base_url, log_path)
                response = httpx.post(
                    base_url + "/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(admin.client_id, admin.client_secret),
                )
                assert response.status_code == 200, response.text
                yield Instance(base_url, response.json()["access_token"], other.client_id)
            finally:
                stop(process)
        assert auth.registrations.get(other.client_id).name == "Other"  # never reached


@pytest.fixture(scope="module")
def api_schema(instance: Instance) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{instance.base_url}/admin/api/openapi.json")
    loaded.config.update(base_url=f"{instance.base_url}/admin/api")
    # A request the schema allows may still be refused for what no schema can say: a tenant the
    # admin does not manage, a permission not in the catalog, a date already past. That is a 422
    # naming the field, and counts as an answer to valid data.
    acceptance = loaded.config.checks.positive_data_acceptance
    acceptance.expected_statuses = [*(acceptance.expected_statuses or ()), "422"]
    return loaded


@pytest.mark.timeout(300)
@pytest.mark.parametrize("operation", OPERATIONS, ids=[f"{op.method} {op.path}" for op in OPERATIONS])
def test_every_operation_keeps_its_document(
    operation: Operation, api_schema: schemathesis.BaseSchema, instance: Instance
) -> None:
    api_operation = api_schema[operation.path][operation.method]
    headers = {"Authorization": f"Bearer {instance.token}"}

    @given(case=api_operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers)

    check()

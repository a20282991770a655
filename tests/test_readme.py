"""The README's examples run as written, and the framework quickstarts protect what they say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def run_block(index: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    exec(compile(python_blocks()[index], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples write sqlite:///embedauth.db


def test_the_python_api_example_runs() -> None:
    namespace = run_block(0)
    assert namespace["principal"].scopes == frozenset({"devices:read"})
    namespace["auth"].close()


def test_quickstarts_are_short() -> None:
    fastapi_block, flask_block = python_blocks()[2:4]
    assert len(fastapi_block.strip().splitlines()) <= 15
    assert len(flask_block.strip().splitlines()) <= 15


def exercise(send: Any, auth: Any) -> None:
    """A token from the app's own /oauth/token opens /devices; no token, or the wrong scope, does not."""
    auth.permissions.add("devices:read")
    auth.permissions.add("devices:write")
    reader = auth.registrations.create(
        tenant="site-1", name="r", scopes=["devices:read"], customer_scope="customers:c1"
    )
    writer = auth.registrations.create(tenant="site-1", name="w", scopes=["devices:write"])

    def token(created: Any) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
        }
        status, body, _ = send("POST", "/oauth/token", data=form)
        assert status == 200, body
        return str(body["access_token"])

    status, body, _ = send("GET", "/devices", headers={"Authorization": f"Bearer {token(reader)}"})
    assert (status, body) == (200, {"tenant": "site-1", "customers": "customers:c1"})
    status, _, headers = send("GET", "/devices")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer realm=")
    status, body, _ = send("GET", "/devices", headers={"Authorization": f"Bearer {token(writer)}"})
    assert status == 403 and body["error"] == "insufficient_scope"


def test_fastapi_quickstart() -> None:
    namespace = run_block(2)

    def send(method: str, path: str, **kwargs: Any) -> tuple[int, Any, httpx.Headers]:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=namespace["app"])
            async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as client:
                return await client.request(method, path, **kwargs)

        response = anyio.run(call)
        return response.status_code, response.json(), response.headers

    exercise(send, namespace["auth"])
    namespace["auth"].close()


def test_flask_quickstart() -> None:
    namespace = run_block(3)
    client = namespace["app"].test_client()

    def send(method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        response = client.open(path, method=method, base_url="https://api.example.com", **kwargs)
        return response.status_code, response.get_json(), response.headers

    exercise(send, namespace["auth"])
    namespace["auth"].close()

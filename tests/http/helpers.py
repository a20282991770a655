"""Helpers the HTTP tests share: Basic credentials as clients send them, and response checks."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote_plus

from embedauth.http.messages import Response

CHALLENGE = ("WWW-Authenticate", 'Basic realm="https://api.example.com"')
JSON = ("Content-Type", "application/json")
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


def basic(client_id: str, client_secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: each part form-urlencoded, then RFC 7617 Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
    return {"authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def body(response: Response) -> dict[str, Any]:
    assert response.body is not None
    parsed: dict[str, Any] = json.loads(response.content())
    assert parsed == response.body
    return parsed


def refused(
    response: Response, status: int, error: str, *, challenge: bool = False, description: str | None = None
) -> dict[str, Any]:
    """An error response: status, code, exactly these headers (the challenge only when asked)."""
    assert response.status == status, response.body
    assert response.headers == (JSON, *NO_STORE, *([CHALLENGE] if challenge else []))
    parsed = body(response)
    assert parsed["error"] == error
    assert set(parsed) <= {"error", "error_description"}
    if description is not None:
        assert parsed["error_description"] == description
    # RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in parsed.get("error_description", ""))
    return parsed


def mistyped(secret: str) -> str:
    """``secret`` with its last character changed (so its checksum fails)."""
    return secret[:-1] + ("y" if secret.endswith("x") else "x")

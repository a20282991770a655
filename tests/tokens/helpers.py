"""Helpers the access-token tests share: an instance with settings, a token, its decoded parts."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from embedauth import EmbedAuth, InvalidToken
from embedauth.clock import FrozenClock
from embedauth.models import CreatedSecret
from tests.conftest import ISSUER, TEST_SETTINGS


def make_auth(clock: FrozenClock, url: str = "memory://", **settings: Any) -> EmbedAuth:
    return EmbedAuth(url, clock=clock, issuer=ISSUER, **(TEST_SETTINGS | settings))


def token_for(auth: EmbedAuth, created: CreatedSecret, scope: str | None = None) -> str:
    return auth.tokens.client_credentials(created.client_id, created.client_secret, scope=scope).access_token


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(b64d(header)), json.loads(b64d(payload)), signature


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def b64e(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refused(auth: EmbedAuth, token: Any) -> None:
    with pytest.raises(InvalidToken) as caught:
        auth.verify(token)
    assert str(caught.value) == "invalid token"

"""Helpers the registry and client-authentication tests share: a registration, a secret check."""

from __future__ import annotations

from typing import Any

from embedauth import EmbedAuth


def create(auth: EmbedAuth, **kwargs: Any) -> Any:
    defaults: dict[str, Any] = {"tenant": "site-1", "name": "Backup script", "scopes": ["devices:read"]}
    return auth.registrations.create(**(defaults | kwargs))


def works(auth: EmbedAuth, client_id: str, secret: str) -> bool:
    return auth.clients.check_secret(client_id, secret) is not None

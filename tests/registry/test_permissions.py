"""The permission catalog (``auth.permissions``)."""

from __future__ import annotations

import pytest

from embedauth import AlreadyExists, EmbedAuth
from tests.registry.helpers import create


def test_permission_in_use(auth: EmbedAuth) -> None:
    from embedauth import PermissionInUse

    reg = create(auth).registration
    with pytest.raises(PermissionInUse):
        auth.permissions.remove("devices:read")
    auth.registrations.update(reg.client_id, scopes=[])
    auth.permissions.remove("devices:read")
    with pytest.raises(AlreadyExists):
        auth.permissions.add("devices:write")

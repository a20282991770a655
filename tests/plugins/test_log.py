"""The built-in logging plugin: every refusal with its reason at INFO, never a secret or a token."""

from __future__ import annotations

import logging

import pytest

from embedauth import EmbedAuth, InvalidToken
from embedauth.errors import InvalidClient
from embedauth.models import CreatedSecret
from tests.conftest import last_changed


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="embedauth")
    return caplog


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "embedauth" and "refused" in r.getMessage()]


def test_a_wrong_secret_is_logged_with_its_reason_and_client_id(
    auth: EmbedAuth, created: CreatedSecret, logged: pytest.LogCaptureFixture
) -> None:
    wrong = last_changed(created.client_secret)
    with pytest.raises(InvalidClient):
        auth.tokens.client_credentials(created.client_id, wrong)
    other = auth.registrations.create(tenant="site-1", name="Other").client_secret  # well-formed
    with pytest.raises(InvalidClient):
        auth.tokens.client_credentials(created.client_id, other)
    lines = refusals(logged)
    assert lines[-1] == f"embedauth: refused: unknown client or wrong secret (client {created.client_id!r})"
    assert all(
        record.levelno == logging.INFO for record in logged.records if "refused" in record.getMessage()
    )
    assert created.client_secret not in logged.text and other not in logged.text and wrong not in logged.text


def test_a_refused_token_is_logged_without_the_token(
    auth: EmbedAuth, created: CreatedSecret, logged: pytest.LogCaptureFixture
) -> None:
    token = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    auth.registrations.disable(created.client_id)
    with pytest.raises(InvalidToken):
        auth.verify(token)
    assert refusals(logged)[-1] == f"embedauth: refused: revoked (client {created.client_id!r})"
    header, payload, signature = token.split(".")
    for part in (header, payload, signature):
        assert part not in logged.text


def test_what_a_caller_sent_cannot_forge_a_log_line(
    auth: EmbedAuth, logged: pytest.LogCaptureFixture
) -> None:
    sent = "x\nINFO embedauth: token issued to admin" + "y" * 500
    with pytest.raises(InvalidClient):
        auth.clients.authenticate_secret(sent, "eas_not-a-secret")
    line = refusals(logged)[-1]
    assert "\n" not in line and "\\n" in line  # quoted with repr
    assert len(line) < 200  # the client ID cut to 64 characters


def test_silent_when_the_embedding_app_keeps_info_off(
    auth: EmbedAuth, created: CreatedSecret, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="embedauth")
    with pytest.raises(InvalidClient):
        auth.tokens.client_credentials(created.client_id, last_changed(created.client_secret))
    assert refusals(caplog) == []

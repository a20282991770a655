"""The audit trail (``embedauth/registry/audit.py``): every admin verb with its actor and source,
every token issued or refused with the internal reason, nothing secret anywhere, bounded."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest

from embedauth import Admin, EmbedAuth, InvalidClient, InvalidGrant, InvalidScope, StorageError
from embedauth.clock import FrozenClock, isoformat
from embedauth.credentials.secrets import generate_client_secret
from embedauth.hooks import hookimpl
from embedauth.http.messages import Request
from embedauth.http.oauth import OAuthEndpoints
from embedauth.models import AuditRecord
from tests import keys
from tests.conftest import catalogued, last_changed

ALICE = Admin("alice", frozenset({"site-1"}), manages_catalog=True)


class Sink:
    """An external sink: every record the writer stores."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    @hookimpl
    def embedauth_audit_record(self, record: AuditRecord) -> None:
        self.records.append(record)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def trail(clock: FrozenClock, sink: Sink) -> Iterator[EmbedAuth]:
    with catalogued("memory://", clock, plugins=[sink]) as auth:
        yield auth


def stored(auth: EmbedAuth, sink: Sink | None = None) -> list[AuditRecord]:
    """Every stored record: in the order they were recorded when a sink heard them (records of one
    frozen instant are listed by id), else newest first."""
    auth.flush()
    records = list(auth.audit.list(None, limit=500).items)
    if sink is None:
        return records
    assert set(records) == set(sink.records) and len(records) == len(sink.records)
    return list(sink.records)


def test_every_admin_verb_is_recorded_with_its_actor_and_source(
    trail: EmbedAuth, clock: FrozenClock, sink: Sink
) -> None:
    scope = trail.admin_scope(ALICE, source="198.51.100.7")
    regs = scope.registrations
    made = regs.create(tenant="site-1", name="Backup", scopes=["devices:read"])
    cid = made.client_id
    regs.update(cid, name="Nightly")
    regs.disable(cid)
    regs.enable(cid)
    regs.renew(cid, days=30)
    added = regs.add_secret(cid)
    regs.delete_secret(cid, added.credential.id)
    regs.rotate_secret(cid, grace=timedelta(hours=1))
    certificate = regs.add_certificate(cid, keys.certificate_pem(keys.private_key("p256"), now=clock()))
    regs.remove_certificate(cid, certificate.id)
    scope.add_permission("reports:read")
    scope.remove_permission("reports:read")
    token = scope.create_refresh_token(scopes=["devices:read"])
    scope.revoke_refresh_token(token.id)
    other = regs.create(tenant="site-1", name="Other")
    regs.delete(cid)
    regs.delete_many([other.client_id])
    records = stored(trail, sink)
    assert [r.action for r in records] == [
        "registration.create",
        "registration.update",
        "registration.disable",
        "registration.enable",
        "registration.renew",
        "registration.add_secret",
        "registration.delete_secret",
        "registration.rotate_secret",
        "registration.add_certificate",
        "registration.remove_certificate",
        "permission.add",
        "permission.remove",
        "refresh_token.create",
        "refresh_token.revoke",
        "registration.create",
        "registration.delete",
        "registration.delete",
    ]
    assert {(r.actor, r.source, r.outcome) for r in records} == {("alice", "198.51.100.7", "success")}
    by_registration = [r for r in records if r.action.startswith("registration.")]
    assert {r.tenant for r in by_registration} == {"site-1"}
    assert [r.client_id for r in by_registration[:10]] == [cid] * 10
    assert records[7].detail == {
        "secret_id": records[7].detail["secret_id"],
        "grace_seconds": 3600,
        "still_valid": [made.credential.id],
    }
    assert records[12].target == token.id and records[12].client_id is None


def test_the_hook_and_the_trail_hear_the_same_events(trail: EmbedAuth, sink: Sink) -> None:
    heard: list[tuple[str, str | None]] = []

    class Hook:
        @hookimpl
        def embedauth_admin_action(self, actor: str, action: str, source: str | None) -> None:
            heard.append((action, source))

    trail.plugins.register(Hook())
    regs = trail.registrations.for_tenants(["site-1"], actor="cli:root", source="cli")
    made = regs.create(tenant="site-1", name="B")
    regs.disable(made.client_id)
    assert [(r.action, r.source) for r in stored(trail, sink)] == heard  # each reached the sink once


def test_tokens_issued_and_refused_with_the_internal_reason(trail: EmbedAuth, sink: Sink) -> None:
    endpoints = OAuthEndpoints(trail)
    made = trail.registrations.create(tenant="site-1", name="B", scopes=["devices:read"])

    def post(**form: str) -> int:
        request = Request(
            "POST",
            "https://api.example.com/oauth/token",
            {"content-type": "application/x-www-form-urlencoded"},
            form=[("grant_type", "client_credentials"), *form.items()],
            client_address="203.0.113.9",
        )
        return endpoints.token(request).status

    assert post(client_id=made.client_id, client_secret=made.client_secret) == 200
    assert post(client_id=made.client_id, client_secret=generate_client_secret()) == 401  # well formed
    assert post(client_id=made.client_id, client_secret=last_changed(made.client_secret)) == 401  # not
    assert post(client_id=made.client_id, client_secret=made.client_secret, scope="users:read") == 400
    assert post(client_id="nobody", client_secret=made.client_secret) == 401
    trail.registrations.disable(made.client_id)
    assert post(client_id=made.client_id, client_secret=made.client_secret) == 401
    assert post() == 401
    records = [r for r in stored(trail, sink) if r.action.startswith("token.")]
    assert [(r.action, r.client_id, r.tenant, r.reason) for r in records] == [
        ("token.issued", made.client_id, "site-1", None),
        ("token.refused", made.client_id, "site-1", "unknown client or wrong secret"),
        (
            "token.refused",
            made.client_id,
            None,
            "unknown client or wrong secret",
        ),  # refused before any lookup
        ("token.refused", made.client_id, "site-1", "scope refused: not granted to this client: users:read"),
        ("token.refused", "nobody", None, "unknown client or wrong secret"),
        ("token.refused", made.client_id, "site-1", "the registration is disabled"),
        ("token.refused", None, None, "invalid_client: client authentication is required"),
    ]
    assert {r.source for r in records} == {"203.0.113.9"}
    assert records[0].actor == made.client_id and records[0].detail["credential_id"] == made.credential.id
    assert records[0].detail["grant_type"] == "client_credentials" and records[0].detail["token_id"]
    assert records[-1].actor == "anonymous" and records[1].outcome == "refused"


def test_a_burst_of_token_requests_is_one_record(trail: EmbedAuth, sink: Sink, clock: FrozenClock) -> None:
    """Requests that differ only in the token, within one write, are one record counting them; the
    admins' records and requests that differ in anything else stay records of their own."""
    made = trail.registrations.create(tenant="site-1", name="Loop", scopes=["devices:read"])
    tokens = []
    for _ in range(60):
        tokens.append(
            trail.tokens.client_credentials(made.client_id, made.client_secret, address="192.0.2.7")
        )
        clock.advance(0.25)
    trail.tokens.client_credentials(made.client_id, made.client_secret, address="192.0.2.8")
    trail.admin_scope(ALICE).registrations.update(made.client_id, name="Renamed")
    wrong = generate_client_secret()
    for _ in range(3):
        with pytest.raises(InvalidClient):
            trail.tokens.client_credentials(made.client_id, wrong, address="198.51.100.1")
    trail.tokens.client_credentials(made.client_id, made.client_secret, address="192.0.2.7")
    records = [r for r in stored(trail, sink) if r.action != "registration.created"]
    assert [(r.action, r.source, r.detail.get("count")) for r in records] == [
        ("token.issued", "192.0.2.7", 61),
        ("token.issued", "192.0.2.8", None),
        ("registration.update", None, None),
        ("token.refused", "198.51.100.1", 3),
    ]
    burst = records[0]
    assert burst.detail["last_at"] == isoformat(burst.at + timedelta(seconds=15))  # the 61st
    ids = [token_id(t.access_token) for t in tokens]
    assert burst.detail["token_ids"] == ids[:50]  # the first 50 of them
    assert burst.detail["credential_id"] == made.credential.id
    assert "token_id" not in burst.detail and records[1].detail["token_id"]
    assert trail.audit.flush() == 0  # written once


def test_a_burst_dropped_from_a_full_queue_counts_every_request(clock: FrozenClock) -> None:
    with catalogued("memory://", clock, audit_queue_size=2) as auth:
        made = auth.registrations.create(tenant="site-1", name="Loop", scopes=["devices:read"])
        for _ in range(5):
            auth.tokens.client_credentials(made.client_id, made.client_secret)
        auth.audit.record(actor="a", action="test.one")
        auth.audit.record(actor="a", action="test.two")  # the queue is full: the burst goes
        assert [r.action for r in auth.audit.pending()] == ["test.one", "test.two"]
        auth.flush()
        [dropped] = [r for r in auth.audit.list(None).items if r.action == "audit.dropped"]
        assert dropped.detail == {"count": 5}


def test_a_failed_write_keeps_the_burst(trail: EmbedAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests during a failed write start a new burst; the first is written, whole, next time."""
    made = trail.registrations.create(tenant="site-1", name="Loop", scopes=["devices:read"])
    for _ in range(3):
        trail.tokens.client_credentials(made.client_id, made.client_secret)
    add = trail.storage.add_audit_records

    def failing(records: Any) -> None:
        monkeypatch.setattr(trail.storage, "add_audit_records", add)
        trail.tokens.client_credentials(made.client_id, made.client_secret)  # meanwhile
        raise StorageError("down")

    monkeypatch.setattr(trail.storage, "add_audit_records", failing)
    with pytest.raises(StorageError):
        trail.audit.flush()
    trail.tokens.client_credentials(made.client_id, made.client_secret)
    assert trail.audit.flush() == 2
    issued = [r for r in trail.audit.list(None).items if r.action == "token.issued"]
    assert sorted(int(r.detail.get("count", 1)) for r in issued) == [2, 3]


def token_id(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["jti"])


def test_refresh_grants_are_recorded(trail: EmbedAuth, sink: Sink) -> None:
    made = trail.refresh_tokens.create("alice", tenant="site-1")
    trail.tokens.refresh(made.refresh_token, address="192.0.2.5")
    trail.refresh_tokens.revoke(made.id)
    with pytest.raises(InvalidGrant):
        trail.tokens.refresh(made.refresh_token)
    other = trail.refresh_tokens.create("bob", scopes=["devices:read"])
    with pytest.raises(InvalidScope):
        trail.tokens.refresh(other.refresh_token, scope="users:read")
    records = [r for r in stored(trail, sink) if r.action.startswith("token.")]
    assert [(r.action, r.actor, r.target, r.reason) for r in records] == [
        ("token.issued", "alice", made.id, None),
        ("token.refused", "alice", made.id, "refresh token revoked"),
        ("token.refused", "bob", other.id, "invalid_scope: not granted to this client: users:read"),
    ]
    assert records[0].source == "192.0.2.5" and records[0].tenant == "site-1"


def test_no_record_and_no_log_line_holds_a_secret(
    backend_auth: EmbedAuth, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Everything secret this test makes (client secrets, refresh tokens, access tokens, a client
    assertion), then every stored record and every log line, scanned for each of them."""
    caplog.set_level(logging.DEBUG)
    auth = backend_auth
    scope = auth.admin_scope(ALICE, source="192.0.2.1")
    secrets: list[str] = []
    made = scope.registrations.create(tenant="site-1", name="B", scopes=["devices:read"])
    secrets.append(made.client_secret)
    rotated = scope.registrations.rotate_secret(made.client_id, grace=timedelta(hours=1))
    secrets.append(rotated.client_secret)
    key = keys.private_key("p256")
    scope.registrations.add_certificate(made.client_id, keys.certificate_pem(key, now=clock()))
    refresh = scope.create_refresh_token(scopes=["devices:read"])
    secrets.append(refresh.refresh_token)
    for secret in (made.client_secret, rotated.client_secret):
        secrets.append(auth.tokens.client_credentials(made.client_id, secret).access_token)
    secrets.append(auth.tokens.refresh(refresh.refresh_token).access_token)
    for wrong in (last_changed(made.client_secret), made.client_secret + "x", "eas_" + "A" * 49):
        secrets.append(wrong)
        with pytest.raises(InvalidClient):
            auth.tokens.client_credentials(made.client_id, wrong)
    with pytest.raises(InvalidGrant):
        auth.tokens.refresh(last_changed(refresh.refresh_token))
    secrets.append(last_changed(refresh.refresh_token))
    auth.lifecycle.sweep()
    records = stored(auth)
    assert len(records) >= 10
    text = json.dumps([vars_of(r) for r in records]) + caplog.text
    found = [s[:12] for s in secrets if s in text or s[4:] in text]
    assert found == []


def vars_of(record: AuditRecord) -> dict[str, Any]:
    return {name: str(getattr(record, name)) for name in record.__slots__}


def test_the_queue_is_bounded_and_says_what_it_dropped(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()
    with catalogued(
        "memory://", clock, audit_queue_size=3, audit_flush_interval=3600, plugins=[sink]
    ) as auth:
        for i in range(5):
            auth.audit.record(actor="alice", action=f"test.{i}")
        assert [r.action for r in auth.audit.pending()] == ["test.2", "test.3", "test.4"]
        assert auth.audit.flush() == 4
        records = stored(auth, sink)
        assert [r.action for r in records] == ["test.2", "test.3", "test.4", "audit.dropped"]
        assert records[-1].detail == {"count": 2} and "2 audit records were dropped" in caplog.text


def test_a_storage_error_keeps_the_records_queued(trail: EmbedAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedauth.errors import StorageError

    trail.audit.record(actor="alice", action="test.kept")

    def down(records: Any) -> None:
        raise StorageError("down")

    monkeypatch.setattr(trail.storage, "add_audit_records", down)
    with pytest.raises(StorageError):
        trail.audit.flush()
    monkeypatch.undo()
    assert [r.action for r in stored(trail)] == ["test.kept"]


def test_details_are_small_and_plain(trail: EmbedAuth) -> None:
    trail.audit.record(
        actor="a" * 500,
        action="test.detail",
        tenant="not a tenant!",
        client_id="\x00bad",
        detail={
            "k" * 100: "v" * 1000,
            "items": list(range(100)),
            "nested": {"a": 1},
            **{f"x{i}": i for i in range(30)},
        },
    )
    [record] = trail.audit.pending()
    assert len(record.actor) == 255 and record.tenant is None and record.client_id is None
    assert len(record.detail) == 20
    assert record.detail["k" * 64] == "v" * 200 and record.detail["items"] == list(range(50))
    assert record.detail["nested"] == "{'a': 1}"


def test_retention_by_age_and_count(clock: FrozenClock) -> None:
    with catalogued("memory://", clock, audit_retention_days=1, audit_max_records=2) as auth:
        auth.audit.record(actor="a", action="test.old")
        auth.flush()
        clock.advance(86400 + 1)
        for i in range(3):
            auth.audit.record(actor="a", action=f"test.new{i}")
        auth.flush()
        assert auth.audit.prune() == 2  # one too old, one beyond the count
        assert len(stored(auth)) == 2 and "test.old" not in {r.action for r in stored(auth)}


def test_listing_is_checked(trail: EmbedAuth) -> None:
    from embedauth import InvalidInput

    for query in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"offset": 10_001}):
        with pytest.raises(InvalidInput):
            trail.audit.list(None, **query)  # type: ignore[arg-type]
    assert trail.audit.list(None, client_id="\x00").total == 0  # never reaches storage


def test_the_sink_sample_of_the_docs() -> None:
    """docs/audit.md's sink, as written: every record, as it is written."""
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs" / "audit.md").read_text()
    sample = page.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "sample"}
    exec(compile(sample, "docs/audit.md", "exec"), namespace)  # noqa: S102 - our own docs
    auth: EmbedAuth = namespace["auth"]
    try:
        auth.admin_scope(ALICE).add_permission("devices:read")
        auth.flush()
        assert [(r["actor"], r["action"]) for r in namespace["siem"].shipped] == [("alice", "permission.add")]
    finally:
        auth.close()

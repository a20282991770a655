"""The expiry sweep (``embedauth/registry/lifecycle.py``): each threshold once, in order, to the
millisecond; renewed or replaced credentials silenced; disabled registrations none; once per
deployment with sweeps in parallel, in two processes on every backend; idle refresh tokens."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from embedauth import EmbedAuth, InvalidGrant
from embedauth.clock import FrozenClock, utcnow
from embedauth.hooks import hookimpl
from embedauth.models import CreatedSecret
from embedauth.plugins.notices import JsonLinesNotices
from embedauth.registry.lifecycle import ACTOR, EXPIRED_NOTICE_WINDOW
from tests import keys
from tests.conftest import catalogued
from tests.registry.processes import sweep_in_processes

DAY = timedelta(days=1)
MS = timedelta(milliseconds=1)


class Heard:
    """Every notice the hooks deliver: (kind, client_id, credential id or None, days_left, expires_at)."""

    def __init__(self) -> None:
        self.notices: list[tuple[str, str, str | None, int | None, datetime]] = []

    @hookimpl
    def embedauth_credential_expiring(
        self, registration: Any, credential: Any, days_left: int, expires_at: datetime
    ) -> None:
        cid = None if credential is None else credential.id
        self.notices.append(("expiring", registration.client_id, cid, days_left, expires_at))

    @hookimpl
    def embedauth_credential_expired(self, registration: Any, credential: Any, expires_at: datetime) -> None:
        cid = None if credential is None else credential.id
        self.notices.append(("expired", registration.client_id, cid, None, expires_at))


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
def life(clock: FrozenClock, heard: Heard) -> Iterator[EmbedAuth]:
    with catalogued("memory://", clock, plugins=[heard]) as auth:
        yield auth


def at(clock: FrozenClock, moment: datetime) -> None:
    """The clock at exactly ``moment`` (to the millisecond: a tenth of one past it, so that float
    rounding never lands a millisecond early)."""
    clock.set(moment.timestamp() + 0.0001)
    assert utcnow(clock) == moment


def expiring_secret(auth: EmbedAuth, clock: FrozenClock, days: float, **options: Any) -> CreatedSecret:
    end = utcnow(clock) + timedelta(days=days)
    return auth.registrations.create(tenant="site-1", name="Backup", secret_expires_at=end, **options)


def sweep(auth: EmbedAuth, heard: Heard) -> list[tuple[str, str, str | None, int | None, datetime]]:
    """The notices one sweep delivered."""
    before = len(heard.notices)
    auth.lifecycle.sweep()
    return heard.notices[before:]


def test_each_threshold_fires_once_in_order_to_the_millisecond(
    life: EmbedAuth, clock: FrozenClock, heard: Heard
) -> None:
    made = expiring_secret(life, clock, 40)
    end, cid, sid = made.credential.expires_at, made.client_id, made.credential.id
    assert sweep(life, heard) == []
    at(clock, end - 30 * DAY - MS)
    assert sweep(life, heard) == []  # a millisecond before the 30-day threshold
    at(clock, end - 30 * DAY)
    assert sweep(life, heard) == [("expiring", cid, sid, 30, end)]
    assert sweep(life, heard) == []  # once
    at(clock, end - 7 * DAY - MS)
    assert sweep(life, heard) == []
    at(clock, end - 7 * DAY)
    assert sweep(life, heard) == [("expiring", cid, sid, 7, end)]
    at(clock, end - MS)
    assert sweep(life, heard) == []
    at(clock, end)
    assert sweep(life, heard) == [("expired", cid, sid, None, end)]
    clock.advance(86400)
    assert sweep(life, heard) == []


def test_a_late_sweep_sends_only_the_most_severe(life: EmbedAuth, clock: FrozenClock, heard: Heard) -> None:
    made = expiring_secret(life, clock, 5.5)
    end = made.credential.expires_at
    assert sweep(life, heard) == [("expiring", made.client_id, made.credential.id, 6, end)]  # not the 30-day
    at(clock, end + 3 * DAY)  # a long gap: straight to expired, once
    assert [n[0] for n in sweep(life, heard)] == ["expired"]
    assert sweep(life, heard) == []


def test_an_expiry_long_past_is_not_announced(life: EmbedAuth, clock: FrozenClock, heard: Heard) -> None:
    made = expiring_secret(life, clock, 1)
    at(clock, made.credential.expires_at + EXPIRED_NOTICE_WINDOW + MS)
    assert sweep(life, heard) == []


def test_a_renewed_registration_starts_afresh(life: EmbedAuth, clock: FrozenClock, heard: Heard) -> None:
    made = life.registrations.create(tenant="site-1", name="B", expires_at=utcnow(clock) + 40 * DAY)
    own_end = made.registration.registration_expires_at
    assert own_end is not None
    at(clock, own_end - 30 * DAY)
    assert sweep(life, heard) == [("expiring", made.client_id, None, 30, own_end)]  # its own expiry
    renewed = life.registrations.renew(made.client_id, days=100)
    new_end = renewed.registration_expires_at
    assert new_end is not None
    at(clock, own_end - 7 * DAY)
    assert sweep(life, heard) == []  # the old date's thresholds are never due again
    at(clock, new_end - 30 * DAY)
    assert sweep(life, heard) == [("expiring", made.client_id, None, 30, new_end)]


@pytest.mark.parametrize("how", ["rotate", "rotate with grace", "add a newer secret", "delete it"])
def test_a_replaced_credential_gets_no_more_notices(
    life: EmbedAuth, clock: FrozenClock, heard: Heard, how: str
) -> None:
    made = expiring_secret(life, clock, 40)
    end = made.credential.expires_at
    at(clock, end - 30 * DAY)
    assert len(sweep(life, heard)) == 1
    at(clock, end - 10 * DAY)
    if how == "rotate":
        life.registrations.rotate_secret(made.client_id)
    elif how == "rotate with grace":
        life.registrations.rotate_secret(made.client_id, grace=timedelta(hours=1))
    elif how == "add a newer secret":
        life.registrations.add_secret(made.client_id)
    else:
        life.registrations.add_secret(made.client_id)
        life.registrations.delete_secret(made.client_id, made.credential.id)
    for moment in (end - 7 * DAY, end, end + DAY):
        at(clock, moment)
        assert sweep(life, heard) == [], moment


def test_a_disabled_registration_gets_none_until_enabled(
    life: EmbedAuth, clock: FrozenClock, heard: Heard
) -> None:
    made = expiring_secret(life, clock, 40)
    end = made.credential.expires_at
    life.registrations.disable(made.client_id)
    at(clock, end - 30 * DAY)
    assert sweep(life, heard) == []
    at(clock, end - 7 * DAY)
    assert sweep(life, heard) == []
    life.registrations.enable(made.client_id)
    assert [n[3] for n in sweep(life, heard)] == [7]  # the most severe pending one


def test_a_certificate_gets_its_notices(life: EmbedAuth, clock: FrozenClock, heard: Heard) -> None:
    made = expiring_secret(life, clock, 400)
    pem = keys.certificate_pem(keys.private_key("p256"), now=clock(), days=20)
    certificate = life.registrations.add_certificate(made.client_id, pem)
    assert sweep(life, heard) == [("expiring", made.client_id, certificate.id, 20, certificate.expires_at)]


def test_a_credential_outliving_the_registration_is_covered_by_its_notice(
    life: EmbedAuth, clock: FrozenClock, heard: Heard
) -> None:
    life.registrations.create(
        tenant="site-1",
        name="B",
        expires_at=utcnow(clock) + 10 * DAY,
        secret_expires_at=utcnow(clock) + 20 * DAY,
    )
    assert [(n[2], n[3]) for n in sweep(life, heard)] == [(None, 10)]  # the registration's own, only


def test_a_failing_hook_is_logged_audited_and_not_retried(
    clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @hookimpl
        def embedauth_credential_expiring(self, registration: Any, credential: Any, days_left: int) -> None:
            raise RuntimeError("smtp down")

    with catalogued("memory://", clock, plugins=[Broken()]) as auth:
        made = expiring_secret(auth, clock, 3)
        result = auth.lifecycle.sweep()
        assert [n.delivered for n in result.notices] == [False]
        assert "an expiry notice hook failed" in caplog.text
        [record] = auth.audit.list(client_id=made.client_id, limit=10).items[:1]
        assert (record.action, record.outcome, record.reason) == (
            "notice.expiring",
            "failed",
            "a notice hook raised RuntimeError",
        )
        assert auth.lifecycle.sweep().notices == []  # at most once


def test_each_notice_is_an_audit_record_of_its_registration(
    life: EmbedAuth, clock: FrozenClock, heard: Heard
) -> None:
    made = expiring_secret(life, clock, 5)
    life.lifecycle.sweep()  # flushes the trail before it returns
    notices = [r for r in life.audit.list("site-1", client_id=made.client_id).items if r.actor == ACTOR]
    assert [(r.action, r.source, r.target, r.detail["days_left"]) for r in notices] == [
        ("notice.expiring", "sweep", made.credential.id, 5)
    ]
    assert notices[0].detail["expires_at"] == made.credential.expires_at.isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")


def test_the_json_lines_plugin_names_the_exact_expiry(clock: FrozenClock, tmp_path: Path) -> None:
    path = tmp_path / "notices.jsonl"
    with catalogued("memory://", clock, notice_file=str(path)) as auth:
        made = expiring_secret(auth, clock, 5)
        auth.lifecycle.sweep()
        at(clock, made.credential.expires_at)
        auth.lifecycle.sweep()
        twin = auth.with_settings(leeway=31)  # the same plugin manager: still one plugin, one line
        twin.lifecycle.sweep()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    end = made.credential.expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert [(n["notice"], n["expires_at"], n["days_left"], n["credential"]) for n in lines] == [
        ("credential.expiring", end, 5, "secret"),
        ("credential.expired", end, None, "secret"),
    ]
    assert lines[0]["client_id"] == made.client_id and made.client_secret not in path.read_text()
    stream = io.StringIO()
    JsonLinesNotices(stream, clock).embedauth_credential_expired(
        made.registration, None, made.credential.expires_at
    )
    assert json.loads(stream.getvalue())["credential"] == "registration"


def test_idle_refresh_tokens_are_revoked_by_the_sweep(life: EmbedAuth, clock: FrozenClock) -> None:
    made = life.refresh_tokens.create("alice", tenant="site-1")
    created = made.record.created_at
    at(clock, created + 365 * DAY)
    assert life.lifecycle.sweep().refresh_tokens_revoked == []  # exactly a year: not yet idle
    at(clock, created + 365 * DAY + MS)
    assert [t.id for t in life.lifecycle.sweep().refresh_tokens_revoked] == [made.id]
    with pytest.raises(InvalidGrant, match="revoked"):
        life.tokens.refresh(made.refresh_token)
    [record] = [r for r in life.audit.list("site-1").items if r.action == "refresh_token.revoke"]
    assert (record.actor, record.target, record.source) == (ACTOR, made.id, "sweep")


def test_an_idle_refresh_token_is_refused_on_use_to_the_millisecond(
    life: EmbedAuth, clock: FrozenClock
) -> None:
    made = life.refresh_tokens.create("alice")
    at(clock, made.record.created_at + 365 * DAY)
    life.tokens.refresh(made.refresh_token)  # exactly a year: still good, and now used
    life.flush()
    at(clock, made.record.created_at + 730 * DAY + MS)
    with pytest.raises(InvalidGrant, match="revoked"):
        life.tokens.refresh(made.refresh_token)


def test_the_periodic_sweep(clock: FrozenClock, heard: Heard) -> None:
    with catalogued("memory://", clock, plugins=[heard], sweep_interval=0.05) as auth:
        expiring_secret(auth, clock, 3)
        auth.lifecycle.start()
        done = threading.Event()
        for _ in range(100):
            if heard.notices:
                done.set()
                break
            threading.Event().wait(0.05)
        auth.lifecycle.stop()
        assert done.is_set() and len(heard.notices) == 1


# -------------------------------------------------------------------- once per deployment


def _due_everywhere(auth: EmbedAuth, clock: FrozenClock, count: int) -> set[str]:
    """``count`` registrations, each with a secret 5 days from its end: one notice each is due."""
    expected = set()
    for i in range(count):
        made = expiring_secret(auth, clock, 5 + i / 100)
        expected.add(f"{made.client_id}:{made.credential.id}:7")
    return expected


def test_parallel_sweeps_in_one_process_send_each_notice_once(
    backend_auth: EmbedAuth, clock: FrozenClock
) -> None:
    """Two instances over one store (memory:// cannot be shared between processes), sweeping at once."""
    expected = _due_everywhere(backend_auth, clock, 12)
    twin = EmbedAuth(backend_auth.storage, clock=clock, settings=backend_auth.settings)
    barrier = threading.Barrier(2)
    sent: list[list[str]] = [[], []]

    def run(i: int, auth: EmbedAuth) -> None:
        barrier.wait()
        sent[i] = [
            f"{n.registration.client_id}:{n.credential.id}:{n.threshold}"
            for n in auth.lifecycle.sweep().notices
            if n.credential
        ]

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate((backend_auth, twin))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    twin.close()
    assert sorted(sent[0] + sent[1]) == sorted(expected)
    notices = [r for r in backend_auth.audit.list(None, limit=100).items if r.action.startswith("notice.")]
    assert len(notices) == len(expected)


@pytest.mark.parametrize(
    "backend",
    [pytest.param(b, marks=getattr(pytest.mark, b)) for b in ("sqlite", "postgres", "mysql", "redis")],
)
def test_parallel_sweeps_in_two_processes_send_each_notice_once(
    backend: str, fresh_url: str, clock: FrozenClock
) -> None:
    with catalogued(fresh_url, clock) as auth:
        expected = _due_everywhere(auth, clock, 12)
    sent = sweep_in_processes(fresh_url, clock())
    assert sorted(sent[0] + sent[1]) == sorted(expected)  # every one, once: none in both
    assert (sent[0] and sent[1]) or len(expected) == len(sent[0] or sent[1])
    assert sweep_in_processes(fresh_url, clock()) == [[], []]  # and never again


def test_the_email_sample_of_the_docs(tmp_path: Path) -> None:
    """docs/lifecycle.md's plugin, as written: one mail per notice, naming the exact expiry."""
    page = (Path(__file__).parents[2] / "docs" / "lifecycle.md").read_text()
    sample = page.split("[start:email] -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "sample"}
    exec(compile(sample, "docs/lifecycle.md", "exec"), namespace)  # noqa: S102 - our own docs
    auth: EmbedAuth = namespace["auth"]
    try:
        end = utcnow(auth.clock) + timedelta(days=5)
        made = auth.registrations.create(tenant="site-1", name="Backup", secret_expires_at=end)
        auth.lifecycle.sweep()
        auth.lifecycle.sweep()
        [(to, subject, body)] = namespace["outbox"]
        assert to == "admin@site-1.example.com" and subject == "Backup: a credential expires in 5 days"
        assert f"({made.client_id}) expires at {end:%Y-%m-%d %H:%M:%S} UTC" in body
        assert made.client_secret not in body
    finally:
        auth.close()

"""The management API, framework-free: tenant isolation on every backend, problem details, the
catalog and refresh-token rights, the audit trail, and the OpenAPI document."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_pem_x509_certificate

from embedauth import Admin, EmbedAuth
from embedauth.clock import FrozenClock
from embedauth.hooks import hookimpl
from embedauth.http.management import OPERATIONS, AdminRefused, ManagementAPI
from embedauth.http.messages import Request
from tests import keys
from tests.conftest import catalogued

BASE = "https://api.example.com/admin/api"
ALICE = Admin("alice", frozenset({"site-1"}), manages_catalog=True)
BOB = Admin("bob", frozenset({"site-2"}))


class Audit:
    """Records every embedauth_admin_action."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, str, str | None, str | None]] = []

    @hookimpl
    def embedauth_admin_action(
        self, actor: str, action: str, tenant: str | None, target: str | None, detail: Any
    ) -> None:
        self.actions.append((actor, action, tenant, target))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Api:
    auth: EmbedAuth
    api: ManagementAPI
    audit: Audit

    def __call__(
        self,
        admin: Admin | None,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str | None = "application/json",
        raw: bytes | None = None,
    ) -> Answer:
        headers = {} if content_type is None else {"content-type": content_type}
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        response = self.api.handle(Request(method, BASE + path, headers, body=data), lambda: admin)
        content = response.content()
        parsed = json.loads(content) if content else None
        return Answer(response.status, {k.lower(): v for k, v in response.headers}, parsed)


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def api(clock: FrozenClock, audit: Audit) -> Iterator[Api]:
    with catalogued("memory://", clock, plugins=[audit]) as auth:
        yield Api(auth, ManagementAPI(auth), audit)


@pytest.fixture
def backend_api(fresh_url: str, clock: FrozenClock, audit: Audit) -> Iterator[Api]:
    with catalogued(fresh_url, clock, plugins=[audit]) as auth:
        yield Api(auth, ManagementAPI(auth), audit)


def create(api: Api, admin: Admin, tenant: str, name: str = "Backup", **fields: Any) -> dict[str, Any]:
    answer = api(admin, "POST", "/registrations", {"tenant": tenant, "name": name, **fields})
    assert answer.status == 201, answer
    body: dict[str, Any] = answer.body
    return body


def assert_problem(answer: Answer, status: int) -> dict[str, Any]:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["cache-control"] == "no-store"
    body: dict[str, Any] = answer.body
    assert body["type"] == "about:blank" and body["status"] == status and body["title"] and body["detail"]
    return body


# ---------------------------------------------------------------------------- tenant isolation


def _certificate(clock: FrozenClock) -> str:
    return keys.certificate_pem(keys.private_key("p256"), now=clock()).decode()


#: Every attempt on another tenant's registration: method, path (``{id}``: its client ID), body.
ATTEMPTS: list[tuple[str, str, Any]] = [
    ("GET", "/registrations/{id}", None),
    ("PATCH", "/registrations/{id}", {"name": "taken over"}),
    ("DELETE", "/registrations/{id}", None),
    ("POST", "/registrations/{id}/rotate-secret", {}),
    ("POST", "/registrations/{id}/secrets", {}),
    ("DELETE", "/registrations/{id}/secrets/{secret}", None),
    ("POST", "/registrations/{id}/certificates", "CERTIFICATE"),
    ("DELETE", "/registrations/{id}/certificates/{certificate}", None),
    ("POST", "/registrations/{id}/disable", {}),
    ("POST", "/registrations/{id}/enable", {}),
    ("POST", "/registrations/{id}/renew", {"days": 30}),
    ("GET", "/registrations/{id}/audit", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ATTEMPTS, ids=[f"{m} {p}" for m, p, _ in ATTEMPTS])
def test_another_tenants_registration_is_not_found_and_unchanged(
    backend_api: Api, clock: FrozenClock, method: str, path: str, body: Any
) -> None:
    api = backend_api
    theirs = create(api, BOB, "site-2", scopes=["devices:read"])
    certificate = api(
        BOB,
        "POST",
        f"/registrations/{theirs['client_id']}/certificates",
        {"certificate": _certificate(clock)},
    )
    assert certificate.status == 201
    before = api(BOB, "GET", f"/registrations/{theirs['client_id']}").body
    missing = api(ALICE, "GET", "/registrations/00000000-0000-4000-8000-000000000000")
    target = path.format(
        id=theirs["client_id"], secret=theirs["secret_id"], certificate=certificate.body["certificate"]["id"]
    )
    sent = {"certificate": _certificate(clock)} if body == "CERTIFICATE" else body
    refused = api(ALICE, method, target, sent)
    problem = assert_problem(refused, 404)
    # Exactly what a registration that does not exist answers: nothing says it is someone else's.
    assert problem.keys() == missing.body.keys() and problem["title"] == missing.body["title"]
    assert api(BOB, "GET", f"/registrations/{theirs['client_id']}").body == before
    assert api.audit.actions == [
        ("bob", "registration.create", "site-2", theirs["client_id"]),
        ("bob", "registration.add_certificate", "site-2", theirs["client_id"]),
    ]


def test_bulk_delete_leaves_another_tenants_alone(backend_api: Api) -> None:
    api = backend_api
    mine = create(api, ALICE, "site-1")
    theirs = create(api, BOB, "site-2")
    answer = api(
        ALICE,
        "POST",
        "/registrations/delete",
        {"client_ids": [theirs["client_id"], mine["client_id"], "nope"]},
    )
    assert answer.status == 200
    assert answer.body == {"deleted": [mine["client_id"]], "not_found": [theirs["client_id"], "nope"]}
    assert api(BOB, "GET", f"/registrations/{theirs['client_id']}").status == 200


def test_a_listing_holds_only_the_admins_tenants(backend_api: Api) -> None:
    api = backend_api
    both = Admin("carol", frozenset({"site-1", "site-2"}))
    mine = create(api, ALICE, "site-1")
    theirs = create(api, BOB, "site-2")
    create(api, Admin("dave", frozenset({"site-3"})), "site-3")
    assert [r["client_id"] for r in api(ALICE, "GET", "/registrations").body["items"]] == [mine["client_id"]]
    assert api(ALICE, "GET", "/registrations?tenant=site-2").body == {
        "items": [],
        "total": 0,
        "offset": 0,
        "limit": 50,
    }
    listed = api(both, "GET", "/registrations").body
    assert {r["client_id"] for r in listed["items"]} == {mine["client_id"], theirs["client_id"]}
    assert listed["total"] == 2
    assert [r["client_id"] for r in api(both, "GET", "/registrations?tenant=site-2").body["items"]] == [
        theirs["client_id"]
    ]


def test_creating_in_another_tenant_is_a_field_error(api: Api) -> None:
    problem = assert_problem(api(ALICE, "POST", "/registrations", {"tenant": "site-2", "name": "x"}), 422)
    assert [e["field"] for e in problem["errors"]] == ["tenant"]
    assert api.auth.registrations.list().total == 0


# ---------------------------------------------------------------------------- the operations


def test_the_life_of_a_registration(api: Api, clock: FrozenClock) -> None:
    made = create(
        api, ALICE, "site-1", scopes=["devices:read", "devices:write"], customer_scope="groups:north"
    )
    cid = made["client_id"]
    assert made["client_secret"].startswith("eas_") and made["scopes"] == ["devices:read", "devices:write"]
    assert "client_secret" not in api(ALICE, "GET", f"/registrations/{cid}").body  # shown once
    token = api.auth.tokens.client_credentials(cid, made["client_secret"])
    edited = api(ALICE, "PATCH", f"/registrations/{cid}", {"name": "Nightly", "scopes": ["devices:read"]})
    assert (edited.status, edited.body["name"], edited.body["scopes"]) == (200, "Nightly", ["devices:read"])
    assert edited.body["description"] == ""  # omitted: unchanged
    with pytest.raises(Exception, match="invalid"):
        api.auth.verify(token.access_token)  # narrowed: the old token lost its rights
    second = api(ALICE, "POST", f"/registrations/{cid}/secrets", {"secret_days": 730})
    assert second.status == 201 and len(second.body["secrets"]) == 2
    rotated = api(ALICE, "POST", f"/registrations/{cid}/rotate-secret", {})
    assert rotated.status == 200 and [s["id"] for s in rotated.body["secrets"]] == [rotated.body["secret_id"]]
    assert api.auth.clients.check_secret(cid, second.body["client_secret"]) is None  # dead at once
    pem = _certificate(clock)
    added = api(ALICE, "POST", f"/registrations/{cid}/certificates", {"certificate": pem})
    assert added.status == 201 and added.body["certificate"]["subject"] == "CN=backup"
    der = load_pem_x509_certificate(
        keys.certificate_pem(keys.private_key("rsa"), now=clock()), None
    ).public_bytes(serialization.Encoding.DER)
    as_der = api(
        ALICE, "POST", f"/registrations/{cid}/certificates", {"certificate": base64.b64encode(der).decode()}
    )
    assert as_der.status == 201 and len(as_der.body["certificates"]) == 2
    removed = api(
        ALICE, "DELETE", f"/registrations/{cid}/certificates/{added.body['certificate']['thumbprint']}"
    )
    assert removed.status == 200 and len(removed.body["certificates"]) == 1
    assert api(ALICE, "POST", f"/registrations/{cid}/disable", {}).body["enabled"] is False
    assert api(ALICE, "POST", f"/registrations/{cid}/enable", raw=b"").body["enabled"] is True
    renewed = api(ALICE, "POST", f"/registrations/{cid}/renew", {"days": 90})
    assert renewed.status == 200 and renewed.body["registration_expires_at"] is not None
    deleted = api(ALICE, "DELETE", f"/registrations/{cid}")
    assert (deleted.status, deleted.body) == (204, None)
    assert_problem(api(ALICE, "GET", f"/registrations/{cid}"), 404)
    actions = [action for _, action, _, _ in api.audit.actions]
    assert actions == [
        "registration.create",
        "registration.update",
        "registration.add_secret",
        "registration.rotate_secret",
        "registration.add_certificate",
        "registration.add_certificate",
        "registration.remove_certificate",
        "registration.disable",
        "registration.enable",
        "registration.renew",
        "registration.delete",
    ]
    assert {actor for actor, _, _, _ in api.audit.actions} == {"alice"}


def test_every_refused_field_is_named_at_once(api: Api) -> None:
    problem = assert_problem(
        api(
            ALICE,
            "POST",
            "/registrations",
            {
                "tenant": "site 1",
                "name": " ",
                "scopes": ["bad scope"],
                "customer_scope": "some",
                "secret_days": "365",
                "x": 1,
            },
        ),
        422,
    )
    fields = {e["field"]: e["reason"] for e in problem["errors"]}
    assert set(fields) == {"tenant", "name", "scopes.0", "customer_scope", "secret_days", "x"}
    assert "1-200 printable characters" in fields["name"]  # the service's own words
    assert api.auth.registrations.list().total == 0  # nothing half-written


def test_a_services_refusal_names_its_field(api: Api) -> None:
    unknown = assert_problem(
        api(ALICE, "POST", "/registrations", {"tenant": "site-1", "name": "x", "scopes": ["nope:read"]}), 422
    )
    assert unknown["errors"] == [{"field": "scopes", "reason": "not in the permission catalog: nope:read"}]
    days = assert_problem(
        api(ALICE, "POST", "/registrations", {"tenant": "site-1", "name": "x", "secret_days": 17}), 422
    )
    assert [e["field"] for e in days["errors"]] == ["secret_days"]
    made = create(api, ALICE, "site-1")
    bad = assert_problem(
        api(
            ALICE, "POST", f"/registrations/{made['client_id']}/certificates", {"certificate": "not base64!"}
        ),
        422,
    )
    assert [e["field"] for e in bad["errors"]] == ["certificate"]


@pytest.mark.parametrize(
    ("headers", "raw", "status"),
    [
        ({}, b"{}", 415),
        ({"content-type": "application/x-www-form-urlencoded"}, b"name=x", 415),
        ({"content-type": "text/plain"}, b"{}", 415),
        ({"content-type": "application/json"}, b"{not json", 400),
        ({"content-type": "application/json"}, b"[]", 422),
        ({"content-type": "application/json; charset=utf-8"}, b"{}", 200),
        ({"content-type": "application/json"}, b"", 200),
    ],
)
def test_a_post_must_be_json(api: Api, headers: dict[str, str], raw: bytes, status: int) -> None:
    """A cross-site form can send none of the refused ones with a session cookie (no CSRF)."""
    made = create(api, ALICE, "site-1")
    response = api.api.handle(
        Request("POST", f"{BASE}/registrations/{made['client_id']}/disable", headers, body=raw), lambda: ALICE
    )
    assert response.status == status
    assert api.auth.registrations.get(made["client_id"]).enabled is (status != 200)


def test_a_body_over_the_limit_is_refused(api: Api) -> None:
    made = create(api, ALICE, "site-1")
    huge = json.dumps({"certificate": "A" * 300_000}).encode()
    assert_problem(api(ALICE, "POST", f"/registrations/{made['client_id']}/certificates", raw=huge), 413)


def test_query_parameters_are_checked(api: Api) -> None:
    for query, field in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("sort=secret", "sort"),
        ("order=up", "order"),
        ("colour=red", "colour"),
        ("expires_within_days=x", "expires_within_days"),
    ]:
        problem = assert_problem(api(ALICE, "GET", f"/registrations?{query}"), 422)
        assert [e["field"] for e in problem["errors"]] == [field], query
    repeated = assert_problem(api(ALICE, "GET", "/registrations?limit=1&limit=2"), 422)
    assert repeated["errors"] == [{"field": "limit", "reason": "repeated"}]


def test_paging_sorting_and_the_expiry_filter(api: Api, clock: FrozenClock) -> None:
    names = ["bravo", "Alpha", "charlie"]
    made = []
    for name in names:
        made.append(create(api, ALICE, "site-1", name=name, secret_days=365))
        clock.advance(1)
    page = api(ALICE, "GET", "/registrations?sort=name&limit=2").body
    assert [r["name"] for r in page["items"]] == ["Alpha", "bravo"] and page["total"] == 3
    rest = api(ALICE, "GET", "/registrations?sort=name&limit=2&offset=2").body
    assert [r["name"] for r in rest["items"]] == ["charlie"]
    newest = api(ALICE, "GET", "/registrations?order=desc").body
    assert [r["name"] for r in newest["items"]] == ["charlie", "Alpha", "bravo"]
    assert api(ALICE, "GET", "/registrations?name_contains=ALP").body["total"] == 1
    assert api(ALICE, "GET", "/registrations?expires_within_days=30").body["total"] == 0
    assert api(ALICE, "GET", "/registrations?expires_within_days=366").body["total"] == 3


# ---------------------------------------------------------------------------- who may do what


def test_nobody_signed_in_is_401_and_a_guards_refusal_is_its_own(api: Api) -> None:
    assert_problem(api(None, "GET", "/registrations"), 401)

    def refuse() -> Admin | None:
        raise AdminRefused(401, "expired session", (("WWW-Authenticate", 'Bearer realm="x"'),))

    response = api.api.handle(Request("GET", BASE + "/session", {}), refuse)
    assert response.status == 401 and response.header("WWW-Authenticate") == 'Bearer realm="x"'
    # The document needs nobody: it is how a client learns the API.
    assert api.api.handle(Request("GET", BASE + "/openapi.json", {}), refuse).status == 200


def test_unknown_paths_and_methods(api: Api) -> None:
    assert_problem(api(ALICE, "GET", "/nothing-here"), 404)
    wrong = assert_problem(api(ALICE, "PUT", "/registrations"), 405)
    assert wrong["detail"] == "PUT is not allowed here"
    assert api(ALICE, "PUT", "/registrations").headers["allow"] == "GET, POST"


def test_the_catalog_is_changed_by_catalog_admins_only(api: Api) -> None:
    forbidden = assert_problem(api(BOB, "POST", "/permissions", {"name": "reports:read"}), 403)
    assert "catalog" in forbidden["detail"]
    added = api(ALICE, "POST", "/permissions", {"name": "reports:read", "description": "Read reports"})
    assert added.status == 201 and added.body["access"] == "read"
    assert [p["name"] for p in api(BOB, "GET", "/permissions?contains=report").body["items"]] == [
        "reports:read"
    ]
    assert_problem(api(ALICE, "POST", "/permissions", {"name": "reports:read"}), 409)
    assert_problem(api(BOB, "DELETE", "/permissions/reports:read"), 403)
    assert api(ALICE, "DELETE", "/permissions/reports:read").status == 204
    assert_problem(api(ALICE, "DELETE", "/permissions/reports:read"), 404)


def test_a_held_permission_names_only_the_admins_own_holders(api: Api) -> None:
    mine = create(api, ALICE, "site-1", name="Mine", scopes=["users:read"])
    theirs = create(api, BOB, "site-2", name="Secret project", scopes=["users:read"])
    problem = assert_problem(api(ALICE, "DELETE", "/permissions/users:read"), 409)
    assert mine["client_id"] in problem["detail"] and "(1 in other tenants)" in problem["detail"]
    assert theirs["client_id"] not in problem["detail"] and "Secret project" not in problem["detail"]


def test_refresh_tokens_are_the_admins_own(api: Api) -> None:
    made = api(ALICE, "POST", "/refresh-tokens", {"scopes": ["devices:read"]})
    assert made.status == 201 and made.body["refresh_token"].startswith("ear_")
    assert (made.body["user"], made.body["tenant"]) == ("alice", "site-1")
    assert [t["id"] for t in api(ALICE, "GET", "/refresh-tokens").body["items"]] == [made.body["id"]]
    assert api(BOB, "GET", "/refresh-tokens").body == {"items": []}
    assert_problem(api(BOB, "POST", f"/refresh-tokens/{made.body['id']}/revoke", {}), 404)
    assert_problem(api(ALICE, "POST", "/refresh-tokens", {"tenant": "site-2"}), 422)
    revoked = api(ALICE, "POST", f"/refresh-tokens/{made.body['id']}/revoke", {})
    assert revoked.status == 200 and revoked.body["revoked_at"] is not None


def test_session_and_tenants(api: Api) -> None:
    both = Admin("carol", frozenset({"site-2", "site-1"}))
    assert api(both, "GET", "/session").body == {
        "admin": "carol",
        "tenants": ["site-1", "site-2"],
        "manages_catalog": False,
    }
    assert api(both, "GET", "/tenants").body == {"items": ["site-1", "site-2"]}


# ---------------------------------------------------------------------------- the document


def test_the_document_lists_every_operation(api: Api) -> None:
    document = api(None, "GET", "/openapi.json").body
    assert document["openapi"] == "3.1.0"
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert {(op.method, op.path) for op in OPERATIONS} <= listed
    assert len(
        {entry["operationId"] for item in document["paths"].values() for entry in item.values()}
    ) == len(listed)
    created = document["paths"]["/registrations"]["post"]
    assert created["requestBody"]["required"] is True
    schema = created["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/NewRegistration"}
    assert document["components"]["schemas"]["NewRegistration"]["required"] == ["tenant", "name"]
    for item in document["paths"].values():
        for entry in item.values():
            assert "200" in entry["responses"] or "201" in entry["responses"] or "204" in entry["responses"]


def test_answers_match_the_document(api: Api, clock: FrozenClock) -> None:
    """Every answer of a short session validates against its schema in the document."""
    document = api(None, "GET", "/openapi.json").body
    made = create(api, ALICE, "site-1", scopes=["devices:read"])
    cid = made["client_id"]
    calls = [
        ("POST", "/registrations", "/registrations", None),
        ("GET", f"/registrations/{cid}", "/registrations/{client_id}", None),
        ("GET", "/registrations", "/registrations", None),
        (
            "POST",
            f"/registrations/{cid}/certificates",
            "/registrations/{client_id}/certificates",
            {"certificate": _certificate(clock)},
        ),
        ("GET", "/permissions", "/permissions", None),
        ("GET", "/session", "/session", None),
        ("POST", "/registrations/delete", "/registrations/delete", {"client_ids": ["x"]}),
        ("GET", "/nope", None, None),
        ("POST", "/registrations", "/registrations", {"tenant": "site-1"}),
    ]
    for method, path, template, body in calls:
        answer = api(
            ALICE,
            method,
            path,
            body if body is not None else ({"tenant": "site-1", "name": "n"} if method == "POST" else None),
        )
        if template is None:
            schema = {"$ref": "#/components/schemas/Problem"}
        else:
            responses = document["paths"][template][method.lower()]["responses"]
            content = responses[str(answer.status)]["content"]
            schema = next(iter(content.values()))["schema"]
        jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]}).validate(
            answer.body
        )


# ---------------------------------------------------------------------------- the audit trail


def test_the_audit_trail_is_the_admins_tenants_only(backend_api: Api) -> None:
    api = backend_api
    mine = create(api, ALICE, "site-1")
    theirs = create(api, BOB, "site-2")
    api(ALICE, "POST", f"/registrations/{mine['client_id']}/disable", {})
    api.auth.flush()
    answer = api(ALICE, "GET", "/audit")
    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    # (one frozen instant: records of the same time are listed by id)
    assert sorted((r["actor"], r["action"], r["client_id"]) for r in answer.body["items"]) == [
        ("alice", "registration.create", mine["client_id"]),
        ("alice", "registration.disable", mine["client_id"]),
    ]
    assert {r["tenant"] for r in answer.body["items"]} == {"site-1"} and answer.body["total"] == 2
    # Another tenant's client ID yields nothing, its trail is "not found", as a missing one's.
    assert api(ALICE, "GET", f"/audit?client_id={theirs['client_id']}").body["total"] == 0
    assert api(ALICE, "GET", "/audit?tenant=site-2").body["total"] == 0
    assert_problem(api(ALICE, "GET", f"/registrations/{theirs['client_id']}/audit"), 404)
    own = api(ALICE, "GET", f"/registrations/{mine['client_id']}/audit?limit=1")
    assert own.status == 200 and own.body["total"] == 2 and len(own.body["items"]) == 1
    assert api(BOB, "GET", f"/registrations/{theirs['client_id']}/audit").body["total"] == 1
    # A deleted registration of theirs keeps its trail.
    api(ALICE, "DELETE", f"/registrations/{mine['client_id']}")
    api.auth.flush()
    assert api(ALICE, "GET", f"/registrations/{mine['client_id']}/audit").body["total"] == 3
    since = api(ALICE, "GET", "/audit?since=2100-01-01T00:00:00Z")
    assert since.status == 200 and since.body["items"] == []
    assert_problem(api(ALICE, "GET", "/audit?limit=501"), 422)
    assert_problem(api(ALICE, "GET", "/audit?since=yesterday"), 422)


def test_rotation_with_a_grace_period(api: Api) -> None:
    made = create(api, ALICE, "site-1")
    rotated = api(ALICE, "POST", f"/registrations/{made['client_id']}/rotate-secret", {"grace_seconds": 3600})
    assert rotated.status == 200, rotated
    old = next(s for s in rotated.body["secrets"] if s["id"] == made["secret_id"])
    assert old["replaced_at"] is not None and old["last_used_at"] is None
    assert len(rotated.body["secrets"]) == 2
    too_long = api(
        ALICE, "POST", f"/registrations/{made['client_id']}/rotate-secret", {"grace_seconds": 8 * 86400}
    )
    assert [e["field"] for e in assert_problem(too_long, 422)["errors"]] == ["grace_seconds"]
    at_once = api(ALICE, "POST", f"/registrations/{made['client_id']}/rotate-secret", {})
    assert len(at_once.body["secrets"]) == 1

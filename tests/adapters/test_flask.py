"""The Flask adapter: the extension and its blueprint, ``require_scopes``, ``current_principal`` and the
``required`` mode. What both frameworks must answer alike is in test_conformance.py."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import flask
import pytest
from flask import g
from werkzeug.test import TestResponse

from embedauth import ConfigurationError, EmbedAuth, StorageError
from embedauth.adapters.flask import EmbedAuthFlask, current_principal, require_scopes
from embedauth.clock import FrozenClock
from embedauth.http.messages import MAX_FORM_BYTES
from embedauth.models import CreatedSecret, Principal
from tests.adapters.apps import ISSUER, basic, bearer_header, flask_app, open_auth

FORM = "application/x-www-form-urlencoded"
CLIENT_CREDENTIALS = urlencode([("grant_type", "client_credentials")])


def client_basic(created: CreatedSecret) -> dict[str, str]:
    return {"Authorization": basic(created.client_id, created.client_secret)}


def protected(app: flask.Flask) -> flask.Flask:
    """Adds /me (any caller), /write (devices:write) and /open (no check) to ``app``."""

    @app.get("/me")
    @require_scopes()
    def me() -> dict[str, object]:
        assert g.embedauth_principal.token_id == current_principal.token_id
        return {"client_id": current_principal.client_id, "scopes": sorted(current_principal.scopes)}

    @app.get("/write")
    @require_scopes("devices:write")
    def write() -> str:
        return "written"

    @app.get("/open")
    def open_view() -> str:
        return "open"

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/peek")
    def peek() -> str:
        return current_principal.client_id

    return app


# ------------------------------------------------------------------------- the extension


def test_the_extension_is_kept_in_app_extensions(auth: EmbedAuth) -> None:
    app = flask.Flask(__name__)
    extension = EmbedAuthFlask(app, auth)
    assert app.extensions["embedauth"] is extension
    rules = {rule.rule: rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("embedauth.")}
    assert set(rules) == {
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/healthz",
    }
    assert all(rule.methods is None for rule in rules.values())  # every method reaches the endpoint


def test_init_app_pattern(auth: EmbedAuth, created: CreatedSecret) -> None:
    extension = EmbedAuthFlask(auth=auth)
    apps = [flask.Flask("first"), flask.Flask("second")]
    for app in apps:
        extension.init_app(app)
        protected(app)
    for app in apps:
        issued = app.test_client().post(
            "/oauth/token", data=CLIENT_CREDENTIALS, content_type=FORM, headers=client_basic(created)
        )
        assert issued.status_code == 200
        me = app.test_client().get("/me", headers=bearer_header(issued.get_json()["access_token"]))
        assert me.get_json() == {"client_id": created.client_id, "scopes": ["devices:read"]}


def test_require_scopes_and_current_principal(auth: EmbedAuth, created: CreatedSecret, token: str) -> None:
    app = protected(flask_app(auth))
    client = app.test_client()
    assert client.get("/me", headers=bearer_header(token)).get_json()["client_id"] == created.client_id
    missing = client.get("/me")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == f'Bearer realm="{ISSUER}"'
    insufficient = client.get("/write", headers=bearer_header(token))
    assert insufficient.status_code == 403
    assert insufficient.get_json()["scope"] == "devices:write"
    assert client.get("/open", headers=bearer_header("garbage")).data == b"open"  # not checked there


def test_current_principal_outside_a_protected_view(auth: EmbedAuth, token: str) -> None:
    app = protected(flask_app(auth))
    app.testing = True
    with pytest.raises(RuntimeError, match="no authenticated caller"):
        app.test_client().get("/peek", headers=bearer_header(token))


def test_require_scopes_without_the_extension() -> None:
    app = flask.Flask(__name__)
    app.testing = True

    @app.get("/")
    @require_scopes()
    def index() -> str:
        return "never"

    with pytest.raises(RuntimeError, match="not initialised"):
        app.test_client().get("/")


def test_revoke_has_an_empty_body_and_no_content_type(
    auth: EmbedAuth, created: CreatedSecret, token: str
) -> None:
    response = (
        flask_app(auth)
        .test_client()
        .post(
            "/oauth/revoke",
            data=urlencode([("token", token)]),
            content_type=FORM,
            headers=client_basic(created),
        )
    )
    assert response.status_code == 200
    assert response.data == b""
    assert "Content-Type" not in response.headers
    assert response.headers["Content-Length"] == "0"
    assert [name for name, _ in response.headers] == ["cache-control", "pragma", "content-length"]
    with pytest.raises(Exception, match="invalid token"):
        auth.verify(token)


def test_head_keeps_the_get_length(auth: EmbedAuth) -> None:
    client = flask_app(auth).test_client()
    got, head = client.get("/.well-known/jwks.json"), client.head("/.well-known/jwks.json")
    assert head.data == b""
    assert head.headers["Content-Length"] == got.headers["Content-Length"] == str(len(got.data))


def test_verifier_only(auth: EmbedAuth, token: str) -> None:
    app = flask.Flask(__name__)
    EmbedAuthFlask(app, verifier=auth, realm="devices-api")
    protected(app)
    client = app.test_client()
    assert client.post("/oauth/token").status_code == 404  # no endpoints without an EmbedAuth
    assert client.get("/me", headers=bearer_header(token)).status_code == 200
    assert client.get("/me").headers["WWW-Authenticate"] == 'Bearer realm="devices-api"'


def test_a_verifier_needs_a_realm(auth: EmbedAuth) -> None:
    with pytest.raises(ConfigurationError, match="realm"):
        EmbedAuthFlask(verifier=auth)
    with pytest.raises(ConfigurationError, match="verifier"):
        EmbedAuthFlask(required=True)


def test_no_verifier_no_checks() -> None:
    app = flask.Flask(__name__)
    app.testing = True
    EmbedAuthFlask(app)
    protected(app)
    with pytest.raises(RuntimeError, match="no verifier"):
        app.test_client().get("/me")


def test_required_mode(auth: EmbedAuth, created: CreatedSecret, token: str) -> None:
    app = protected(flask_app(auth, required=True, exempt=["/health", "/public/"]))
    client = app.test_client()
    refused = client.get("/open")
    assert refused.status_code == 401
    assert refused.get_json() == {"error": "unauthorized", "error_description": "a bearer token is required"}
    assert client.get("/open", headers=bearer_header(token)).data == b"open"
    assert client.get("/peek", headers=bearer_header(token)).data == created.client_id.encode()
    assert client.get("/write", headers=bearer_header(token)).status_code == 403
    assert client.get("/health").data == b"ok"
    assert client.get("/nowhere").status_code == 401
    # The extension's own endpoints are never protected: their clients authenticate with Basic.
    issued = client.post(
        "/oauth/token", data=CLIENT_CREDENTIALS, content_type=FORM, headers=client_basic(created)
    )
    assert issued.status_code == 200
    assert client.get("/.well-known/jwks.json").status_code == 200


def test_a_disabled_registrations_token_is_refused_at_once(
    auth: EmbedAuth, created: CreatedSecret, token: str
) -> None:
    client = flask_app(auth).test_client()
    assert client.get("/demo/devices", headers=bearer_header(token)).status_code == 200
    auth.registrations.disable(created.client_id)
    refused = client.get("/demo/devices", headers=bearer_header(token))
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid_token"


def test_storage_failure_is_503(
    auth: EmbedAuth, created: CreatedSecret, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: object) -> None:
        raise StorageError("database unreachable")

    monkeypatch.setattr(auth.storage, "get_registration", down)
    response = (
        flask_app(auth)
        .test_client()
        .post("/oauth/token", data=CLIENT_CREDENTIALS, content_type=FORM, headers=client_basic(created))
    )
    assert response.status_code == 503
    assert response.get_json() == {"error": "temporarily_unavailable"}
    assert response.headers["Retry-After"] == "1"


def test_storage_failure_while_verifying_is_503(
    auth: EmbedAuth, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(token: str) -> Principal:
        raise StorageError("database unreachable")

    monkeypatch.setattr(auth, "verify", down)
    response = flask_app(auth).test_client().get("/demo/devices", headers=bearer_header(token))
    assert response.status_code == 503


def test_a_streamed_body_is_counted(auth: EmbedAuth, created: CreatedSecret) -> None:
    """A chunked body (no Content-Length; the server marks the input terminated) is read to the limit only."""
    client = flask_app(auth).test_client()

    def post(body: bytes) -> TestResponse:
        return client.post(
            "/oauth/token",
            input_stream=io.BytesIO(body),
            content_type=FORM,
            headers=client_basic(created),
            environ_overrides={"wsgi.input_terminated": True},
        )

    assert post(CLIENT_CREDENTIALS.encode()).status_code == 200
    large = post(CLIENT_CREDENTIALS.encode() + b"&pad=" + b"x" * MAX_FORM_BYTES)
    assert large.status_code == 400
    assert large.get_json()["error_description"] == f"the request body is larger than {MAX_FORM_BYTES} bytes"


def test_prefix(auth: EmbedAuth, created: CreatedSecret) -> None:
    app = flask.Flask(__name__)
    EmbedAuthFlask(app, auth, prefix="/auth")
    client = app.test_client()
    post = {"data": CLIENT_CREDENTIALS, "content_type": FORM, "headers": client_basic(created)}
    assert client.post("/auth/oauth/token", **post).status_code == 200
    assert client.post("/oauth/token", **post).status_code == 404
    assert client.get("/.well-known/oauth-authorization-server").status_code == 200
    assert client.get("/auth/.well-known/jwks.json").data == client.get("/.well-known/jwks.json").data


def test_the_prefix_defaults_to_the_one_the_metadata_advertises(clock: FrozenClock) -> None:
    with open_auth(clock, endpoint_prefix="/api") as auth:
        app = flask.Flask(__name__)
        EmbedAuthFlask(app, auth)
        client = app.test_client()
        metadata = client.get("/.well-known/oauth-authorization-server").get_json()
        for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint", "jwks_uri"):
            path = metadata[name].removeprefix(ISSUER)
            assert path.startswith("/api/")
            assert client.get(path).status_code in {200, 405}, name

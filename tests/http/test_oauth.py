"""The HTTP-agnostic OAuth endpoints: every status, error code and header of the token, revocation and
introspection endpoints, and the metadata and JWKS documents. No web framework: requests are built
as :class:`~embedauth.http.messages.Request` values (the parsers are tests/http/test_messages.py's)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedauth import EmbedAuth, InvalidInput, InvalidToken, StorageError
from embedauth.clock import FrozenClock
from embedauth.credentials.client_auth import ASSERTION_TYPE
from embedauth.http.messages import Request, Response, parse_form
from embedauth.http.oauth import OAuthEndpoints
from embedauth.models import CreatedSecret
from tests.conftest import ISSUER, Recorder
from tests.http.helpers import JSON, NO_STORE, basic, body, mistyped, refused
from tests.keys import PrivateKey, alg_for, certificate_pem, private_key

TOKEN_ENDPOINT = ISSUER + "/oauth/token"
FAILED = "client authentication failed"
PATHS = {
    "token": "/oauth/token",
    "revoke": "/oauth/revoke",
    "introspect": "/oauth/introspect",
    "metadata": "/.well-known/oauth-authorization-server",
    "jwks": "/.well-known/jwks.json",
}

Handler = Callable[[Request], Response]
Form = list[tuple[str, str]]


# ------------------------------------------------------------------------- the test bed


@pytest.fixture
def endpoints(auth: EmbedAuth) -> OAuthEndpoints:
    return OAuthEndpoints(auth)


@pytest.fixture
def created(auth: EmbedAuth) -> CreatedSecret:
    """A registration of tenant site-1."""
    return auth.registrations.create(tenant="site-1", name="Backup", scopes=["devices:read", "devices:write"])


@pytest.fixture
def neighbour(auth: EmbedAuth) -> CreatedSecret:
    """Another registration of the same tenant."""
    return auth.registrations.create(tenant="site-1", name="Monitor", scopes=["devices:read"])


@pytest.fixture
def stranger(auth: EmbedAuth) -> CreatedSecret:
    """A registration of another tenant."""
    return auth.registrations.create(tenant="site-2", name="Other", scopes=["devices:read"])


def call(
    handler: Handler, method: str, form: Sequence[tuple[str, str]] = (), headers: dict[str, str] | None = None
) -> Response:
    path = PATHS.get(getattr(handler, "__name__", ""), "/")
    return handler(Request(method=method, url=ISSUER + path, headers=headers or {}, form=form))


def post(handler: Handler, form: Form, headers: dict[str, str] | None = None) -> Response:
    return call(handler, "POST", form, headers)


def secret_post(created: CreatedSecret) -> Form:
    return [("client_id", created.client_id), ("client_secret", created.client_secret)]


CLIENT_CREDENTIALS: Form = [("grant_type", "client_credentials")]


def ok(response: Response) -> dict[str, Any]:
    """A 200 JSON response that must not be cached."""
    assert response.status == 200, response.body
    assert response.headers == (JSON, *NO_STORE)
    return body(response)


def same_bytes(first: Response, second: Response) -> None:
    assert (first.status, first.headers, first.content()) == (
        second.status,
        second.headers,
        second.content(),
    )


# ------------------------------------------------------------------------- private_key_jwt


class Signer:
    """A registration's certificate key, signing client assertions as a client library would."""

    def __init__(self, auth: EmbedAuth, client_id: str, key: PrivateKey) -> None:
        self.auth, self.client_id, self.key = auth, client_id, key

    def sign(self, **changes: Any) -> str:
        now = int(self.auth.clock())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_ENDPOINT,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(changes)
        return jwt.encode(claims, self.key, algorithm=alg_for(self.key))

    def form(self, **changes: Any) -> Form:
        return [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", self.sign(**changes))]


def signer_for(auth: EmbedAuth, client_id: str, key_name: str = "p256") -> Signer:
    key = private_key(key_name)
    auth.registrations.add_certificate(client_id, certificate_pem(key, now=auth.clock()))
    return Signer(auth, client_id, key)


@pytest.fixture
def signer(auth: EmbedAuth, created: CreatedSecret) -> Signer:
    return signer_for(auth, created.client_id)


# ========================================================================= token endpoint: success


@pytest.mark.rfc("6749", "4.4.3")
def test_client_secret_basic(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, recorder: Recorder
) -> None:
    answer = ok(post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, created.client_secret)))
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert (answer["token_type"], answer["expires_in"], answer["scope"]) == (
        "Bearer",
        3600,
        "devices:read devices:write",
    )
    principal = auth.verify(answer["access_token"])
    assert (principal.client_id, principal.tenant) == (created.client_id, "site-1")
    assert recorder.denied == []


@pytest.mark.rfc("6749", "2.3.1")
def test_client_secret_post(endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret) -> None:
    answer = ok(post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)]))
    assert auth.verify(answer["access_token"]).client_id == created.client_id


@pytest.mark.rfc("6749", "2.3.1")
def test_basic_with_the_same_client_id_in_the_form(endpoints: OAuthEndpoints, created: CreatedSecret) -> None:
    """Some client libraries send client_id in the body next to HTTP Basic."""
    form = [*CLIENT_CREDENTIALS, ("client_id", created.client_id)]
    ok(post(endpoints.token, form, basic(created.client_id, created.client_secret)))


@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize("key_name", ["rsa", "p256", "ed25519"])
@pytest.mark.parametrize("with_client_id", [False, True])
def test_private_key_jwt(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, key_name: str, with_client_id: bool
) -> None:
    signer = signer_for(auth, created.client_id, key_name)
    form = [*CLIENT_CREDENTIALS, *signer.form()]
    if with_client_id:
        form.append(("client_id", created.client_id))
    answer = ok(post(endpoints.token, form))
    principal = auth.verify(answer["access_token"])
    assert principal.client_id == created.client_id
    assert principal.credential_id == auth.registrations.get(created.client_id).certificates[0].id


@pytest.mark.rfc("7523", "3")
def test_private_key_jwt_with_the_issuer_as_audience(endpoints: OAuthEndpoints, signer: Signer) -> None:
    ok(post(endpoints.token, [*CLIENT_CREDENTIALS, *signer.form(aud=ISSUER)]))


@pytest.mark.rfc("6749", "3.3")
def test_scope_subset(endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret) -> None:
    form = [*CLIENT_CREDENTIALS, *secret_post(created), ("scope", "devices:read")]
    answer = ok(post(endpoints.token, form))
    assert answer["scope"] == "devices:read"
    assert auth.verify(answer["access_token"]).scopes == {"devices:read"}


@pytest.mark.rfc("6749", "3.1")
def test_blank_parameters_are_omitted(endpoints: OAuthEndpoints, created: CreatedSecret) -> None:
    """An empty scope is no scope (all granted); a blank repeat is not a repeat."""
    form = [("grant_type", ""), *CLIENT_CREDENTIALS, *secret_post(created), ("scope", ""), ("extra", "")]
    assert ok(post(endpoints.token, form))["scope"] == "devices:read devices:write"


@pytest.mark.rfc("6749", "6")
def test_refresh_token_grant(endpoints: OAuthEndpoints, auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice", scopes=["devices:read", "users:read"], tenant="site-1")
    form = [("grant_type", "refresh_token"), ("refresh_token", made.refresh_token)]
    answer = ok(post(endpoints.token, form))
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert answer["refresh_token"] == made.refresh_token
    assert answer["scope"] == "devices:read users:read"
    assert auth.verify(answer["access_token"]).subject == "alice"
    narrowed = ok(post(endpoints.token, [*form, ("scope", "users:read")]))
    assert narrowed["scope"] == "users:read"


@pytest.mark.rfc("6749", "6")
def test_refresh_token_grant_ignores_a_bare_client_id(endpoints: OAuthEndpoints, auth: EmbedAuth) -> None:
    """What public-client libraries send: an identifier, not a credential."""
    made = auth.refresh_tokens.create("alice")
    form = [("grant_type", "refresh_token"), ("refresh_token", made.refresh_token), ("client_id", "cli")]
    ok(post(endpoints.token, form))


# ========================================================================= token endpoint: errors


@pytest.mark.rfc("9110", "15.5.6")
@pytest.mark.parametrize("name", ["token", "revoke", "introspect"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "post"])
def test_post_endpoints_refuse_other_methods(endpoints: OAuthEndpoints, name: str, method: str) -> None:
    response = call(getattr(endpoints, name), method, CLIENT_CREDENTIALS)
    assert response.status == 405
    assert response.headers == (JSON, *NO_STORE, ("Allow", "POST"))
    assert body(response)["error"] == "invalid_request"


@pytest.mark.rfc("6749", "3.2")
@pytest.mark.parametrize(
    "name", ["grant_type", "scope", "client_id", "client_secret", "client_assertion", "anything"]
)
def test_repeated_parameter(endpoints: OAuthEndpoints, created: CreatedSecret, name: str) -> None:
    form = [*CLIENT_CREDENTIALS, *secret_post(created), ("scope", "devices:read"), (name, "x"), (name, "y")]
    answer = refused(post(endpoints.token, form), 400, "invalid_request")
    assert answer["error_description"] == f"the parameter {name} is repeated"
    assert created.client_secret not in json.dumps(answer)


@pytest.mark.rfc("6749", "5.2")
def test_repeated_parameter_with_a_strange_name_is_not_echoed(endpoints: OAuthEndpoints) -> None:
    form = [*CLIENT_CREDENTIALS, ('a"b\\c', "1"), ('a"b\\c', "2")]
    refused(post(endpoints.token, form), 400, "invalid_request", description="a parameter is repeated")


@pytest.mark.rfc("6749", "3.2")
def test_repeated_parameter_on_every_post_endpoint(endpoints: OAuthEndpoints) -> None:
    for handler in (endpoints.revoke, endpoints.introspect):
        refused(
            post(handler, [("token", "a"), ("token", "b")]),
            400,
            "invalid_request",
            description="the parameter token is repeated",
        )


@pytest.mark.rfc("6749", "5.2")
@pytest.mark.parametrize("form", [[], [("grant_type", "")], [("scope", "devices:read")]])
def test_missing_grant_type(endpoints: OAuthEndpoints, created: CreatedSecret, form: Form) -> None:
    response = post(endpoints.token, form, basic(created.client_id, created.client_secret))
    refused(response, 400, "invalid_request", description="grant_type is missing")


@pytest.mark.rfc("6749", "5.2")
@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "CLIENT_CREDENTIALS",
        "client_credentials ",
    ],
)
def test_unsupported_grant_type(endpoints: OAuthEndpoints, created: CreatedSecret, grant_type: str) -> None:
    response = post(endpoints.token, [("grant_type", grant_type), *secret_post(created)])
    description = "the grant types supported are client_credentials and refresh_token"
    refused(response, 400, "unsupported_grant_type", description=description)


@pytest.mark.rfc("6749", "5.2")
@pytest.mark.parametrize(
    "form",
    [[], [("client_id", "a-client")], [("client_secret", ""), ("client_assertion", "")]],
    ids=["nothing", "client-id-only", "blank-credentials"],
)
def test_no_client_authentication(endpoints: OAuthEndpoints, form: Form) -> None:
    """Nothing to authenticate with: 401 with the Basic challenge, the method to try."""
    response = post(endpoints.token, [*CLIENT_CREDENTIALS, *form])
    refused(response, 401, "invalid_client", challenge=True, description="client authentication is required")


@pytest.mark.rfc("6749", "5.2")
@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":secret").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:secret").decode(),
        "Basic " + base64.b64encode(b"%FF:secret").decode(),
        "Basic " + base64.b64encode(b"client:secret").decode().rstrip("="),
        "Bearer some.access.token",
        "Digest username=x",
        "",
    ],
)
def test_malformed_authorization_header(endpoints: OAuthEndpoints, authorization: str) -> None:
    response = post(endpoints.token, CLIENT_CREDENTIALS, {"authorization": authorization})
    refused(response, 401, "invalid_client", challenge=True)


@pytest.mark.rfc("6749", "2.3")
@pytest.mark.parametrize(
    "methods",
    [
        ("basic", "post"),
        ("basic", "assertion"),
        ("post", "assertion"),
        ("basic", "post", "assertion"),
        ("basic", "assertion-type-only"),
        ("post", "assertion-type-only"),
    ],
)
def test_more_than_one_authentication_method(
    endpoints: OAuthEndpoints, created: CreatedSecret, signer: Signer, methods: tuple[str, ...]
) -> None:
    form, headers = list(CLIENT_CREDENTIALS), {}
    if "basic" in methods:
        headers = basic(created.client_id, created.client_secret)
    if "post" in methods:
        form += secret_post(created)
    if "assertion" in methods:
        form += signer.form()
    if "assertion-type-only" in methods:
        form.append(("client_assertion_type", ASSERTION_TYPE))
    response = post(endpoints.token, form, headers)
    refused(response, 400, "invalid_request", description="use exactly one client authentication method")


@pytest.mark.rfc("6749", "2.3.1")
def test_basic_with_another_client_id_in_the_form(
    endpoints: OAuthEndpoints, created: CreatedSecret, neighbour: CreatedSecret
) -> None:
    form = [*CLIENT_CREDENTIALS, ("client_id", neighbour.client_id)]
    response = post(endpoints.token, form, basic(created.client_id, created.client_secret))
    refused(response, 400, "invalid_request")


@pytest.mark.rfc("6749", "2.3.1")
def test_client_secret_without_client_id(endpoints: OAuthEndpoints, created: CreatedSecret) -> None:
    form = [*CLIENT_CREDENTIALS, ("client_secret", created.client_secret)]
    refused(post(endpoints.token, form), 400, "invalid_request", description="client_secret needs client_id")


@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize(
    "assertion_type",
    [
        "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        ASSERTION_TYPE.upper(),
        None,
    ],
)
def test_wrong_client_assertion_type(
    endpoints: OAuthEndpoints, signer: Signer, assertion_type: str | None
) -> None:
    form = [*CLIENT_CREDENTIALS, ("client_assertion", signer.sign())]
    if assertion_type is not None:
        form.append(("client_assertion_type", assertion_type))
    answer = refused(post(endpoints.token, form), 400, "invalid_request")
    assert answer["error_description"] == f"client_assertion_type must be {ASSERTION_TYPE}"


@pytest.mark.rfc("7523", "2.2")
def test_client_assertion_type_without_an_assertion(
    endpoints: OAuthEndpoints, created: CreatedSecret
) -> None:
    form = [*CLIENT_CREDENTIALS, ("client_assertion_type", ASSERTION_TYPE), ("client_id", created.client_id)]
    refused(post(endpoints.token, form), 400, "invalid_request", description="client_assertion is missing")


@pytest.mark.rfc("6749", "5.2")
def test_unknown_client_and_wrong_secret_look_the_same_with_basic(
    endpoints: OAuthEndpoints, created: CreatedSecret, auth: EmbedAuth
) -> None:
    other_secret = auth.registrations.create(tenant="site-9", name="Other").client_secret
    wrong_secret = post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, other_secret))
    unknown_client = post(
        endpoints.token, CLIENT_CREDENTIALS, basic(str(uuid.uuid4()), created.client_secret)
    )
    malformed_secret = post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, "not-a-secret"))
    refused(wrong_secret, 401, "invalid_client", challenge=True, description=FAILED)
    same_bytes(wrong_secret, unknown_client)
    same_bytes(wrong_secret, malformed_secret)
    assert other_secret.encode() not in wrong_secret.content()


@pytest.mark.rfc("6749", "5.2")
def test_unknown_client_and_wrong_secret_look_the_same_with_post(
    endpoints: OAuthEndpoints, created: CreatedSecret, auth: EmbedAuth
) -> None:
    """client_secret_post did not use HTTP authentication: 401, no challenge."""
    other_secret = auth.registrations.create(tenant="site-9", name="Other").client_secret
    wrong_secret = post(
        endpoints.token,
        [*CLIENT_CREDENTIALS, ("client_id", created.client_id), ("client_secret", other_secret)],
    )
    unknown_client = post(
        endpoints.token,
        [*CLIENT_CREDENTIALS, ("client_id", str(uuid.uuid4())), ("client_secret", created.client_secret)],
    )
    refused(wrong_secret, 401, "invalid_client", description=FAILED)
    same_bytes(wrong_secret, unknown_client)


@pytest.mark.rfc("6749", "2.3.1")
def test_old_secret_after_rotation(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret
) -> None:
    ok(post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, created.client_secret)))
    rotated = auth.registrations.rotate_secret(created.client_id)
    response = post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, created.client_secret))
    refused(response, 401, "invalid_client", challenge=True, description=FAILED)
    ok(post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, rotated.client_secret)))


@pytest.mark.rfc("7523", "3")
def test_bad_and_replayed_assertions(
    endpoints: OAuthEndpoints, signer: Signer, stranger: CreatedSecret
) -> None:
    form = [*CLIENT_CREDENTIALS, *signer.form()]
    ok(post(endpoints.token, form))
    refused(post(endpoints.token, form), 401, "invalid_client", description=FAILED)  # replayed jti
    for bad in (
        signer.form(aud="https://elsewhere.example.com/token"),
        signer.form(exp=int(signer.auth.clock()) - 3600),
        [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", "not.a.jwt")],
    ):
        refused(post(endpoints.token, [*CLIENT_CREDENTIALS, *bad]), 401, "invalid_client", description=FAILED)
    # The form's client_id must be the assertion's subject.
    with_other_id = [*CLIENT_CREDENTIALS, *signer.form(), ("client_id", stranger.client_id)]
    refused(post(endpoints.token, with_other_id), 401, "invalid_client", description=FAILED)


@pytest.mark.rfc("6749", "5.2")
def test_disabled_registration_says_why(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, signer: Signer, recorder: Recorder
) -> None:
    """After authentication the client has proven who it is, so the reason may be told."""
    auth.registrations.disable(created.client_id)
    why = "the registration is disabled"
    response = post(endpoints.token, CLIENT_CREDENTIALS, basic(created.client_id, created.client_secret))
    refused(response, 401, "invalid_client", challenge=True, description=why)
    response = post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)])
    refused(response, 401, "invalid_client", description=why)
    response = post(endpoints.token, [*CLIENT_CREDENTIALS, *signer.form()])
    refused(response, 401, "invalid_client", description=why)
    assert recorder.denied[-1] == (created.client_id, why)


@pytest.mark.rfc("6749", "5.2")
def test_expired_secret_says_why(endpoints: OAuthEndpoints, auth: EmbedAuth, clock: FrozenClock) -> None:
    created = auth.registrations.create(tenant="site-1", name="Short", secret_days=365)
    clock.advance(366 * 86400)
    response = post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)])
    refused(response, 401, "invalid_client", description="the client secret has expired")


@pytest.mark.rfc("6749", "5.2")
@pytest.mark.parametrize(
    ("scope", "description"),
    [
        ("users:read", "not granted to this client: users:read"),
        ("devices:read users:read", "not granted to this client: users:read"),
        ("nonexistent", "not granted to this client: nonexistent"),
        ("devices:read  devices:write", "the scope is malformed"),
        ("devices:read\u00e9", "the scope is malformed"),
    ],
)
def test_invalid_scope(
    endpoints: OAuthEndpoints, created: CreatedSecret, scope: str, description: str
) -> None:
    form = [*CLIENT_CREDENTIALS, *secret_post(created), ("scope", scope)]
    refused(post(endpoints.token, form), 400, "invalid_scope", description=description)


@pytest.mark.rfc("6749", "6")
def test_refresh_token_missing(endpoints: OAuthEndpoints) -> None:
    response = post(endpoints.token, [("grant_type", "refresh_token"), ("refresh_token", "")])
    refused(response, 400, "invalid_request", description="refresh_token is missing")


@pytest.mark.rfc("6749", "5.2")
def test_refresh_token_invalid(endpoints: OAuthEndpoints, auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice", scopes=["devices:read"])
    for bad in ("ear_nope", mistyped(made.refresh_token), "garbage"):
        response = post(endpoints.token, [("grant_type", "refresh_token"), ("refresh_token", bad)])
        answer = refused(response, 400, "invalid_grant", description="the refresh token is invalid")
        assert bad not in json.dumps(answer)
    auth.refresh_tokens.revoke(made.id)
    form = [("grant_type", "refresh_token"), ("refresh_token", made.refresh_token)]
    refused(post(endpoints.token, form), 400, "invalid_grant", description="the refresh token is revoked")


@pytest.mark.rfc("6749", "5.2")
def test_refresh_token_scope_not_granted(endpoints: OAuthEndpoints, auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice", scopes=["devices:read"])
    form = [("grant_type", "refresh_token"), ("refresh_token", made.refresh_token), ("scope", "users:read")]
    refused(post(endpoints.token, form), 400, "invalid_scope")


@pytest.mark.rfc("6749", "6")
@pytest.mark.parametrize("method", ["basic", "post", "assertion", "malformed-basic"])
def test_refresh_token_with_client_credentials(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, signer: Signer, method: str
) -> None:
    """Refresh tokens here belong to a person, not a client: credentials would promise a binding check."""
    made = auth.refresh_tokens.create("alice")
    form = [("grant_type", "refresh_token"), ("refresh_token", made.refresh_token)]
    headers: dict[str, str] = {}
    if method == "basic":
        headers = basic(created.client_id, created.client_secret)
    elif method == "malformed-basic":
        headers = {"authorization": "Basic !!"}
    elif method == "post":
        form += secret_post(created)
    else:
        form += signer.form()
    response = post(endpoints.token, form, headers)
    answer = refused(response, 400, "invalid_request")
    assert answer["error_description"].startswith("refresh tokens here are not bound to a client")


# ------------------------------------------------------------------------- failures below the protocol


@pytest.mark.rfc("6749", "5.2")
def test_storage_error_escapes(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapters answer it with 503: the request may well succeed later."""

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageError("database unreachable")

    monkeypatch.setattr(auth.tokens, "for_client", down)
    with pytest.raises(StorageError):
        post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)])
    monkeypatch.setattr(auth.permissions, "list", down)
    with pytest.raises(StorageError):
        call(endpoints.metadata, "GET")


@pytest.mark.rfc("6749", "5.2")
def test_a_bug_is_a_500_that_says_nothing(
    endpoints: OAuthEndpoints,
    auth: EmbedAuth,
    created: CreatedSecret,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError(created.client_secret)

    monkeypatch.setattr(auth.tokens, "for_client", broken)
    response = post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)])
    assert response.status == 500 and response.headers == (JSON, *NO_STORE)
    assert body(response) == {
        "error": "server_error",
        "error_description": "the server could not handle the request",
    }
    assert "POST /oauth/token failed" in caplog.text


@pytest.mark.rfc("6749", "5.2")
def test_invalid_input_is_invalid_request_without_echo(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, monkeypatch: pytest.MonkeyPatch
) -> None:
    def picky(*args: Any, **kwargs: Any) -> Any:
        raise InvalidInput(f"cannot use {created.client_secret!r}")

    monkeypatch.setattr(auth.tokens, "for_client", picky)
    response = post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)])
    refused(response, 400, "invalid_request", description="the request is malformed")
    assert created.client_secret.encode() not in response.content()


@pytest.mark.rfc("6749", "5.2")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    form=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "grant_type",
                    "scope",
                    "client_id",
                    "client_secret",
                    "client_assertion",
                    "client_assertion_type",
                    "refresh_token",
                    "token",
                    "x",
                ]
            ),
            st.one_of(
                st.sampled_from(["client_credentials", "refresh_token", ASSERTION_TYPE, "", "devices:read"]),
                st.text(max_size=40),
            ),
        ),
        max_size=8,
    ),
    authorization=st.one_of(st.none(), st.text(max_size=40), st.builds(lambda s: "Basic " + s, st.text())),
)
def test_token_endpoint_never_raises(
    endpoints: OAuthEndpoints, form: Form, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    for handler in (endpoints.token, endpoints.revoke, endpoints.introspect):
        response = post(handler, form, headers)
        assert response.status in {200, 400, 401}
        assert dict(response.headers)["Cache-Control"] == "no-store"
        if response.status == 401:
            assert body(response)["error"] == "invalid_client"


# ========================================================================= revocation


@pytest.mark.rfc("7009", "2.2")
def test_revoke_own_access_token(endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret) -> None:
    access = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    auth.verify(access)
    response = post(endpoints.revoke, [("token", access)], basic(created.client_id, created.client_secret))
    assert (response.status, response.headers, response.body, response.content()) == (
        200,
        NO_STORE,
        None,
        b"",
    )
    with pytest.raises(InvalidToken):
        auth.verify(access)


@pytest.mark.rfc("7009", "2.1")
@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "banana"])
def test_revoke_by_possession(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, hint: str | None
) -> None:
    """Client authentication is optional: revoking only takes rights away. Hints are ignored."""
    access = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    form = [("token", access)] + ([("token_type_hint", hint)] if hint else [])
    response = post(endpoints.revoke, form)
    assert (response.status, response.headers, response.body) == (200, NO_STORE, None)
    with pytest.raises(InvalidToken):
        auth.verify(access)


@pytest.mark.rfc("7009", "2.1")
def test_revoke_refresh_token(endpoints: OAuthEndpoints, auth: EmbedAuth) -> None:
    made = auth.refresh_tokens.create("alice")
    access = auth.tokens.refresh(made.refresh_token).access_token
    response = post(endpoints.revoke, [("token", made.refresh_token), ("token_type_hint", "refresh_token")])
    assert (response.status, response.body) == (200, None)
    form = [("grant_type", "refresh_token"), ("refresh_token", made.refresh_token)]
    refused(post(endpoints.token, form), 400, "invalid_grant")
    with pytest.raises(InvalidToken):
        auth.verify(access)


@pytest.mark.rfc("7009", "2.2")
@pytest.mark.parametrize("token", ["garbage", "a.b.c", "ear_unknown", "eas_" + "0" * 50, "x" * 10_000])
def test_revoke_unknown_token(endpoints: OAuthEndpoints, created: CreatedSecret, token: str) -> None:
    for headers in ({}, basic(created.client_id, created.client_secret)):
        response = post(endpoints.revoke, [("token", token)], headers)
        assert (response.status, response.headers, response.body) == (200, NO_STORE, None)


@pytest.mark.rfc("7009", "2.1")
def test_revoke_another_clients_token(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, neighbour: CreatedSecret
) -> None:
    access = auth.tokens.client_credentials(neighbour.client_id, neighbour.client_secret).access_token
    response = post(endpoints.revoke, [("token", access)], basic(created.client_id, created.client_secret))
    refused(response, 400, "unauthorized_client", description="the token was not issued to this client")
    assert auth.verify(access).client_id == neighbour.client_id  # left alone


@pytest.mark.rfc("7009", "2.2.1")
def test_revoke_with_bad_client_authentication(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret
) -> None:
    access = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    response = post(endpoints.revoke, [("token", access)], basic(created.client_id, "eas_wrong"))
    refused(response, 401, "invalid_client", challenge=True, description=FAILED)
    form = [("token", access), ("client_id", created.client_id), ("client_secret", "eas_wrong")]
    refused(post(endpoints.revoke, form), 401, "invalid_client", description=FAILED)
    response = post(endpoints.revoke, [("token", access)], {"authorization": "Basic %%%"})
    refused(response, 401, "invalid_client", challenge=True)
    auth.verify(access)  # not revoked by any of them


@pytest.mark.rfc("7009", "2.1")
def test_revoke_with_private_key_jwt(endpoints: OAuthEndpoints, auth: EmbedAuth, signer: Signer) -> None:
    access = auth.tokens.client_credentials(
        signer.client_id, auth.registrations.rotate_secret(signer.client_id).client_secret
    ).access_token
    response = post(endpoints.revoke, [("token", access), *signer.form(aud=ISSUER)])
    assert (response.status, response.body) == (200, None)
    with pytest.raises(InvalidToken):
        auth.verify(access)


@pytest.mark.rfc("7009", "2.1")
def test_revoke_without_token(endpoints: OAuthEndpoints, created: CreatedSecret) -> None:
    for form in ([], [("token", "")], [("token_type_hint", "access_token")]):
        refused(post(endpoints.revoke, form), 400, "invalid_request", description="token is missing")


# ========================================================================= introspection


def introspect(endpoints: OAuthEndpoints, token: str, client: CreatedSecret) -> Response:
    return post(endpoints.introspect, [("token", token)], basic(client.client_id, client.client_secret))


@pytest.mark.rfc("7662", "2.2")
def test_introspect_active(
    endpoints: OAuthEndpoints,
    auth: EmbedAuth,
    created: CreatedSecret,
    neighbour: CreatedSecret,
    clock: FrozenClock,
) -> None:
    issued = auth.tokens.client_credentials(created.client_id, created.client_secret, scope="devices:read")
    now = int(clock())
    answer = ok(introspect(endpoints, issued.access_token, neighbour))  # any client of the tenant
    jti = answer.pop("jti")
    assert isinstance(jti, str) and jti
    assert answer == {
        "active": True,
        "token_type": "Bearer",
        "scope": "devices:read",
        "client_id": created.client_id,
        "sub": created.client_id,
        "iss": ISSUER,
        "aud": ISSUER,
        "exp": now + 3600,
        "iat": now,
        "customer_scope": "all",
        "tenant": "site-1",
    }
    assert next(iter(body(introspect(endpoints, issued.access_token, neighbour)))) == "active"


@pytest.mark.rfc("7662", "2.2")
def test_introspect_inactive(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, clock: FrozenClock
) -> None:
    revoked = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    auth.tokens.revoke(revoked)
    expired = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    made = auth.refresh_tokens.create("alice")
    for token in (revoked, "garbage", made.refresh_token, created.client_secret):
        assert ok(introspect(endpoints, token, created)) == {"active": False}
    clock.advance(3600 + 31)
    assert ok(introspect(endpoints, expired, created)) == {"active": False}


@pytest.mark.rfc("7662", "2.1")
def test_introspect_is_isolated_by_tenant(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, stranger: CreatedSecret
) -> None:
    """A client of another tenant learns nothing about the token: it is inactive to it."""
    access = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    assert ok(introspect(endpoints, access, stranger)) == {"active": False}
    assert ok(introspect(endpoints, access, created))["active"] is True
    # A person's token carries the tenant its refresh token was created for, or none.
    scoped = auth.tokens.refresh(auth.refresh_tokens.create("alice", tenant="site-1").refresh_token)
    unscoped = auth.tokens.refresh(auth.refresh_tokens.create("bob").refresh_token)
    assert ok(introspect(endpoints, scoped.access_token, created))["sub"] == "alice"
    assert ok(introspect(endpoints, scoped.access_token, stranger)) == {"active": False}
    assert ok(introspect(endpoints, unscoped.access_token, created)) == {"active": False}


@pytest.mark.rfc("7662", "2.1")
def test_introspect_with_private_key_jwt(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret, signer: Signer
) -> None:
    access = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    answer = ok(post(endpoints.introspect, [("token", access), *signer.form(aud=ISSUER)]))
    assert answer["active"] is True


@pytest.mark.rfc("7662", "2.3")
def test_introspect_needs_client_authentication(
    endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret
) -> None:
    access = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    refused(
        post(endpoints.introspect, [("token", access)]),
        401,
        "invalid_client",
        challenge=True,
        description="client authentication is required",
    )
    response = post(endpoints.introspect, [("token", access)], basic(created.client_id, "eas_wrong"))
    refused(response, 401, "invalid_client", challenge=True, description=FAILED)
    form = [("token", access), ("client_id", created.client_id), ("client_secret", "eas_wrong")]
    refused(post(endpoints.introspect, form), 401, "invalid_client", description=FAILED)
    auth.registrations.disable(created.client_id)
    response = introspect(endpoints, access, created)
    refused(response, 401, "invalid_client", challenge=True, description="the registration is disabled")


@pytest.mark.rfc("7662", "2.1")
def test_introspect_without_token(endpoints: OAuthEndpoints, created: CreatedSecret) -> None:
    response = post(
        endpoints.introspect,
        [("token_type_hint", "access_token")],
        basic(created.client_id, created.client_secret),
    )
    refused(response, 400, "invalid_request", description="token is missing")


# ========================================================================= metadata and JWKS


@pytest.mark.rfc("8414", "2")
def test_metadata(endpoints: OAuthEndpoints) -> None:
    response = call(endpoints.metadata, "GET")
    assert response.status == 200
    assert response.headers == (JSON, ("Cache-Control", "public, max-age=300"))
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    algorithms = ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"]
    assert body(response) == {
        "issuer": ISSUER,
        "token_endpoint": ISSUER + "/oauth/token",
        "revocation_endpoint": ISSUER + "/oauth/revoke",
        "introspection_endpoint": ISSUER + "/oauth/introspect",
        "jwks_uri": ISSUER + "/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "response_types_supported": [],
        "scopes_supported": ["devices:read", "devices:write", "users:read"],
        "token_endpoint_auth_methods_supported": methods,
        "token_endpoint_auth_signing_alg_values_supported": algorithms,
        "revocation_endpoint_auth_methods_supported": methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
        "introspection_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


@pytest.mark.rfc("8414", "3")
def test_both_well_known_documents_are_identical(endpoints: OAuthEndpoints) -> None:
    responses = [
        endpoints.metadata(Request("GET", ISSUER + path, {}, ()))
        for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
    ] + [call(endpoints.metadata, "HEAD")]
    for response in responses[1:]:
        same_bytes(responses[0], response)


@pytest.mark.rfc("8414", "2")
def test_metadata_follows_settings_and_catalog(auth: EmbedAuth) -> None:
    twin = auth.with_settings(endpoint_prefix="/auth", issuer="https://id.example.com/")
    twin.permissions.add("reports:read")
    answer = body(call(OAuthEndpoints(twin).metadata, "GET"))
    assert answer["issuer"] == "https://id.example.com/"
    assert answer["token_endpoint"] == "https://id.example.com/auth/oauth/token"
    assert answer["jwks_uri"] == "https://id.example.com/auth/.well-known/jwks.json"
    assert "reports:read" in answer["scopes_supported"]


@pytest.mark.rfc("7517", "5")
def test_jwks(endpoints: OAuthEndpoints, auth: EmbedAuth, created: CreatedSecret) -> None:
    response = call(endpoints.jwks, "GET")
    assert response.status == 200
    assert response.headers == (JSON, ("Cache-Control", "public, max-age=300"))
    assert body(response) == auth.jwks() and body(response)["keys"]
    same_bytes(response, call(endpoints.jwks, "HEAD"))
    # The published key verifies a token issued through the endpoint.
    issued = ok(post(endpoints.token, [*CLIENT_CREDENTIALS, *secret_post(created)]))["access_token"]
    kid = jwt.get_unverified_header(issued)["kid"]
    [jwk] = [k for k in body(response)["keys"] if k["kid"] == kid]
    # exp is checked against the frozen clock elsewhere; here only the signature matters.
    claims = jwt.decode(
        issued, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]], audience=ISSUER, options={"verify_exp": False}
    )
    assert claims["client_id"] == created.client_id


@pytest.mark.rfc("7517", "5")
def test_jwks_cache_age_stays_below_the_key_publish_lead(auth: EmbedAuth) -> None:
    twin = auth.with_settings(key_publish_ahead=120)
    assert call(OAuthEndpoints(twin).jwks, "GET").header("cache-control") == "public, max-age=120"


@pytest.mark.rfc("9110", "15.5.6")
@pytest.mark.parametrize("name", ["metadata", "jwks"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "get"])
def test_get_endpoints_refuse_other_methods(endpoints: OAuthEndpoints, name: str, method: str) -> None:
    response = call(getattr(endpoints, name), method)
    assert response.status == 405
    assert response.headers == (JSON, ("Cache-Control", "no-store"), ("Allow", "GET, HEAD"))
    assert body(response)["error"] == "invalid_request"


# ========================================================================= parse_form and the endpoint


@pytest.mark.rfc("6749", "3.2")
def test_repeats_from_parse_form_are_refused_by_the_endpoint(
    endpoints: OAuthEndpoints, created: CreatedSecret
) -> None:
    raw = urlencode(
        [*CLIENT_CREDENTIALS, *secret_post(created), ("scope", "devices:read"), ("scope", "users:read")]
    )
    form = parse_form(raw.encode(), "application/x-www-form-urlencoded; charset=UTF-8")
    refused(
        post(endpoints.token, list(form)),
        400,
        "invalid_request",
        description="the parameter scope is repeated",
    )

"""Standard OAuth 2.0 clients, used as their documentation says, against ``embedauth serve``.

Authlib's httpx client (``client_secret_basic``, ``client_secret_post``, ``private_key_jwt``,
revocation and introspection), requests-oauthlib's backend-application flow, PyJWT's
``PyJWKClient`` on the JWKS, and Node's ``openid-client`` v6 (discovery, then
``clientCredentialsGrant``), each against both frameworks. The only concession to the test
setup is the one each client documents for plain HTTP on loopback.
"""

from __future__ import annotations

import json
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.integration.conftest import NODE_DIR, Client, Served
from tests.keys import certificate_pem, private_key, private_pem

with warnings.catch_warnings(record=True):
    # Authlib 1.9 deprecates its httpx integration in favour of httpx2 and forces that warning to
    # "always" (overriding filterwarnings=error); the client itself is unchanged. Recorded, not shown.
    from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from authlib.oauth2.rfc7523 import PrivateKeyJWT  # type: ignore[import-untyped]
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # type: ignore[import-untyped]
from joserfc.jwk import ECKey, RSAKey
from oauthlib.oauth2 import BackendApplicationClient  # type: ignore[import-untyped]
from requests_oauthlib import OAuth2Session  # type: ignore[import-untyped]

ALL_DEVICES = {"dev-1", "dev-2", "dev-3"}
NODE_TIMEOUT = 60.0


def check_token_response(token: dict[str, Any], scope: str) -> str:
    """RFC 6749 §5.1 fields of a client_credentials response; the access token."""
    assert str(token["token_type"]).lower() == "bearer"
    assert token["expires_in"] == 3600
    granted = token["scope"]  # oauthlib hands it back as a list
    assert (granted if isinstance(granted, str) else " ".join(granted)) == scope
    assert "refresh_token" not in token  # §4.4.3: no refresh token for client_credentials
    access_token: str = token["access_token"]
    return access_token


def check_whoami(response: httpx.Response, client: Client) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["client_id"] == client.client_id
    assert body["tenant"] == client.tenant
    assert body["scopes"] == sorted(client.scopes)


def call_api(served: Served, access_token: str, client: Client) -> None:
    """``/demo/whoami`` and ``/demo/devices`` with the token, as a plain HTTP client would."""
    with httpx.Client(headers={"Authorization": f"Bearer {access_token}"}) as http:
        check_whoami(http.get(served.url("/demo/whoami")), client)
        devices = http.get(served.url("/demo/devices"))
    assert devices.status_code == 200, devices.text
    assert {device["id"] for device in devices.json()["devices"]} == ALL_DEVICES


# ---------------------------------------------------------------------------- Authlib


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_secret(served: Served, method: str) -> None:
    client = served.register("devices:read", "devices:write")
    with OAuth2Client(
        client.client_id, client.client_secret, token_endpoint_auth_method=method, scope="devices:read"
    ) as oauth:
        token = oauth.fetch_token(served.token_url, grant_type="client_credentials")
        check_token_response(token, "devices:read")
        # The client attaches the token it fetched to later requests.
        whoami = oauth.get(served.url("/demo/whoami"))
        devices = oauth.get(served.url("/demo/devices"))
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["client_id"] == client.client_id and whoami.json()["scopes"] == ["devices:read"]
    assert devices.status_code == 200 and len(devices.json()["devices"]) == 3


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "RS256"), ("p256", "ES256")])
def test_authlib_private_key_jwt(served: Served, kind: str, alg: str) -> None:
    client = served.register("devices:read")
    key = private_key(kind)
    served.auth.registrations.add_certificate(
        client.client_id, certificate_pem(key, now=time.time(), cn="integration")
    )
    # Authlib's documented form: the private key in place of the secret (a joserfc key for EC).
    signing_key = RSAKey.import_key(private_pem(key)) if kind == "rsa" else ECKey.import_key(private_pem(key))
    with OAuth2Client(client.client_id, signing_key, token_endpoint_auth_method="private_key_jwt") as oauth:
        oauth.register_client_auth_method(PrivateKeyJWT(served.token_url, alg=alg))
        token = oauth.fetch_token(served.token_url, grant_type="client_credentials")
        access_token = check_token_response(token, "devices:read")
        # A second assertion (a new jti) works too: the replay check is per assertion, not per client.
        again = oauth.fetch_token(served.token_url, grant_type="client_credentials")
    assert again["access_token"] != access_token
    call_api(served, access_token, client)


def test_authlib_introspect_then_revoke(served: Served) -> None:
    client = served.register("devices:read")
    with OAuth2Client(client.client_id, client.client_secret) as oauth:
        access_token = oauth.fetch_token(served.token_url, grant_type="client_credentials")["access_token"]
        introspected = oauth.introspect_token(served.url("/oauth/introspect"), token=access_token)
        assert introspected.status_code == 200, introspected.text
        answer = introspected.json()
        assert answer["active"] is True
        assert answer["client_id"] == client.client_id and answer["scope"] == "devices:read"
        assert answer["iss"] == served.base_url

        revoked = oauth.revoke_token(served.url("/oauth/revoke"), token=access_token)
        assert revoked.status_code == 200, revoked.text

        # The server that revoked it refuses it at once.
        with httpx.Client(headers={"Authorization": f"Bearer {access_token}"}) as http:
            refused = http.get(served.url("/demo/whoami"))
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_token"
        challenge = refused.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
        after = oauth.introspect_token(served.url("/oauth/introspect"), token=access_token)
        assert after.json() == {"active": False}


def test_authlib_validates_the_metadata(served: Served) -> None:
    """Authlib's RFC 8414 model accepts every field of the served metadata but one.

    ``response_types_supported`` is ``[]`` (there is no authorization endpoint, so no response
    type), and Authlib's ``validate_response_types_supported`` treats an empty list as missing.
    The clients above never read it; it is left out here and reported.
    """
    with httpx.Client() as http:
        document = http.get(served.url("/.well-known/oauth-authorization-server")).json()
        assert http.get(served.url("/.well-known/openid-configuration")).json() == document
    metadata = AuthorizationServerMetadata(document)
    for key in metadata.REGISTRY_KEYS:
        if key != "response_types_supported":
            getattr(metadata, f"validate_{key}")()
    assert document["issuer"] == served.base_url
    assert set(document["token_endpoint_auth_methods_supported"]) >= {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }
    assert set(document["scopes_supported"]) >= {"devices:read", "devices:write"}


# ---------------------------------------------------------------------------- requests-oauthlib


def test_requests_oauthlib_backend_application(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses http:// unless told this is a test over plain HTTP (its documented switch).
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    client = served.register("devices:read")
    with OAuth2Session(client=BackendApplicationClient(client_id=client.client_id)) as session:
        # Without ``auth``, fetch_token sends client_id and client_secret as HTTP Basic.
        token = session.fetch_token(
            token_url=served.token_url, client_id=client.client_id, client_secret=client.client_secret
        )
        check_token_response(dict(token), "devices:read")
        whoami = session.get(served.url("/demo/whoami"))
        devices = session.get(served.url("/demo/devices"))
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["client_id"] == client.client_id
    assert devices.status_code == 200 and len(devices.json()["devices"]) == 3


# ---------------------------------------------------------------------------- PyJWT


def test_pyjwt_jwks_client_verifies_access_token(served: Served) -> None:
    client = served.register("devices:read")
    access_token = served.token(client)
    jwks = jwt.PyJWKClient(served.url("/.well-known/jwks.json"))
    signing_key = jwks.get_signing_key_from_jwt(access_token)
    claims = jwt.decode(
        access_token,
        signing_key.key,
        algorithms=["ES256"],
        audience=served.base_url,
        issuer=served.base_url,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    header = jwt.get_unverified_header(access_token)
    assert header["typ"] == "at+jwt"  # RFC 9068 §2.1
    assert header["kid"] == signing_key.key_id
    assert claims["client_id"] == client.client_id and claims["sub"] == client.client_id
    assert claims["scope"] == "devices:read"
    assert claims["exp"] - claims["iat"] == 3600


# ---------------------------------------------------------------------------- Node's openid-client


def run_openid_client(
    node: str, served: Served, client_id: str, mode: str, credential: str
) -> dict[str, Any]:
    done = subprocess.run(
        [node, "client.mjs", served.base_url, client_id, mode, credential, "devices:read"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"openid-client ({mode}) failed: {done.stderr.strip()}"
    response: dict[str, Any] = json.loads(done.stdout)
    return response


@pytest.mark.timeout(300)  # the first test may run npm install
@pytest.mark.parametrize("mode", ["basic", "post", "private_key_jwt-rsa", "private_key_jwt-p256"])
def test_openid_client(served: Served, node: str, mode: str, tmp_path: Path) -> None:
    client = served.register("devices:read")
    if mode.startswith("private_key_jwt"):
        key = private_key(mode.rpartition("-")[2])
        served.auth.registrations.add_certificate(
            client.client_id, certificate_pem(key, now=time.time(), cn="integration")
        )
        key_file = tmp_path / "client-key.pem"
        key_file.write_bytes(private_pem(key))
        response = run_openid_client(node, served, client.client_id, "private_key_jwt", str(key_file))
    else:
        response = run_openid_client(node, served, client.client_id, mode, client.client_secret)
    assert response["issuer"] == served.base_url  # discovery found the right metadata
    access_token = check_token_response(response, "devices:read")
    call_api(served, access_token, client)

"""Client authentication (``auth.clients``).

``private_key_jwt`` client assertions (RFC 7523): real certificates, assertions signed with PyJWT
and Authlib as clients sign them, each refusal with its audit reason, replay on every backend, fuzzing.
Client secrets: refusals, the checksum before any lookup, one hash for an unknown client, the
verified-secret cache, rehashing. And what a client is told once authenticated: why its registration
or credential is unusable, and the ``embedauth_credential_expiring`` warnings."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm

from embedauth import EmbedAuth, InvalidClient, InvalidToken
from embedauth.clock import FrozenClock, utcnow
from embedauth.credentials.client_auth import ASSERTION_TYPE, FAILED, ClientAuthenticator
from embedauth.hooks import hookimpl
from embedauth.http.messages import Request
from embedauth.http.oauth import OAuthEndpoints
from embedauth.models import CertificateCredential, CreatedSecret, Registration
from embedauth.storage.memory import MemoryStorage
from tests.conftest import ISSUER, TEST_SETTINGS, Recorder, last_changed
from tests.keys import PrivateKey, alg_for, certificate_pem, private_key
from tests.registry.helpers import create, works
from tests.storage.test_contract import hammer
from tests.tokens.ecdsa import KEY_CURVES, ec_key, flip_s, is_low_s, spelled

DROP = object()  # a claim value meaning "leave the claim out"

TOKEN_ENDPOINT = ISSUER + "/oauth/token"
METADATA_PATH = "/.well-known/oauth-authorization-server"


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"\x00" * 64) -> str:
    """A compact JWS put together by hand, as an attacker would."""
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


def segments(token: str) -> list[str]:
    return token.split(".")


# ------------------------------------------------------------------------- the test bed


@dataclass
class Client:
    """A registration and the keys of its certificates, signing as a real client would."""

    bed: Bed
    client_id: str
    keys: dict[str, PrivateKey] = field(default_factory=dict)  # certificate id -> private key
    credentials: list[CertificateCredential] = field(default_factory=list)

    def add(self, key_name: str) -> CertificateCredential:
        key = private_key(key_name)
        pem = certificate_pem(key, now=self.bed.clock())
        credential = self.bed.auth.registrations.add_certificate(self.client_id, pem)
        self.keys[credential.id] = key
        self.credentials.append(credential)
        return credential

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(self.bed.clock())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.bed.auth.settings.token_endpoint,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not DROP}

    def sign(
        self,
        *,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        key: PrivateKey | None = None,
        **changes: Any,
    ) -> str:
        """Signed with PyJWT by the first certificate's key unless ``key`` is given."""
        key = key or self.keys[self.credentials[0].id]
        return jwt.encode(self.claims(**changes), key, algorithm=alg or alg_for(key), headers=headers)


@dataclass
class Bed:
    auth: EmbedAuth
    clock: FrozenClock
    recorder: Recorder
    check: ClientAuthenticator

    def client(self, *key_names: str) -> Client:
        created = self.auth.registrations.create(tenant="site-1", name="Backup script")
        client = Client(self, created.client_id)
        for name in key_names:
            client.add(name)
        return client

    def accepts(self, token: str, client: Client, client_id: str | None = None) -> CertificateCredential:
        registration, credential = self.check.check_assertion(token, client_id=client_id)
        assert registration.client_id == client.client_id
        assert credential in client.credentials
        return credential

    def refuses(self, token: Any, reason: str, *, client_id: str | None = None, who: Any = DROP) -> None:
        """Refused with the one message; the hook got ``reason`` (and ``who``, when given)."""
        before = len(self.recorder.denied)
        with pytest.raises(InvalidClient) as info:
            self.check.check_assertion(token, client_id=client_id)
        assert str(info.value) == FAILED
        assert info.value.body() == {"error": "invalid_client", "error_description": FAILED}
        assert info.value.__cause__ is None and info.value.__context__ is None
        assert len(self.recorder.denied) == before + 1
        denied_id, denied_reason = self.recorder.denied[-1]
        assert denied_reason == f"client assertion: {reason}"
        if who is not DROP:
            assert denied_id == who


@contextlib.contextmanager
def open_bed(clock: FrozenClock, issuer: str = ISSUER) -> Iterator[Bed]:
    recorder = Recorder()
    with EmbedAuth("memory://", clock=clock, plugins=[recorder], issuer=issuer, **TEST_SETTINGS) as auth:
        yield Bed(auth, clock, recorder, auth.clients)


@pytest.fixture
def bed(clock: FrozenClock) -> Iterator[Bed]:
    with open_bed(clock) as opened:
        yield opened


# ------------------------------------------------------------------------- accepted


@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize(
    ("key_name", "alg"), [("rsa", "RS256"), ("rsa", "PS256"), ("p256", "ES256"), ("ed25519", "EdDSA")]
)
def test_each_algorithm(bed: Bed, key_name: str, alg: str) -> None:
    client = bed.client(key_name)
    assert bed.auth.settings.token_endpoint == TOKEN_ENDPOINT
    registration, credential = bed.check.check_assertion(client.sign(alg=alg))
    assert registration == bed.auth.registrations.get(client.client_id)
    assert credential == client.credentials[0]
    assert bed.recorder.denied == []


@pytest.mark.rfc("7523", "2.2")
def test_a_disabled_registration_still_authenticates(bed: Bed) -> None:
    """Whether a known client may have a token is the caller's decision, taken after this one."""
    client = bed.client("p256")
    bed.auth.registrations.disable(client.client_id)
    registration, _ = bed.check.check_assertion(client.sign())
    assert not registration.enabled


@pytest.mark.rfc("7523", "2.2")
def test_form_client_id(bed: Bed) -> None:
    client, other = bed.client("p256"), bed.client("p256-2")
    bed.accepts(client.sign(), client, client_id=client.client_id)
    bed.refuses(
        client.sign(),
        "client_id parameter differs from the assertion's sub",
        client_id=other.client_id,
        who=other.client_id,
    )


# ------------------------------------------------------------------------- which certificate


@pytest.mark.rfc("7515", "4.1.8")
def test_selected_by_x5t_s256(bed: Bed) -> None:
    client = bed.client("rsa", "rsa-2")
    first, second = client.credentials
    key = client.keys[second.id]
    assert bed.accepts(client.sign(headers={"x5t#S256": second.thumbprint}, key=key), client) == second
    # The thumbprint picks the key: naming the first certificate for the second's signature fails.
    bed.refuses(client.sign(headers={"x5t#S256": first.thumbprint}, key=key), "signature does not verify")
    bed.refuses(
        client.sign(headers={"x5t#S256": b64(b"\x01" * 32)}), "no certificate matches the x5t#S256 header"
    )
    bed.refuses(client.sign(headers={"x5t#S256": 7}), "x5t#S256 header is not a string")


@pytest.mark.rfc("7523", "3")
def test_selected_by_kid(bed: Bed) -> None:
    client = bed.client("p256", "p256-2")
    second = client.credentials[1]
    key = client.keys[second.id]
    assert bed.accepts(client.sign(headers={"kid": second.id}, key=key), client) == second
    assert bed.accepts(client.sign(headers={"kid": second.thumbprint}, key=key), client) == second
    bed.refuses(client.sign(headers={"kid": client.credentials[0].id}, key=key), "signature does not verify")
    bed.refuses(client.sign(headers={"kid": "nope"}, key=key), "no certificate matches the kid header")
    # PyJWT will not write such a header: sign it by hand.
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signing_input = f"{b64(json.dumps({'alg': 'ES256', 'kid': [second.id]}).encode())}.{b64(b'{}')}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    bed.refuses(f"{signing_input}.{b64(signature)}", "kid header is not a string")


@pytest.mark.rfc("7523", "3")
def test_without_a_hint_every_certificate_is_tried(bed: Bed) -> None:
    client = bed.client("rsa", "p256", "rsa-2")
    for credential in client.credentials:
        assert bed.accepts(client.sign(key=client.keys[credential.id]), client) == credential


@pytest.mark.rfc("7523", "3")
def test_public_keys_are_parsed_once(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    client = bed.client("rsa")
    calls: list[bytes] = []
    load = serialization.load_pem_public_key

    def counting(data: bytes, backend: Any = None) -> Any:
        calls.append(data)
        return load(data)

    monkeypatch.setattr(serialization, "load_pem_public_key", counting)
    for _ in range(3):
        bed.accepts(client.sign(), client)
    assert len(calls) == 1


@pytest.mark.rfc("7523", "3")
def test_signed_by_an_unregistered_key(bed: Bed) -> None:
    client = bed.client("rsa")
    bed.refuses(
        client.sign(key=private_key("rsa-attacker")), "signature does not verify", who=client.client_id
    )


@pytest.mark.rfc("7523", "3")
def test_removed_certificate(bed: Bed) -> None:
    client = bed.client("ed25519", "p256")
    bed.accepts(client.sign(), client)
    bed.auth.registrations.remove_certificate(client.client_id, client.credentials[0].id)
    bed.refuses(client.sign(), "no live certificate has a key for EdDSA")
    bed.auth.registrations.remove_certificate(client.client_id, client.credentials[1].thumbprint)
    bed.refuses(client.sign(), "no certificate")


@pytest.mark.rfc("7523", "3")
def test_expired_certificate(bed: Bed, clock: FrozenClock) -> None:
    client = bed.client("p256")
    bed.accepts(client.sign(), client)
    clock.set(client.credentials[0].not_after)
    bed.refuses(client.sign(), "certificate expired or not yet valid")
    clock.advance(-0.001)
    bed.accepts(client.sign(), client)


# ------------------------------------------------------------------------- the claims


@pytest.mark.rfc("7523", "3")
@pytest.mark.parametrize(
    "aud",
    [
        TOKEN_ENDPOINT,  # Authlib
        ISSUER,  # openid-client
        ISSUER + "/",
        [TOKEN_ENDPOINT],
        ["https://other.example", ISSUER],
        ["https://other.example", TOKEN_ENDPOINT, ISSUER],
    ],
)
def test_audiences_accepted(bed: Bed, aud: Any) -> None:
    client = bed.client("p256")
    bed.accepts(client.sign(aud=aud), client)


@pytest.mark.rfc("7523", "3")
@pytest.mark.parametrize(
    "aud",
    [
        "https://other.example/oauth/token",
        TOKEN_ENDPOINT + "/",
        TOKEN_ENDPOINT.upper(),
        ISSUER + "//",
        ISSUER + "/oauth/introspect",
        "http://api.example.com",
        "",
        ["https://other.example"],
    ],
)
def test_wrong_audience(bed: Bed, aud: Any) -> None:
    client = bed.client("p256")
    bed.refuses(client.sign(aud=aud), "aud names neither the token endpoint nor the issuer")


@pytest.mark.rfc("7523", "3")
@pytest.mark.parametrize("aud", [DROP, [], None, 3, [TOKEN_ENDPOINT, 3], {"aud": TOKEN_ENDPOINT}])
def test_malformed_audience(bed: Bed, aud: Any) -> None:
    client = bed.client("p256")
    bed.refuses(client.sign(aud=aud), "aud is missing or not a string or a list of strings")


@pytest.mark.rfc("7523", "3")
def test_issuer_setting_with_a_trailing_slash(clock: FrozenClock) -> None:
    with open_bed(clock, issuer=ISSUER + "/") as bed:
        client = bed.client("p256")
        for aud in (ISSUER, ISSUER + "/", TOKEN_ENDPOINT):
            bed.accepts(client.sign(aud=aud), client)


@pytest.mark.rfc("7523", "3")
def test_expiry(bed: Bed) -> None:
    client = bed.client("p256")
    now = int(bed.clock())
    leeway = bed.auth.settings.leeway
    bed.accepts(client.sign(exp=now + 1), client)
    bed.accepts(client.sign(exp=now - leeway + 1), client)  # within the leeway
    bed.refuses(client.sign(exp=now - leeway), "expired")
    bed.refuses(client.sign(exp=now - 3600), "expired")


@pytest.mark.rfc("7523", "3")
def test_longest_lifetime(bed: Bed) -> None:
    client = bed.client("p256")
    now = int(bed.clock())
    assert bed.auth.settings.assertion_max_lifetime == 3600
    too_far = "exp is further ahead than the longest assertion lifetime allowed"
    bed.accepts(client.sign(exp=now + 3600), client)  # exactly an hour, as Authlib signs
    bed.accepts(client.sign(exp=now + 3600 + bed.auth.settings.leeway), client)
    bed.refuses(client.sign(exp=now + 3600 + bed.auth.settings.leeway + 1), too_far)
    bed.refuses(client.sign(exp=now + 61 * 60), too_far)
    bed.refuses(client.sign(exp=now + 10**12), too_far)


@pytest.mark.rfc("7519", "4.1.4")
@pytest.mark.parametrize(
    ("exp", "reason"),
    [
        (DROP, "exp is missing"),
        (None, "exp is not a number"),
        ("1790000300", "exp is not a number"),
        (True, "exp is not a number"),
        ([1790000300], "exp is not a number"),
        (2**64, "exp is not a number"),
    ],
)
def test_malformed_exp(bed: Bed, exp: Any, reason: str) -> None:
    client = bed.client("p256")
    bed.refuses(client.sign(exp=exp), reason)


@pytest.mark.rfc("7519", "4.1.4")
def test_exp_may_be_fractional(bed: Bed) -> None:
    client = bed.client("p256")
    bed.accepts(client.sign(exp=bed.clock() + 60.5), client)


@pytest.mark.rfc("7519", "7.2")
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_times(bed: Bed, value: str) -> None:
    """Python's JSON reads NaN and Infinity; they are not JSON (RFC 8259 §6), so the payload is not
    a JSON object and the assertion is refused before any claim is read."""
    client = bed.client("p256")
    claims = json.dumps(client.claims(exp=0)).replace('"exp": 0', f'"exp": {value}').encode()
    token = api_jws.encode(claims, client.keys[client.credentials[0].id], algorithm="ES256")
    bed.refuses(token, "payload is not JSON")


@pytest.mark.rfc("7523", "3")
def test_nbf_and_iat(bed: Bed) -> None:
    client = bed.client("p256")
    now = int(bed.clock())
    leeway = bed.auth.settings.leeway
    bed.accepts(client.sign(nbf=now + leeway, iat=now + leeway), client)
    bed.accepts(client.sign(iat=DROP), client)  # iat is optional
    bed.refuses(client.sign(nbf=now + leeway + 1), "not valid yet (nbf)")
    bed.refuses(client.sign(iat=now + leeway + 1), "issued in the future (iat)")
    bed.refuses(client.sign(nbf="now"), "nbf is not a number")
    bed.refuses(client.sign(iat=False), "iat is not a number")


@pytest.mark.rfc("7523", "3")
@pytest.mark.parametrize(
    ("jti", "reason"),
    [
        (DROP, "jti is missing"),
        ("", "jti is missing"),
        (42, "jti is missing"),
        ("x" * 257, "jti is too long or not printable"),
        ("a\x00b", "jti is too long or not printable"),
        ("a\nb", "jti is too long or not printable"),
    ],
)
def test_malformed_jti(bed: Bed, jti: Any, reason: str) -> None:
    client = bed.client("p256")
    bed.refuses(client.sign(jti=jti), reason)


@pytest.mark.rfc("7523", "3")
def test_long_and_unicode_jti(bed: Bed) -> None:
    client = bed.client("p256")
    bed.accepts(client.sign(jti="x" * 256), client)
    bed.accepts(client.sign(jti="ünï:cödé ☃"), client)


@pytest.mark.rfc("7523", "3")
def test_iss_must_be_the_client(bed: Bed) -> None:
    client, other = bed.client("p256"), bed.client("p256-2")
    bed.refuses(client.sign(iss=other.client_id), "iss is not the client id", who=client.client_id)
    bed.refuses(client.sign(iss=DROP), "iss is not the client id")
    bed.refuses(client.sign(iss=ISSUER), "iss is not the client id")


@pytest.mark.rfc("7523", "3")
def test_sub(bed: Bed) -> None:
    client, other = bed.client("p256"), bed.client("p256-2")
    unknown = str(uuid.uuid4())
    bed.refuses(client.sign(sub=unknown, iss=unknown), "unknown client", who=unknown)
    # Signed by the client, claiming to be another: the other's certificates do not verify it.
    bed.refuses(client.sign(sub=other.client_id, iss=other.client_id), "signature does not verify")
    for bad in (DROP, 7, "", "tab\there", "x" * 256, "ünïcode"):
        bed.refuses(client.sign(sub=bad), "sub is missing or not a client id")


# ------------------------------------------------------------------------- forgeries


@pytest.mark.rfc("8725", "3.1")
def test_alg_none(bed: Bed) -> None:
    client = bed.client("rsa")
    unsigned = jwt.encode(client.claims(), "", algorithm="none")
    assert unsigned.endswith(".")
    bed.refuses(unsigned, "not three base64url segments")
    bed.refuses(unsigned + "AAAA", "algorithm 'none' is not accepted")
    bed.refuses(forge({"alg": "None"}, client.claims()), "algorithm 'None' is not accepted")


@pytest.mark.rfc("8725", "2.1")
@pytest.mark.parametrize("pem_of", ["certificate key", "certificate"])
def test_hs256_keyed_with_the_public_key(bed: Bed, pem_of: str) -> None:
    """The classic confusion: an HMAC whose key is the (public) PEM the server holds."""
    client = bed.client("rsa")
    credential = client.credentials[0]
    secret = (
        credential.public_key_pem.encode() if pem_of == "certificate key" else public_pem(private_key("rsa"))
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "x5t#S256": credential.thumbprint}).encode())
    payload = b64(json.dumps(client.claims()).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    bed.refuses(f"{header}.{payload}.{b64(mac)}", "algorithm 'HS256' is not accepted")


@pytest.mark.rfc("8725", "3.1")
def test_alg_that_does_not_fit_the_key(bed: Bed) -> None:
    client = bed.client("p256")
    credential = client.credentials[0]
    signed = client.sign()
    _, p, s = segments(signed)
    as_rs256 = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    bed.refuses(f"{as_rs256}.{p}.{s}", "no live certificate has a key for RS256")
    named = b64(json.dumps({"alg": "RS256", "x5t#S256": credential.thumbprint}).encode())
    bed.refuses(f"{named}.{p}.{s}", "no live certificate has a key for RS256")
    # An ES256 header on an RSA client: the RSA certificate does not fit either.
    rsa_client = bed.client("rsa")
    bed.refuses(
        rsa_client.sign(key=private_key("p256-attacker"), alg="ES256"),
        "no live certificate has a key for ES256",
    )


@pytest.mark.rfc("7515", "4.1.3")
@pytest.mark.parametrize("parameter", ["jwk", "jku", "x5c", "x5u"])
def test_header_that_brings_its_own_key(bed: Bed, parameter: str) -> None:
    client = bed.client("rsa")
    attacker = private_key("rsa-attacker")
    assert isinstance(attacker, rsa.RSAPrivateKey)
    jwk = RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    values = {
        "jwk": jwk,
        "jku": "https://evil.example/jwks",
        "x5c": ["MIIB"],
        "x5u": "https://evil.example/c",
    }
    token = client.sign(key=attacker, headers={parameter: values[parameter]})
    bed.refuses(token, f"forbidden header parameter: ['{parameter}']", who=None)
    bed.refuses(
        token,
        f"forbidden header parameter: ['{parameter}']",
        client_id=client.client_id,
        who=client.client_id,
    )


@pytest.mark.rfc("7515", "5.2")
def test_tampered_payload(bed: Bed) -> None:
    client = bed.client("rsa")
    h, _, s = segments(client.sign())
    longer = b64(json.dumps(client.claims(exp=int(bed.clock()) + 3000)).encode())
    bed.refuses(f"{h}.{longer}.{s}", "signature does not verify", who=client.client_id)


@pytest.mark.rfc("7515", "5.2")
def test_stripped_or_broken_signature(bed: Bed) -> None:
    client = bed.client("p256")
    h, p, s = segments(client.sign())
    bed.refuses(f"{h}.{p}.", "not three base64url segments")
    bed.refuses(f"{h}.{p}", "not three base64url segments")
    bed.refuses(f"{h}.{p}.{b64(base64.urlsafe_b64decode(s + '==')[:-3])}", "signature does not verify")
    bed.refuses(
        f"{h}.{p}.{s[:-1]}B" if s[-1] != "B" else f"{h}.{p}.{s[:-1]}C", "non-canonical signature encoding"
    )
    bed.refuses(f"{h}.{p}.{s[:-1]}", "bad base64url length")
    bed.refuses(f"{h}.{p}.{s}AA", "signature does not verify")


@pytest.mark.rfc("7523", "3")
def test_oversized_assertion_is_refused_before_any_lookup(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    client = bed.client("p256")
    token = client.sign(padding="x" * bed.auth.settings.max_token_bytes)
    lookups: list[str] = []
    monkeypatch.setattr(bed.auth.storage, "get_registration", lookups.append)
    bed.refuses(token, "not a string, or over the size limit")
    bed.refuses(forge({"alg": "HS256"}, client.claims()), "algorithm 'HS256' is not accepted")
    bed.refuses(client.sign(headers={"jwk": {"kty": "oct"}}), "forbidden header parameter: ['jwk']")
    assert lookups == []


ES256_HEADER = b64(b'{"alg": "ES256"}')


@pytest.mark.rfc("7515", "7.1")
@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "not a string, or over the size limit"),
        (b"a.b.c", "not a string, or over the size limit"),
        (42, "not a string, or over the size limit"),
        ("", "not three base64url segments"),
        ("....", "not three base64url segments"),
        ("é.é.é", "not three base64url segments"),
        ("a.b.c", "bad base64url length"),
        ("abcd.b.c", "header is not JSON"),
        (f"{b64(b'[1]')}.b.c", "header is not a JSON object"),
        (f"{b64(b'{}')}.b.c", "header without alg"),
        (f"{ES256_HEADER}.abcd.c", "bad base64url length"),
        (f"{ES256_HEADER}.abcd.cA", "payload is not JSON"),
        (f"{ES256_HEADER}.{b64(b'[]')}.cA", "payload is not a JSON object"),
    ],
)
def test_not_a_compact_jws(bed: Bed, token: Any, reason: str) -> None:
    bed.refuses(token, reason)


# ------------------------------------------------------------------------- replay


@pytest.mark.rfc("7523", "3")
def test_replay(bed: Bed, clock: FrozenClock) -> None:
    client = bed.client("p256")
    jti = "one-time"
    token = client.sign(jti=jti, exp=int(clock()) + 60)
    bed.accepts(token, client)
    bed.refuses(token, "jti already used (replay)", who=client.client_id)
    bed.refuses(client.sign(jti=jti), "jti already used (replay)")  # a new assertion, the same jti
    # Another client may use the same jti: the key is per client.
    other = bed.client("p256-2")
    bed.accepts(other.sign(jti=jti), other)
    # Once the first assertion has expired (with the leeway), its jti is forgotten.
    clock.advance(60 + bed.auth.settings.leeway)
    bed.refuses(token, "expired")
    bed.accepts(client.sign(jti=jti), client)


@pytest.mark.rfc("7523", "3")
def test_jti_consumed_only_by_an_assertion_that_passes_every_other_check(bed: Bed) -> None:
    """A forged copy of an assertion seen in a log cannot burn its jti."""
    client = bed.client("p256")
    good = client.claims()
    token = client.sign(**good)
    h, p, s = segments(token)
    bed.refuses(f"{h}.{p}.{s[:-8]}AAAAAAAA", "signature does not verify")
    bed.refuses(
        client.sign(**(good | {"aud": "https://other.example"})),
        "aud names neither the token endpoint nor the issuer",
    )
    bed.refuses(
        client.sign(**(good | {"exp": good["exp"] + 7200})),
        "exp is further ahead than the longest assertion lifetime allowed",
    )
    bed.accepts(token, client)


@pytest.mark.rfc("7523", "3")
def test_concurrent_presentations_of_one_assertion(backend_auth: EmbedAuth, clock: FrozenClock) -> None:
    """16 threads present the same assertion at once, on every backend: exactly one gets through."""
    recorder = Recorder()
    backend_auth.plugins.register(recorder)
    check = backend_auth.clients
    client = Bed(backend_auth, clock, recorder, check).client("p256")
    token = client.sign()

    def present(_i: int) -> str:
        try:
            check.check_assertion(token, client_id=client.client_id)
        except InvalidClient:
            return "refused"
        return "accepted"

    results = hammer(16, present)
    assert results.count("accepted") == 1
    assert recorder.denied == [(client.client_id, "client assertion: jti already used (replay)")] * 15


# ------------------------------------------------------------------------- ECDSA: three curves, either S


def add_ec(client: Client, key_name: str) -> CertificateCredential:
    """Register a certificate for the EC key ``key_name`` (``p256``, ``p384``, ``p521``...)."""
    key = ec_key(key_name)
    credential = client.bed.auth.registrations.add_certificate(
        client.client_id, certificate_pem(key, now=client.bed.clock())
    )
    client.keys[credential.id] = key
    client.credentials.append(credential)
    return credential


def with_alg(token: str, alg: str) -> str:
    """``token`` with its header's ``alg`` replaced (the signature left as it is)."""
    h, p, s = segments(token)
    header = json.loads(base64.urlsafe_b64decode(h + "=="))
    return f"{b64(json.dumps(header | {'alg': alg}).encode())}.{p}.{s}"


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize(("key_name", "alg"), [("p256", "ES256"), ("p384", "ES384"), ("p521", "ES512")])
@pytest.mark.parametrize("high", [False, True])
def test_ecdsa_assertion_on_each_curve(bed: Bed, key_name: str, alg: str, high: bool) -> None:
    """A P-384 or P-521 certificate authenticates with ES384 or ES512 (signed by PyJWT, 96- and
    132-byte signatures), as P-256 does with ES256; high S and low S alike."""
    client = bed.client()
    credential = add_ec(client, key_name)
    assert credential.key_type == f"EC P-{key_name[1:]}"
    token = spelled(client.sign(alg=alg), alg, high=high)
    assert is_low_s(token, alg) is not high
    assert bed.accepts(token, client) == credential
    assert bed.recorder.denied == []


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_high_s_assertion_is_accepted_and_its_twin_is_a_replay(bed: Bed, alg: str) -> None:
    """Other libraries sign high S as often as not: accepted. Its low-S twin is the same assertion,
    with the same jti, so it is refused as a replay: a second spelling gains nothing."""
    client = bed.client()
    add_ec(client, {"ES256": "p256", "ES384": "p384", "ES512": "p521"}[alg])
    token = spelled(client.sign(alg=alg), alg, high=True)
    bed.accepts(token, client)
    bed.refuses(flip_s(token, alg), "jti already used (replay)", who=client.client_id)


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize(
    ("key_name", "alg"),
    [
        ("p384", "ES256"),
        ("p521", "ES256"),
        ("p256", "ES384"),
        ("p521", "ES384"),
        ("p256", "ES512"),
        ("p384", "ES512"),
    ],
)
def test_curve_and_alg_must_match(bed: Bed, key_name: str, alg: str) -> None:
    """ES256 only with P-256, ES384 only with P-384, ES512 only with P-521: one answer, one reason."""
    client = bed.client()
    add_ec(client, key_name)
    own_alg = KEY_CURVES[key_name]
    reason = f"no live certificate has a key for {alg}"
    bed.refuses(with_alg(client.sign(alg=own_alg), alg), reason, who=client.client_id)
    # signed for real with alg, by a key of the right curve that the client never registered
    right_curve = {"ES256": "p256", "ES384": "p384", "ES512": "p521"}[alg]
    bed.refuses(client.sign(alg=alg, key=ec_key(right_curve + "-attacker")), reason, who=client.client_id)


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.rfc("7523", "2.2")
def test_the_fitting_certificate_is_found_among_curves(bed: Bed) -> None:
    """A client holding P-256, P-384 and P-521 certificates: each alg is checked by its own one."""
    client = bed.client()
    credentials = {alg: add_ec(client, name) for name, alg in KEY_CURVES.items()}
    for name, alg in KEY_CURVES.items():
        assert bed.accepts(client.sign(alg=alg, key=ec_key(name)), client) == credentials[alg]


@pytest.mark.rfc("7518", "3.4")
@pytest.mark.rfc("7523", "2.2")
@pytest.mark.parametrize(("key_name", "alg"), [("p384", "ES384"), ("p521", "ES512")])
def test_token_endpoint_with_p384_and_p521_certificates(bed: Bed, key_name: str, alg: str) -> None:
    """Through ``OAuthEndpoints``: the metadata lists ES384 and ES512, and an assertion signed with
    either gets an access token (itself signed with the instance's ES256 key)."""
    endpoints = OAuthEndpoints(bed.auth)
    metadata = json.loads(endpoints.metadata(Request("GET", ISSUER + METADATA_PATH, {})).content())
    for endpoint in ("token", "revocation", "introspection"):
        listed = metadata[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert listed == ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"]
    client = bed.client()
    credential = add_ec(client, key_name)

    def token_request(assertion: str) -> Any:
        form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]
        return endpoints.token(Request("POST", TOKEN_ENDPOINT, {}, form))

    response = token_request(client.sign(alg=alg))
    assert response.status == 200, response.body
    access_token = json.loads(response.content())["access_token"]
    assert jwt.get_unverified_header(access_token)["alg"] == "ES256"  # the default signing algorithm
    principal = bed.auth.verify(access_token)
    assert (principal.client_id, principal.credential_id) == (client.client_id, credential.id)
    # the wrong curve for the header: the one 401 answer, the reason on the hook
    refused = token_request(with_alg(client.sign(alg=alg), "ES256"))
    assert refused.status == 401
    assert json.loads(refused.content()) == {"error": "invalid_client", "error_description": FAILED}
    assert bed.recorder.denied[-1] == (
        client.client_id,
        "client assertion: no live certificate has a key for ES256",
    )


# ------------------------------------------------------------------------- real clients


@pytest.mark.rfc("7523", "2.2")
def test_authlib_private_key_jwt_sign(bed: Bed) -> None:
    from authlib.oauth2.rfc7523 import private_key_jwt_sign  # type: ignore[import-untyped]
    from joserfc.jwk import RSAKey

    client = bed.client("rsa")
    pem = private_key("rsa").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    token = private_key_jwt_sign(
        RSAKey.import_key(pem), client.client_id, bed.auth.settings.token_endpoint, issued_at=int(bed.clock())
    )
    claims = json.loads(base64.urlsafe_b64decode(segments(token)[1] + "=="))
    assert claims["aud"] == TOKEN_ENDPOINT and claims["exp"] - claims["iat"] == 3600
    bed.accepts(token, client)


@pytest.mark.rfc("7523", "2.2")
def test_authlib_private_key_jwt_client_auth(bed: Bed, clock: FrozenClock) -> None:
    """Authlib's ``PrivateKeyJWT``, as ``OAuth2Session`` uses it, on the real clock it signs with."""
    from authlib.oauth2.rfc7523 import PrivateKeyJWT
    from joserfc.jwk import ECKey

    clock.set(time.time())
    client = bed.client("p256")
    key = ECKey.import_key(
        private_key("p256").private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    method = PrivateKeyJWT(TOKEN_ENDPOINT, alg="ES256")
    session = SimpleNamespace(client_id=client.client_id, client_secret=key)
    _, _, body = method(session, "POST", TOKEN_ENDPOINT, {}, "grant_type=client_credentials")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert "client_id" not in form
    bed.accepts(form["client_assertion"], client, client_id=form.get("client_id"))
    bed.refuses(form["client_assertion"], "jti already used (replay)")


# ------------------------------------------------------------------------- no oracle


@pytest.mark.rfc("7523", "3")
def test_each_refusal_has_its_own_reason(bed: Bed) -> None:
    """Every kind of failure: the same message to the caller, a distinct reason in the audit hook."""
    client = bed.client("p256")
    now = int(bed.clock())
    good = client.sign()
    h, p, _ = segments(good)
    used = client.sign()
    bed.accepts(used, client)
    cases: dict[str, Callable[[], object]] = {
        "shape": lambda: bed.check.check_assertion(f"{h}.{p}"),
        "alg": lambda: bed.check.check_assertion(forge({"alg": "HS256"}, client.claims())),
        "header": lambda: bed.check.check_assertion(client.sign(headers={"jwk": {"kty": "oct"}})),
        "sub": lambda: bed.check.check_assertion(client.sign(sub=DROP)),
        "form": lambda: bed.check.check_assertion(good, client_id="someone-else"),
        "unknown": lambda: bed.check.check_assertion(client.sign(sub="ghost", iss="ghost")),
        "kid": lambda: bed.check.check_assertion(client.sign(headers={"kid": "ghost"})),
        "key type": lambda: bed.check.check_assertion(client.sign(alg="EdDSA", key=private_key("ed25519"))),
        "signature": lambda: bed.check.check_assertion(client.sign(key=private_key("p256-attacker"))),
        "iss": lambda: bed.check.check_assertion(client.sign(iss="ghost")),
        "aud": lambda: bed.check.check_assertion(client.sign(aud="https://other.example")),
        "exp": lambda: bed.check.check_assertion(client.sign(exp=now - 3600)),
        "lifetime": lambda: bed.check.check_assertion(client.sign(exp=now + 7200)),
        "nbf": lambda: bed.check.check_assertion(client.sign(nbf=now + 3600)),
        "jti": lambda: bed.check.check_assertion(client.sign(jti=DROP)),
        "replay": lambda: bed.check.check_assertion(used),
    }
    for name, attempt in cases.items():
        with pytest.raises(InvalidClient) as info:
            attempt()
        assert str(info.value) == FAILED, name
    reasons = [reason for _, reason in bed.recorder.denied]
    assert len(reasons) == len(cases)
    assert len(set(reasons)) == len(cases), reasons
    assert all(client.client_id not in reason for reason in reasons)


# ------------------------------------------------------------------------- fuzzing


@pytest.mark.rfc("7523", "3")
def test_random_text_is_refused(bed: Bed) -> None:
    @given(
        st.text(max_size=300)
        | st.from_regex(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", fullmatch=True)
    )
    @settings(max_examples=300, deadline=None)
    def check(text: str) -> None:
        with pytest.raises(InvalidClient) as info:
            bed.check.check_assertion(text)
        assert str(info.value) == FAILED

    check()


@pytest.mark.rfc("7523", "3")
def test_mutated_assertions_are_refused(bed: Bed) -> None:
    """Only a mutation that decodes to the very same signed bytes can pass (base64url's spare bits)."""
    client = bed.client("p256")
    key = client.keys[client.credentials[0].id]

    @given(st.data())
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(data: st.DataObject) -> None:
        token = client.sign(key=key, headers={"kid": client.credentials[0].id})
        mutated = token
        for _ in range(data.draw(st.integers(1, 3))):
            at = data.draw(st.integers(0, len(mutated)))
            change = data.draw(st.sampled_from(["replace", "insert", "delete"]))
            char = data.draw(st.characters(codec="utf-8") | st.sampled_from("._-=+/AQgw"))
            end = at + 1 if change != "insert" else at
            mutated = mutated[:at] + (char if change != "delete" else "") + mutated[end:]
        try:
            bed.check.check_assertion(mutated)
        except InvalidClient as exc:
            message = str(exc)
            assert message == FAILED
            return
        original, changed = segments(token), segments(mutated)
        assert changed[:2] == original[:2]
        assert base64.urlsafe_b64decode(changed[2] + "==") == base64.urlsafe_b64decode(original[2] + "==")

    check()


@pytest.mark.rfc("7523", "3")
def test_signed_random_claims_never_crash(bed: Bed) -> None:
    """Validly signed assertions with arbitrary claim values: accepted or InvalidClient, nothing else."""
    client = bed.client("ed25519")
    key = client.keys[client.credentials[0].id]
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )
    names = st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]) | st.text(max_size=5)

    @given(st.dictionaries(names, json_values, max_size=4), st.booleans())
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(changes: dict[str, Any], with_client_id: bool) -> None:
        claims = json.dumps(client.claims() | changes).encode()
        token = api_jws.encode(claims, key, algorithm="EdDSA")
        try:
            registration, _ = bed.check.check_assertion(
                token, client_id=client.client_id if with_client_id else None
            )
        except InvalidClient as exc:
            message = str(exc)
            assert message == FAILED
        else:
            assert registration.client_id == client.client_id

    check()


# ------------------------------------------------------------------------- client secrets


def test_check_secret_refuses(auth: EmbedAuth) -> None:
    created = create(auth)
    other = create(auth)
    wrong = auth.registrations.rotate_secret(other.client_id).client_secret
    assert not works(auth, created.client_id, wrong)  # a valid secret of another client
    assert not works(auth, "00000000-0000-4000-8000-000000000000", created.client_secret)
    assert not works(auth, created.client_id, last_changed(created.client_secret))
    assert not works(auth, created.client_id, "")


class CountingStorage(MemoryStorage):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookups = 0

    def get_registration(self, client_id: str) -> Registration | None:
        self.lookups += 1
        return super().get_registration(client_id)


def test_malformed_secret_is_refused_before_any_lookup(clock: FrozenClock) -> None:
    storage = CountingStorage("memory://", clock=clock)
    auth = EmbedAuth(storage, clock=clock, **TEST_SETTINGS)
    created = auth.registrations.create(tenant="t", name="n")
    storage.lookups = 0
    verifications = count_calls(auth.clients._hasher, "verify")
    for bad in [
        last_changed(created.client_secret),
        created.client_secret + "0",
        "eas_" + "0" * 49,
        "hunter2",
    ]:
        assert auth.clients.check_secret(created.client_id, bad) is None
    assert storage.lookups == 0 and verifications() == 0


def count_calls(obj: object, name: str) -> Callable[[], int]:
    calls = [0]
    original = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(obj, name, counted)
    return lambda: calls[0]


def test_unknown_client_costs_one_hash(auth: EmbedAuth) -> None:
    created = create(auth)
    verifications = count_calls(auth.clients._hasher, "verify")
    assert not works(auth, "00000000-0000-4000-8000-000000000000", created.client_secret)
    assert verifications() == 1


def test_verified_secret_is_cached(auth: EmbedAuth) -> None:
    created = create(auth)
    verifications = count_calls(auth.clients._hasher, "verify")
    for _ in range(5):
        assert works(auth, created.client_id, created.client_secret)
    assert verifications() == 1
    uncached = auth.with_settings(secret_cache_size=0)
    verifications = count_calls(uncached.clients._hasher, "verify")
    for _ in range(3):
        assert works(uncached, created.client_id, created.client_secret)
    assert verifications() == 3


def test_cache_hit_checks_the_client(auth: EmbedAuth) -> None:
    created = create(auth)
    other = create(auth)
    assert works(auth, created.client_id, created.client_secret)
    assert not works(auth, other.client_id, created.client_secret)


def test_rotation_beats_the_secret_cache(auth: EmbedAuth) -> None:
    """A secret verified (and cached) a moment ago is refused right after a rotation."""
    created = create(auth)
    assert works(auth, created.client_id, created.client_secret)
    auth.registrations.rotate_secret(created.client_id)
    assert not works(auth, created.client_id, created.client_secret)


def test_rotation_seen_by_another_instance(auth: EmbedAuth) -> None:
    """Two instances on one storage (two processes' worth of caches): the rotation holds in both.

    ``other`` keeps the registration in its view until its revocation feed delivers the change
    (here: its next poll, run by hand). A token it signs in that window names the revoked
    credential, and every verifier that knows of the rotation refuses it."""
    other = EmbedAuth(auth.storage, clock=auth.clock, **TEST_SETTINGS)
    created = create(auth)
    assert works(other, created.client_id, created.client_secret)
    auth.registrations.rotate_secret(created.client_id)
    assert not works(auth, created.client_id, created.client_secret)
    in_the_window = other.tokens.client_credentials(created.client_id, created.client_secret).access_token
    with pytest.raises(InvalidToken):
        auth.verify(in_the_window)
    other.revocations.sync()
    assert not works(other, created.client_id, created.client_secret)
    with pytest.raises(InvalidToken):
        other.verify(in_the_window)


def test_hash_upgraded_on_next_use(auth: EmbedAuth) -> None:
    created = create(auth)
    stronger = auth.with_settings(argon2_time_cost=2, argon2_memory_kib=512)
    assert works(stronger, created.client_id, created.client_secret)
    upgraded = stronger.registrations.get(created.client_id).secrets[0]
    assert upgraded.id == created.credential.id
    assert "m=512,t=2" in upgraded.secret_hash
    assert works(auth, created.client_id, created.client_secret)


@pytest.mark.rfc("6749", "5.2")
def test_unknown_client_and_wrong_secret_answer_the_same(
    auth: EmbedAuth, created: CreatedSecret, recorder: Recorder
) -> None:
    other = auth.registrations.create(tenant="site-1", name="Other")
    attempts = [
        (created.client_id, other.client_secret),
        ("00000000-0000-4000-8000-000000000000", created.client_secret),
        (created.client_id, last_changed(created.client_secret)),
        (created.client_id, "hunter2"),
    ]
    for client_id, secret in attempts:
        with pytest.raises(InvalidClient) as caught:
            auth.tokens.client_credentials(client_id, secret)
        assert caught.value.body() == {
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }
    assert [reason for _, reason in recorder.denied] == ["unknown client or wrong secret"] * 4


# ------------------------------------------------------------------------- usable after authentication


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("disable", "the registration is disabled"),
        ("expire_registration", "the registration has expired"),
        ("expire_secret", "the client secret has expired"),
    ],
)
def test_unusable_after_authentication_says_why(
    auth: EmbedAuth, clock: FrozenClock, change: str, reason: str
) -> None:
    now = utcnow(clock)
    made = auth.registrations.create(
        tenant="site-1",
        name="Job",
        secret_expires_at=now + timedelta(days=2),
        expires_at=now + timedelta(days=1),
    )
    if change == "disable":
        auth.registrations.disable(made.client_id)
    elif change == "expire_registration":
        clock.advance(86400)
    else:
        auth.registrations.renew(made.client_id, days=10)
        clock.advance(2 * 86400)
    with pytest.raises(InvalidClient, match=reason):
        auth.tokens.client_credentials(made.client_id, made.client_secret)


def test_using_a_credential_near_its_expiry_sends_no_notice(clock: FrozenClock) -> None:
    """Notices are the expiry sweep's (tests/registry/test_lifecycle.py), once per deployment:
    using a credential near its end no longer fires them in each process."""

    class Heard:
        def __init__(self) -> None:
            self.events: list[int] = []

        @hookimpl
        def embedauth_credential_expiring(self, registration: Any, credential: Any, days_left: int) -> None:
            self.events.append(days_left)

    heard = Heard()
    with EmbedAuth("memory://", clock=clock, issuer=ISSUER, plugins=[heard], **TEST_SETTINGS) as auth:
        made = auth.registrations.create(
            tenant="t", name="n", secret_expires_at=utcnow(clock) + timedelta(days=5)
        )
        auth.tokens.client_credentials(made.client_id, made.client_secret)
        assert heard.events == []
        auth.lifecycle.sweep()
        assert heard.events == [5]

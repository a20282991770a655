"""ES256 access tokens have one spelling: embedauth signs them low-S and its verifiers (local and
remote) refuse the high-S twin ``(r, n - s)``, which would otherwise verify and take a second cache
entry (RFC 7518 §3.4 defines the signature; the low-S rule is embedauth's)."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedauth import EmbedAuth, InvalidToken
from embedauth.clock import FrozenClock
from embedauth.http.messages import Request
from embedauth.http.oauth import OAuthEndpoints
from embedauth.models import CreatedSecret
from embedauth.remote import RemoteVerifier, metadata_url
from tests.conftest import CATALOG, ISSUER, Recorder, catalogued
from tests.tokens.ecdsa import CURVES, flip_s, is_low_s, s_of
from tests.tokens.helpers import refused, token_for

HIGH_S = "high-S ECDSA signature"


@pytest.fixture
def es256(clock: FrozenClock, recorder: Recorder) -> Iterator[EmbedAuth]:
    """An instance signing its access tokens with ES256, reporting to ``recorder``."""
    with catalogued("memory://", clock, plugins=[recorder], signing_algorithm="ES256") as instance:
        yield instance


@pytest.fixture
def client(es256: EmbedAuth) -> CreatedSecret:
    return es256.registrations.create(tenant="site-1", name="Backup", scopes=list(CATALOG))


@pytest.mark.rfc("7518", "3.4")
def test_the_high_s_twin_of_a_token_is_refused(
    es256: EmbedAuth, client: CreatedSecret, recorder: Recorder
) -> None:
    token = token_for(es256, client)
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    twin = flip_s(token, "ES256")
    assert twin != token and s_of(twin, "ES256") == CURVES["ES256"][2] - s_of(token, "ES256")
    assert is_low_s(token, "ES256") and not is_low_s(twin, "ES256")
    refused(es256, twin)  # before the original was seen ...
    assert recorder.denied[-1] == (None, HIGH_S)
    assert es256.verify(token).client_id == client.client_id
    refused(es256, twin)  # ... and after it is in the cache
    assert recorder.denied[-1] == (None, HIGH_S)
    assert es256.tokens._verifier.cache_size() == 1  # the twin took no entry
    fresh = es256.with_settings(token_cache_size=0)  # no cache: the same answer from a first look
    refused(fresh, twin)
    assert fresh.verify(token).client_id == client.client_id


@pytest.mark.rfc("7518", "3.4")
def test_the_high_s_twin_is_refused_by_a_remote_verifier(
    es256: EmbedAuth, client: CreatedSecret, clock: FrozenClock
) -> None:
    """A RemoteVerifier loads the issuer's ES256 key from its JWKS: the same rule applies."""
    endpoints = OAuthEndpoints(es256)
    documents = {
        metadata_url(ISSUER): endpoints.metadata(Request("GET", metadata_url(ISSUER), {})).content(),
        ISSUER + "/.well-known/jwks.json": endpoints.jwks(
            Request("GET", ISSUER + "/.well-known/jwks.json", {})
        ).content(),
    }
    remote_recorder = Recorder()
    remote = RemoteVerifier(ISSUER, clock=clock, fetch=documents.__getitem__, plugins=[remote_recorder])
    try:
        token = token_for(es256, client)
        twin = flip_s(token, "ES256")
        with pytest.raises(InvalidToken):
            remote.verify(twin)
        assert remote_recorder.denied[-1] == (None, HIGH_S)
        assert remote.verify(token).client_id == client.client_id
        with pytest.raises(InvalidToken):
            remote.verify(twin)
        assert remote_recorder.denied[-1] == (None, HIGH_S)
    finally:
        remote.close()


@pytest.mark.rfc("7518", "3.4")
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scopes=st.lists(st.sampled_from(CATALOG), min_size=1, unique=True))
def test_every_es256_token_issued_is_low_s(
    es256: EmbedAuth, client: CreatedSecret, scopes: list[str]
) -> None:
    """OpenSSL gives s > n/2 about half the time: 100 tokens all low-S only because of jws.sign."""
    token = token_for(es256, client, scope=" ".join(scopes))
    assert is_low_s(token, "ES256")
    assert es256.verify(token).scopes == set(scopes)

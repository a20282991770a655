"""RFC 6750 checks, framework-free (the adapters' conformance table checks them over HTTP)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedauth import EmbedAuth
from embedauth.http.bearer import BearerError, BearerGuard

REALM = "api.example.com"


@pytest.fixture
def guard(auth: EmbedAuth) -> BearerGuard:
    return BearerGuard(auth, realm=REALM)


@pytest.fixture
def token(auth: EmbedAuth) -> str:
    made = auth.registrations.create(tenant="site-1", name="Job", scopes=["devices:read"])
    return auth.tokens.client_credentials(made.client_id, made.client_secret).access_token


def refusal(guard: BearerGuard, header: str | None, scopes: tuple[str, ...] = ()) -> BearerError:
    with pytest.raises(BearerError) as caught:
        guard.check(header, scopes)
    return caught.value


@pytest.mark.rfc("6750", "2.1")
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_is_case_insensitive(guard: BearerGuard, token: str, scheme: str) -> None:
    assert guard.check(f"{scheme} {token}").scopes == {"devices:read"}


@pytest.mark.rfc("6750", "3.1")
def test_no_token_is_a_bare_challenge(guard: BearerGuard) -> None:
    assert guard.authenticate(None) is None
    response = refusal(guard, None).response(REALM)
    assert response.status == 401
    assert response.header("WWW-Authenticate") == f'Bearer realm="{REALM}"'


@pytest.mark.rfc("6750", "3.1")
@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Bearer a b", "Bearer   ", "bearer  a\tb", "Bearer a  b"]
)
def test_malformed_header_is_invalid_request(guard: BearerGuard, header: str) -> None:
    response = refusal(guard, header).response(REALM)
    assert response.status == 400
    challenge = response.header("WWW-Authenticate") or ""
    assert challenge.startswith(f'Bearer realm="{REALM}", error="invalid_request"')
    assert isinstance(response.body, dict) and response.body["error"] == "invalid_request"


@pytest.mark.rfc("7235", "2.1")
@pytest.mark.parametrize("header", ["Basic YTpi", "Token abc", "", "Bearerabc"])
def test_other_schemes_carry_no_bearer_credentials(guard: BearerGuard, header: str) -> None:
    assert guard.authenticate(header) is None
    assert refusal(guard, header).status == 401


@pytest.mark.rfc("6750", "3.1")
@pytest.mark.parametrize("spoil", ["{}x", "{}!", "{},x", "é{}", "{}\x00"])
def test_bad_token_is_invalid_token(guard: BearerGuard, token: str, spoil: str) -> None:
    """Wrong or malformed ("malformed" is under invalid_token in §3.1): 401 invalid_token."""
    response = refusal(guard, "Bearer " + spoil.format(token)).response(REALM)
    assert response.status == 401
    assert response.header("WWW-Authenticate") == (
        f'Bearer realm="{REALM}", error="invalid_token", error_description="the access token is invalid, expired or revoked"'
    )


@pytest.mark.rfc("6750", "3.1")
def test_missing_scope_is_insufficient_scope(guard: BearerGuard, token: str) -> None:
    response = refusal(guard, f"Bearer {token}", ("devices:read", "devices:write")).response(REALM)
    assert response.status == 403
    assert 'error="insufficient_scope"' in (response.header("WWW-Authenticate") or "")
    assert 'scope="devices:read devices:write"' in (response.header("WWW-Authenticate") or "")
    assert response.body == {
        "error": "insufficient_scope",
        "error_description": "the access token lacks a scope this needs",
        "scope": "devices:read devices:write",
    }


def test_realm_is_quoted() -> None:
    challenge = BearerError(401, None).response('a"b\\c').header("WWW-Authenticate")
    assert challenge == 'Bearer realm="a\\"b\\\\c"'


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.none(), st.text(max_size=300), st.text(max_size=60).map(lambda t: "Bearer " + t)))
def test_any_header_is_answered_as_rfc_6750_says(guard: BearerGuard, header: str | None) -> None:
    """Anything: anonymous, or a BearerError of 400/401 with its challenge; never another exception."""
    outcome: object
    try:
        outcome = guard.authenticate(header)
    except BearerError as error:
        outcome = error
    if isinstance(outcome, BearerError):
        assert outcome.status in (400, 401)
        challenge = outcome.response(REALM).header("WWW-Authenticate") or ""
        assert challenge.startswith(f'Bearer realm="{REALM}", error="')
    else:
        assert outcome is None


@pytest.mark.rfc("6750", "3.1")
def test_a_header_read_before_is_still_verified_each_time(
    guard: BearerGuard, token: str, auth: EmbedAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard remembers which token a header holds once it verified, never the verdict: a
    revocation after that is refused on the next request, and a refused token is not remembered."""
    header = f"Bearer {token}"
    assert guard.check(header, ("devices:read",))
    assert guard._read == {header: token}
    with pytest.raises(BearerError):
        guard.check(f"Bearer {token}x")
    assert len(guard._read) == 1  # the refused one is not kept
    auth.registrations.disable(guard.check(header).client_id)
    assert refusal(guard, header).error == "invalid_token"
    monkeypatch.setattr(guard._read, "maxsize", 2)
    others = [
        auth.registrations.create(tenant="site-1", name=f"Job {i}", scopes=["devices:read"]) for i in range(3)
    ]
    for made in others:
        guard.check(
            "Bearer " + auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
        )
        assert len(guard._read) <= 2

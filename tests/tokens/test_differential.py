"""Differential test: embedauth's hand-written access-token verifier against PyJWT and joserfc.

The same token goes to (1) ``EmbedAuth.verify``, (2) ``jwt.decode`` of PyJWT and (3)
``joserfc.jwt.decode`` with a ``JWTClaimsRegistry``, each configured with what embedauth requires
(the issuer, the audiences, the leeway, RFC 9068 §2.2's required claims, the clock), and the three
must make the same accept/reject decision, with the same claims on accept (an integer beyond 64
bits compared as the float embedauth's JSON parser reads it as, :func:`as_read`).

Neither library knows all of embedauth's rules, so an oracle is the library's verdict followed by
the :data:`RULES`: one small function each, with the RFC (or the embedauth policy) it comes from.
A rule only ever refuses what the library accepted; it never skips an example. Where a library
refuses what the RFCs allow (PyJWT truncating a fractional NumericDate, joserfc's header size
limit and its refusal of header parameters it does not know), the wrapper says so in a named
correction (:func:`pyjwt_decision`, :func:`joserfc_registry`).

Every example runs on a clock with a fractional time (a boundary one second wide proves nothing),
and embedauth's answer is taken twice, with an empty cache and then from its cache.
"""

from __future__ import annotations

import base64
import json
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from unittest import mock

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from joserfc import jwk as joserfc_jwk
from joserfc import jwt as joserfc_jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jws import JWSRegistry
from joserfc.jwt import ClaimsOption

from embedauth import EmbedAuth, InvalidToken
from embedauth.clock import FrozenClock
from embedauth.tokens import jws
from tests.conftest import ISSUER
from tests.tokens.ecdsa import CURVES
from tests.tokens.helpers import make_auth, segments

T0 = 1_790_000_000.0  # when the instances are made (their signing keys are published from then)
ALGORITHMS = ("ES256", "RS256", "EdDSA")
#: The RS256 instance also serves two extra audiences (aud matching against a set).
EXTRA_AUDIENCES = ("https://api.example.com/devices", "https://other.example")
#: RFC 9068 §2.2: the claims an access token must carry (``nbf`` is optional).
REQUIRED = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
ES256_ORDER = CURVES["ES256"][2]

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# ----------------------------------------------------------------------------------- the instances


@dataclass
class Setup:
    """One embedauth instance signing with ``alg``, and the same public key for both oracles."""

    alg: str
    auth: EmbedAuth
    clock: FrozenClock
    kid: str
    private_key: Any
    pyjwt_key: jwt.PyJWK
    joserfc_key: Any
    public_pem: bytes
    audiences: tuple[str, ...]
    header: dict[str, Any]  # the header of the instance's own tokens
    claims: dict[str, Any]  # the claims of one of its tokens, with iat/nbf/exp at T0
    revoked_jti: str  # the jti of a token revoked through embedauth (RFC 7009)

    @property
    def leeway(self) -> int:
        return self.auth.settings.leeway

    @property
    def max_bytes(self) -> int:
        return self.auth.settings.max_token_bytes


@pytest.fixture(scope="module")
def setups() -> Iterator[dict[str, Setup]]:
    yield from make_setups()


def make_setups() -> Iterator[dict[str, Setup]]:
    """One instance per algorithm, with a revoked token, closed afterwards."""
    made: dict[str, Setup] = {}
    try:
        for alg in ALGORITHMS:
            clock = FrozenClock(T0)
            audiences = EXTRA_AUDIENCES if alg == "RS256" else ()
            # max_staleness: revocation freshness is not under test, and a busy 2-core machine can
            # delay the background poller of a long hypothesis run past the default 30 s.
            auth = make_auth(clock, signing_algorithm=alg, audiences=audiences, max_staleness=3600.0)
            registration = auth.registrations.create(tenant="site-1", name="Backup")
            issue = auth.tokens.client_credentials
            header, claims, _ = segments(
                issue(registration.client_id, registration.client_secret).access_token
            )
            revoked = issue(registration.client_id, registration.client_secret).access_token
            auth.tokens.revoke(revoked)
            key, private_key = auth.keys.signing_key()
            (public_jwk,) = auth.jwks()["keys"]
            made[alg] = Setup(
                alg=alg,
                auth=auth,
                clock=clock,
                kid=key.kid,
                private_key=private_key,
                pyjwt_key=jwt.PyJWK(public_jwk),
                joserfc_key=joserfc_jwk.import_key(public_jwk),
                public_pem=private_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                audiences=audiences or (ISSUER,),
                header=header,
                claims=claims,
                revoked_jti=segments(revoked)[1]["jti"],
            )
        yield made
    finally:
        for setup in made.values():
            setup.auth.close()


@pytest.fixture(scope="module", params=ALGORITHMS)
def setup(request: pytest.FixtureRequest, setups: dict[str, Setup]) -> Setup:
    return setups[str(request.param)]


# ----------------------------------------------------------------------------------- signing


def raw_signature(setup: Setup, signing_input: bytes, *, low_s: bool = True) -> bytes:
    """The JOSE signature of ``signing_input`` (RFC 7518 §3) by the instance's key."""
    key = setup.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        if low_s:
            s = min(s, ES256_ORDER - s)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(signing_input)


def sign_text(setup: Setup, header_segment: str, payload_segment: str, *, low_s: bool = True) -> str:
    """A token over exactly these segment texts, signed with the real key."""
    signing_input = f"{header_segment}.{payload_segment}"
    return f"{signing_input}.{b64e(raw_signature(setup, signing_input.encode('ascii'), low_s=low_s))}"


def sign_bytes(setup: Setup, header: bytes, payload: bytes) -> str:
    """A token of these exact header and payload octets (hand-written JSON), signed with the real key."""
    return sign_text(setup, b64e(header), b64e(payload))


def sign_claims(setup: Setup, claims: Mapping[str, Any], header: Mapping[str, Any], signer: str) -> str:
    """``claims`` under ``header``: embedauth's signer (low-S), PyJWT's (raw ECDSA), or JSON by hand."""
    if signer == "embedauth":
        return jws.sign(claims, setup.private_key, setup.alg, header)
    if signer == "pyjwt":
        try:
            return jwt.encode(dict(claims), setup.private_key, algorithm=setup.alg, headers=dict(header))
        except (TypeError, ValueError):  # PyJWT refuses to write some wrong claims: write them by hand
            pass
    return sign_bytes(setup, json.dumps(header).encode(), json.dumps(claims).encode())


# ----------------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    accepted: bool
    claims: dict[str, Any] | None = None
    why: str = ""

    def __repr__(self) -> str:
        return "accept" if self.accepted else f"refuse ({self.why})"


REFUSED_BY_EMBEDAUTH = Decision(False, why="embedauth")


def embedauth_decision(setup: Setup, token: str) -> Decision:
    """embedauth's answer, with an empty cache and again from the cache: they must agree."""
    setup.auth.tokens._verifier._cache.clear()
    answers = []
    for _ in range(2):
        try:
            principal = setup.auth.verify(token)
        except InvalidToken:
            answers.append(REFUSED_BY_EMBEDAUTH)
            continue
        claims = dict(principal.claims)
        assert principal.subject == claims["sub"] and principal.client_id == claims["client_id"]
        assert principal.token_id == claims["jti"] and principal.expires_at == claims["exp"]
        answers.append(Decision(True, claims))
    first, cached = answers
    assert same(first, cached), f"embedauth's cache changed its answer: {first} then {cached}"
    return first


@dataclass
class Context:
    """What a rule looks at: the token text, what the library decoded, the time."""

    setup: Setup
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    now: float
    segments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.segments = self.token.split(".")


Rule = Callable[[Context], bool]  # True: the rule refuses the token


def refuse_by_rules(ctx: Context) -> Decision:
    for rule in RULES:
        if rule(ctx):
            return Decision(False, why=rule.__name__)
    return Decision(True, ctx.claims)


class _Instant:
    def __init__(self, now: float) -> None:
        self._now = now

    def timestamp(self) -> float:
        return self._now


class _FrozenDatetime:
    """What ``jwt.api_jwt`` reads the time from (``datetime.now(tz=...).timestamp()``), frozen."""

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self, tz: object = None) -> _Instant:
        return _Instant(self._now)


def _pyjwt_decode(setup: Setup, token: str, now: float, *, check_times: bool) -> dict[str, Any]:
    options: dict[str, Any] = {"require": list(REQUIRED), "strict_aud": False}
    if not check_times:
        options |= {"verify_exp": False, "verify_nbf": False, "verify_iat": False}
    with mock.patch.object(jwt.api_jwt, "datetime", _FrozenDatetime(now)):
        claims: dict[str, Any] = jwt.decode(
            token,
            setup.pyjwt_key,
            algorithms=[setup.alg],
            audience=list(setup.audiences),
            issuer=ISSUER,
            leeway=setup.leeway,
            options=cast(Any, options),
        )
        return claims


def pyjwt_decision(setup: Setup, token: str, now: float) -> Decision:
    """PyJWT's verdict, then the rules.

    Correction ``pyjwt_truncates_numeric_dates``: PyJWT compares ``int(exp)``, ``int(nbf)`` and
    ``int(iat)`` with the time, but a NumericDate may be non-integer (RFC 7519 §2), so PyJWT expires
    ``exp = now + 0.5`` early. When PyJWT refuses on time and a date is fractional, its time checks
    are replaced by the exact comparisons of :func:`rfc7519_time_checks` (everything else stays
    PyJWT's). Where the truncation makes PyJWT lax instead (nbf, iat), that rule refuses anyway.
    """
    try:
        claims = _pyjwt_decode(setup, token, now, check_times=True)
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as error:
        try:
            claims = _pyjwt_decode(setup, token, now, check_times=False)
        except jwt.PyJWTError as other:
            return Decision(False, why=f"pyjwt: {other!r}")
        if not any(
            isinstance(claims.get(name), float) and not float(claims[name]).is_integer()
            for name in ("exp", "nbf", "iat")
        ):
            return Decision(False, why=f"pyjwt: {error!r}")
    except jwt.PyJWTError as error:
        return Decision(False, why=f"pyjwt: {error!r}")
    header = jwt.get_unverified_header(token)
    return refuse_by_rules(Context(setup, token, header, claims, now))


def joserfc_registry(setup: Setup) -> JWSRegistry:
    """joserfc configured as RFC 7515 reads, not stricter.

    Corrections: ``strict_check_header=False``, since RFC 7515 §4 has a recipient ignore header
    parameters it does not understand (joserfc refuses any outside its registry by default); and no
    512-byte header limit (joserfc's own; embedauth bounds the whole token, :func:`token_size_limit`).
    """
    registry = JWSRegistry(algorithms=[setup.alg], strict_check_header=False)
    registry.max_header_length = setup.max_bytes
    return registry


def joserfc_decision(setup: Setup, token: str, now: float) -> Decision:
    """joserfc's verdict (signature, JSON, claims registry), then the rules."""
    # allow_blank: an empty sub, client_id or jti is a string all the same (joserfc refuses "" by default)
    blank_ok: ClaimsOption = {"essential": True, "allow_blank": True}
    claims_registry = joserfc_jwt.JWTClaimsRegistry(
        now=cast(Callable[[], int], lambda: now),
        leeway=setup.leeway,
        iss={"essential": True, "allow_blank": True, "value": ISSUER},
        aud={"essential": True, "allow_blank": True, "values": list(setup.audiences)},
        **{name: blank_ok for name in ("exp", "iat", "sub", "client_id", "jti")},
    )
    try:
        with warnings.catch_warnings():
            # RFC 9864 deprecates the polymorphic "EdDSA" for "Ed25519"; embedauth still signs EdDSA.
            warnings.simplefilter("ignore", SecurityWarning)
            decoded = joserfc_jwt.decode(token, setup.joserfc_key, [setup.alg], joserfc_registry(setup))
        claims_registry.validate(decoded.claims)
    except JoseError as error:
        return Decision(False, why=f"joserfc: {error!r}")
    except (RecursionError, TypeError) as error:
        # joserfc bugs, counted as the refusals they amount to: json's RecursionError escapes (it
        # catches TypeError and ValueError only), and a header that is a JSON string, not an
        # object, raises TypeError in its header checks (registry.py).
        return Decision(False, why=f"joserfc crashed: {error!r}")
    return refuse_by_rules(Context(setup, token, dict(decoded.header), decoded.claims, now))


# ----------------------------------------------------------------------------------- the rules
# Each refuses (returns True) what a library accepted but embedauth's rules, or the RFCs, refuse.


def token_size_limit(ctx: Context) -> bool:
    """embedauth policy (``max_token_bytes``, 8 KiB): a token is bounded before any work is done on
    it. No RFC sets a number; neither library limits the token here."""
    return len(ctx.token) > ctx.setup.max_bytes


_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def compact_serialization(ctx: Context) -> bool:
    """RFC 7515 §7.1 and §2: three segments of unpadded base64url, nothing else (no ``=``, no white
    space). PyJWT accepts ``=`` padding (for issuers that send it)."""
    return _COMPACT.fullmatch(ctx.token) is None


def canonical_signature_segment(ctx: Context) -> bool:
    """RFC 4648 §3.5 lets a decoder refuse non-zero pad bits; embedauth does for the signature, so
    that no second spelling of a token verifies. (Both libraries already refuse these.)"""
    signature = ctx.segments[2]
    return b64e(b64d(signature)) != signature


def high_s_ecdsa(ctx: Context) -> bool:
    """embedauth policy on RFC 7518 §3.4: of the two ECDSA spellings ``(r, s)`` and ``(r, n - s)``,
    access tokens accept the low-S one only (one token, one cache entry). Both libraries accept both."""
    if ctx.setup.alg != "ES256":
        return False
    signature = b64d(ctx.segments[2])
    return int.from_bytes(signature[32:], "big") > ES256_ORDER // 2


FORBIDDEN_HEADER_PARAMETERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64", "zip", "enc"})


def forbidden_header_parameters(ctx: Context) -> bool:
    """embedauth policy: header parameters that let a token choose its key (jwk, jku, x5u, x5c:
    RFC 7515 §4.1.2-4.1.6, RFC 8725 §3.10), change its processing (crit: RFC 7515 §4.1.11; b64:
    RFC 7797 §3) or belong to JWE (zip, enc: RFC 7516 §4.1.2-4.1.3) are refused outright. The keys
    here come from the issuer, so both libraries ignore jwk/jku/x5u/x5c/zip/enc."""
    return not FORBIDDEN_HEADER_PARAMETERS.isdisjoint(ctx.header)


def typ_is_at_jwt(ctx: Context) -> bool:
    """RFC 9068 §4: ``typ`` must be ``at+jwt`` (``application/at+jwt``). RFC 7515 §4.1.9: media type
    names are case-insensitive, and a ``typ`` without ``/`` is read with ``application/`` before it.
    Neither library checks ``typ``."""
    typ = ctx.header.get("typ")
    if not isinstance(typ, str):
        return True
    media_type = typ.lower() if "/" in typ else f"application/{typ.lower()}"
    return media_type != "application/at+jwt"


def kid_names_the_key(ctx: Context) -> bool:
    """RFC 7515 §4.1.4 and RFC 9068 §4 (the key is the issuer's, picked by ``kid``): embedauth requires
    a ``kid`` naming a published key. The libraries are handed the key, so they never look at it."""
    return ctx.header.get("kid") != ctx.setup.kid


def _numeric_date(value: object) -> bool:
    return not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    )


def numeric_dates(ctx: Context) -> bool:
    """RFC 7519 §2 and §4.1.4-4.1.6: exp, iat (required by RFC 9068 §2.2) and nbf are JSON numbers,
    and finite. PyJWT reads them with ``int()``, so it takes ``"1790000000"`` and ``true``."""
    claims = ctx.claims
    return not all(_numeric_date(claims.get(name)) for name in ("exp", "iat")) or (
        "nbf" in claims and not _numeric_date(claims["nbf"])
    )


def numeric_date_range(ctx: Context) -> bool:
    """embedauth policy (``jws.is_numeric_date``): a NumericDate, integer or not, must be below
    2**53 in magnitude, what a float holds exactly. RFC 7519 sets no bound; both libraries take
    any number (``1e308`` included)."""
    return any(
        isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 2**53
        for value in (ctx.claims.get(name) for name in ("exp", "iat", "nbf"))
    )


def rfc7519_time_checks(ctx: Context) -> bool:
    """RFC 7519 §4.1.4 (now before exp), §4.1.5 (now at or after nbf), each with the leeway, compared
    exactly; and an ``iat`` beyond now plus the leeway refused (both libraries and embedauth do).
    Only PyJWT's truncation (see :func:`pyjwt_decision`) ever makes this rule the one to decide."""
    claims, now, leeway = ctx.claims, ctx.now, ctx.setup.leeway
    exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", 0)
    return bool(exp <= now - leeway or nbf > now + leeway or iat > now + leeway)


def required_string_claims(ctx: Context) -> bool:
    """RFC 9068 §2.2: sub, client_id and jti are required, strings (RFC 7519 §4.1.2, §4.1.7;
    RFC 8693 §4.3). PyJWT checks sub and jti only when present, joserfc does not type client_id."""
    return not all(isinstance(ctx.claims.get(name), str) for name in ("sub", "client_id", "jti"))


def scope_is_a_string(ctx: Context) -> bool:
    """RFC 9068 §2.2.3 and RFC 8693 §4.2: ``scope``, when present, is a space-separated string."""
    return "scope" in ctx.claims and not isinstance(ctx.claims["scope"], str)


_IDENTIFIER = r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}"
_CUSTOMER_SCOPE = re.compile(rf"all|(?:customers|groups):{_IDENTIFIER}(?:,{_IDENTIFIER})*")


def embedauth_private_claims(ctx: Context) -> bool:
    """embedauth's own claims, as its issuer writes them: ``cred`` a string (or null), ``gen`` an
    int in [0, 2**31), ``customer_scope`` ``all``, ``customers:ID,...`` or ``groups:ID,...``."""
    claims = ctx.claims
    cred, gen, customer_scope = claims.get("cred"), claims.get("gen", 0), claims.get("customer_scope", "all")
    return (
        not (cred is None or isinstance(cred, str))
        or type(gen) is not int
        or not 0 <= gen < 2**31
        or not (isinstance(customer_scope, str) and _CUSTOMER_SCOPE.fullmatch(customer_scope))
    )


def revoked(ctx: Context) -> bool:
    """RFC 7009 §2.2: a revoked access token is refused (the revocation went through embedauth)."""
    return ctx.claims.get("jti") == ctx.setup.revoked_jti


def utf8_json_text(ctx: Context) -> bool:
    """RFC 7519 §7.2 steps 4 and 10, RFC 7515 §5.2 step 3, RFC 8259 §8.1: header and claims are JSON
    in UTF-8. Both libraries hand the octets to ``json.loads``, which also reads UTF-16 and UTF-32,
    skips a BOM (RFC 8259 lets a parser ignore one; embedauth does not) and takes UTF-8-encoded
    surrogates; this rule reads them as UTF-8 text, as embedauth does."""
    for segment in ctx.segments[:2]:
        try:
            text = b64d(segment).decode("utf-8")
            if text.startswith("\ufeff"):
                return True
            json.loads(text)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError both
            return True
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)
    return value


def json_numbers_only(ctx: Context) -> bool:
    """RFC 8259 §6 (RFC 7519 §7.2 step 10: "a completely valid JSON object"): ``NaN``, ``Infinity``
    and ``-Infinity`` are not JSON. Python's ``json`` (so both libraries) reads them, and reads
    ``1e400`` as infinity; embedauth refuses a number beyond a double's range (RFC 8259 §9 lets a
    parser limit the range of numbers; RFC 7493 §2.2 holds I-JSON to doubles)."""
    for segment in ctx.segments[:2]:
        try:
            json.loads(b64d(segment), parse_constant=_no_constant, parse_float=_finite)
        except ValueError:
            return True
    return False


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def unicode_strings(ctx: Context) -> bool:
    """RFC 7493 §2.1 (and RFC 8259 §8.2, whose behaviour for them is "unpredictable"): a string
    escaping an unpaired surrogate, ``"\\ud800"``, is not Unicode text. Python's ``json`` reads it
    into a str that cannot be encoded; embedauth refuses the token."""
    for segment in ctx.segments[:2]:
        for text in _strings(json.loads(b64d(segment))):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


RULES: tuple[Rule, ...] = (
    token_size_limit,
    compact_serialization,
    canonical_signature_segment,
    high_s_ecdsa,
    forbidden_header_parameters,
    typ_is_at_jwt,
    kid_names_the_key,
    utf8_json_text,
    json_numbers_only,
    unicode_strings,
    numeric_dates,
    numeric_date_range,
    rfc7519_time_checks,
    required_string_claims,
    scope_is_a_string,
    embedauth_private_claims,
    revoked,
)


# ----------------------------------------------------------------------------------- comparing


def as_read(value: object) -> object:
    """``value`` with every integer beyond 64 bits as the float embedauth reads it as (RFC 8259 §9
    lets a parser limit the range and precision of numbers; ``jws._json_object``)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return float(value)
    if isinstance(value, dict):
        return {key: as_read(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_read(item) for item in value]
    return value


def same(a: Decision, b: Decision) -> bool:
    if a.accepted != b.accepted:
        return False
    # json text compares NaN as NaN (a NaN claim is never equal to itself)
    return not a.accepted or json.dumps(as_read(a.claims), sort_keys=True) == json.dumps(
        as_read(b.claims), sort_keys=True
    )


def at(setup: Setup, now: float) -> None:
    setup.clock.set(now)


def check(setup: Setup, token: str, now: float) -> Decision:
    """All three decide ``token`` at ``now``; they must agree. Returns the common decision."""
    at(setup, now)
    ours = embedauth_decision(setup, token)
    theirs = pyjwt_decision(setup, token, now), joserfc_decision(setup, token, now)
    for name, decision in zip(("PyJWT", "joserfc"), theirs, strict=True):
        assert same(ours, decision), (
            f"{setup.alg} at now={now!r}: embedauth {ours}, {name}+rules {decision}\n"
            f"token: {token}\nheader: {_text(token, 0)}\npayload: {_text(token, 1)}"
        )
    return ours


def _text(token: str, index: int) -> str:
    try:
        return repr(b64d(token.split(".")[index]))
    except (IndexError, ValueError):
        return "(undecodable)"


# ----------------------------------------------------------------------------------- strategies

DELETE = object()  # an edit that removes the claim
#: Offsets from a leeway boundary: exactly on it, a microsecond, a quarter, a half and a second off.
DELTAS = (0.0, 1e-6, -1e-6, 0.25, -0.25, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5)
FRACTIONS = (0.0, 0.25, 0.5, 0.999_999, 0.000_001, 0.3)


def nows() -> st.SearchStrategy[float]:
    """Verification times after T0, mostly with a fractional part."""
    fraction = st.sampled_from(FRACTIONS) | st.floats(0, 1, exclude_max=True)
    return st.builds(lambda whole, part: T0 + whole + part, st.integers(0, 2000), fraction)


def near(edge: float) -> st.SearchStrategy[float | int]:
    """Times at, just inside and just outside ``edge``: floats, and the integers around it."""
    floats = st.sampled_from(DELTAS).map(lambda delta: edge + delta)
    ints = st.sampled_from((-1, 0, 1, 2)).map(lambda delta: math.floor(edge) + delta)
    return floats | ints


WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**63, 10**30, 0, -1]),
    st.floats(),  # NaN and the infinities included
    st.sampled_from([1e308, 9007199254740992.0, 1790001000.5, "1790001000", "", "NaN"]),
    st.text(max_size=6),
    st.lists(st.text(max_size=3) | st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=2), max_size=2),
)

AUDIENCES = [
    ISSUER,
    [ISSUER],
    [ISSUER, "https://other.example"],
    ["https://other.example", ISSUER],
    ISSUER + "/",
    ISSUER.upper(),
    "https://API.example.com",
    [],
    "",
    [[ISSUER]],
    {"aud": ISSUER},
    EXTRA_AUDIENCES[0],
    [EXTRA_AUDIENCES[1]],
    [ISSUER, 5],
    [None, EXTRA_AUDIENCES[0]],
    [ISSUER, ISSUER],
]
ISSUERS = [ISSUER, ISSUER + "/", ISSUER.upper(), "https://api.example.com:443", " " + ISSUER, [ISSUER], ""]
CUSTOMER_SCOPES = [
    "all",
    "groups:g1",
    "customers:c1,c2",
    "everyone",
    "groups:",
    "groups:-x",
    "ALL",
    "groups:g1,",
]
SPECIFIC: dict[str, list[Any]] = {
    "iss": ISSUERS,
    "aud": AUDIENCES,
    "scope": ["", "devices:read", "devices:read users:read", ["devices:read"]],
    "customer_scope": CUSTOMER_SCOPES,
    "gen": [0, 1, 2**31 - 1, 2**31, -1, 1.0, True],
    "cred": ["2hiL20Qt1srqLgMIoeva1s", None],
    "sub": ["", "someone", "e6c55099-e50e-4164-8aeb-b24143a7cc98"],
    "client_id": ["", "another-client"],
    "jti": ["", "another-token"],
    "tenant": ["site-2", None],
    "x-custom": [{"nested": {"deep": [1, 2, {"a": None}]}}, "text"],
}
CLAIM_NAMES = sorted({*SPECIFIC, "exp", "iat", "nbf"})


@st.composite
def claim_sets(draw: st.DrawFn, setup: Setup, now: float) -> dict[str, Any]:
    """A valid claim set edited: a date on a leeway boundary, claims removed or given odd values."""
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    leeway = setup.leeway
    edges = {"exp": now - leeway, "nbf": now + leeway, "iat": now + leeway}
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(edges)))
        claims[name] = draw(near(edges[name]))
    extra = {"jti": [setup.revoked_jti], "aud": list(setup.audiences)}
    for name in draw(st.lists(st.sampled_from(CLAIM_NAMES), min_size=1, max_size=2, unique=True)):
        choices = [*SPECIFIC.get(name, []), *extra.get(name, []), DELETE]
        value = draw(st.sampled_from(choices) if draw(st.integers(0, 3)) else WRONG)
        if value is DELETE:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


FIXED_WRONG: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**53,
    2**63,
    10**30,
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    "",
    "1790001000",
    [],
    ["a"],
    {"a": 1},
    {"nested": {"a": [1, {"b": None}]}},
]
#: Every claim with every odd value: a table, so that each edge is decided for every algorithm.
EDGES = [(name, value) for name in CLAIM_NAMES for value in [*SPECIFIC.get(name, []), *FIXED_WRONG, DELETE]]


SIGNERS = st.sampled_from(["embedauth", "pyjwt", "hand"])


# ----------------------------------------------------------------------------------- the tests


@pytest.mark.rfc("7519", "7.2")
@pytest.mark.rfc("7519", "4.1")
@pytest.mark.rfc("9068", "4")
@settings(EXAMPLES, max_examples=200)
@given(data=st.data())
def test_claim_sets_are_decided_alike(setup: Setup, data: st.DataObject) -> None:
    """Validly signed tokens whose decision depends on the claims alone."""
    now = data.draw(nows(), label="now")
    claims = data.draw(claim_sets(setup, now), label="claims")
    token = sign_claims(setup, claims, setup.header, data.draw(SIGNERS, label="signer"))
    event(repr(check(setup, token, now)).partition(" ")[0])


@pytest.mark.rfc("7519", "4.1.4")
@pytest.mark.rfc("7519", "4.1.5")
@EXAMPLES
@given(data=st.data())
def test_leeway_boundaries(setup: Setup, data: st.DataObject) -> None:
    """exp, nbf and iat exactly at, just inside and just outside now ± leeway, on a fractional clock."""
    now = data.draw(nows(), label="now")
    name = data.draw(st.sampled_from(["exp", "nbf", "iat"]), label="claim")
    edge = now - setup.leeway if name == "exp" else now + setup.leeway
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    claims[name] = data.draw(near(edge), label=name)
    decision = check(setup, sign_claims(setup, claims, setup.header, "embedauth"), now)
    value = claims[name]
    inside = value > edge if name == "exp" else value <= edge
    assert decision.accepted == inside, (name, value, edge)


@pytest.mark.rfc("7519", "4.1")
@pytest.mark.rfc("9068", "2.2")
@pytest.mark.parametrize(
    ("name", "value"), EDGES, ids=[f"{n}={'(deleted)' if v is DELETE else repr(v)}" for n, v in EDGES]
)
def test_every_claim_edge(setup: Setup, name: str, value: Any) -> None:
    """One claim removed or changed in a valid claim set, both signers, on a fractional clock."""
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    if value is DELETE:
        claims.pop(name, None)
    else:
        claims[name] = value
    for signer in ("embedauth", "pyjwt") if setup.alg == "ES256" else ("embedauth",):  # the same bytes else
        check(setup, sign_claims(setup, claims, setup.header, signer), T0 + 100.3)


# ----------------------------------------------------------------------------------- JSON by hand


def _claims_json(setup: Setup) -> str:
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    return json.dumps(claims, separators=(",", ":"))


def _header_json(setup: Setup) -> str:
    return json.dumps(setup.header, separators=(",", ":"))


def _insert_first(text: str, member: str) -> str:
    return "{" + member + "," + text[1:]


def _insert_last(text: str, member: str) -> str:
    return text[:-1] + "," + member + "}"


#: Hand-written JSON texts: duplicate names (RFC 7515 §4 / RFC 7519 §4 allow "the lexically last"),
#: non-objects, encodings, and what Python's json reads but RFC 8259 does not.
TEXT_EDITS: dict[str, Callable[[str], bytes]] = {
    "as is": lambda t: t.encode(),
    "duplicate iss, bad one first": lambda t: _insert_first(t, '"iss":"https://evil.example"').encode(),
    "duplicate iss, bad one last": lambda t: _insert_last(t, '"iss":"https://evil.example"').encode(),
    "duplicate aud, bad one last": lambda t: _insert_last(t, '"aud":"https://evil.example"').encode(),
    "duplicate exp, expired one last": lambda t: _insert_last(t, f'"exp":{int(T0) - 100}').encode(),
    "duplicate exp, expired one first": lambda t: _insert_first(t, f'"exp":{int(T0) - 100}').encode(),
    "duplicate typ last": lambda t: _insert_last(t, '"typ":"JWT"').encode(),
    "duplicate typ first": lambda t: _insert_first(t, '"typ":"JWT"').encode(),
    "duplicate alg last": lambda t: _insert_last(t, '"alg":"none"').encode(),
    "duplicate kid last": lambda t: _insert_last(t, '"kid":"other"').encode(),
    "utf-8 BOM": lambda t: b"\xef\xbb\xbf" + t.encode(),
    "utf-16": lambda t: t.encode("utf-16"),
    "utf-16-le": lambda t: t.encode("utf-16-le"),
    "utf-32": lambda t: t.encode("utf-32"),
    "invalid utf-8 in a string": lambda t: _insert_last(t, '"x":"\xff"').encode("latin-1"),
    "encoded surrogate (CESU-8)": lambda t: _insert_last(t, '"x":"').encode() + b'\xed\xa0\x80"}',
    "escaped lone surrogate": lambda t: _insert_last(t, '"x":"\\ud800"').encode(),
    "non-ASCII member": lambda t: _insert_last(t, '"x":"\u00e9\u4e2d"').encode(),
    "NaN member": lambda t: _insert_last(t, '"x":NaN').encode(),
    "Infinity member": lambda t: _insert_last(t, '"x":-Infinity').encode(),
    "1e400 member": lambda t: _insert_last(t, '"x":1e400').encode(),
    "5000-digit integer": lambda t: _insert_last(t, '"x":' + "9" * 5000).encode(),
    "deeply nested": lambda t: _insert_last(t, '"x":' + "[" * 3000 + "]" * 3000).encode(),
    "white space around": lambda t: (" \n\t" + t + " \r\n").encode(),
    "trailing garbage": lambda t: (t + "x").encode(),
    "two objects": lambda t: (t + t).encode(),
    "trailing comma": lambda t: (t[:-1] + ",}").encode(),
    "single quotes": lambda t: t.replace('"', "'").encode(),
    "array": lambda t: f"[{t}]".encode(),
    "string": lambda t: json.dumps(t).encode(),
    "number": lambda t: b"1790000000",
    "null": lambda t: b"null",
    "true": lambda t: b"true",
    "empty": lambda t: b"",
    "NUL after": lambda t: t.encode() + b"\x00",
}


@pytest.mark.rfc("7519", "7.2")
@pytest.mark.rfc("7515", "5.2")
@pytest.mark.rfc("8259", "8.1")
@pytest.mark.parametrize("edit", sorted(TEXT_EDITS))
@pytest.mark.parametrize("part", ["payload", "header"])
def test_hand_written_json(setup: Setup, part: str, edit: str) -> None:
    """The JOSE header or the claims as exact octets, validly signed."""
    header, payload = _header_json(setup).encode(), _claims_json(setup).encode()
    if part == "payload":
        payload = TEXT_EDITS[edit](_claims_json(setup))
    else:
        header = TEXT_EDITS[edit](_header_json(setup))
    check(setup, sign_bytes(setup, header, payload), T0 + 100.3)


# ----------------------------------------------------------------------------------- headers

TYPS = [
    "at+jwt",
    "application/at+jwt",
    "AT+JWT",
    "At+Jwt",
    "application/AT+JWT",
    "APPLICATION/at+jwt",
    "JWT",
    "jwt",
    "at+jwt ",
    " at+jwt",
    "at+jwt+x",
    "application/jwt",
    "",
    "text/at+jwt",
    5,
    None,
    ["at+jwt"],
]
HEADER_EXTRAS: list[dict[str, Any]] = [
    {},
    {"cty": "json"},
    {"x5t#S256": "abc"},
    {"foo": {"bar": [1]}},
    {"iss": "x"},
    {"jwk": {"kty": "oct", "k": "AAAA"}},
    {"jku": "https://evil.example/jwks"},
    {"x5u": "https://evil.example/c"},
    {"x5c": ["MIIB"]},
    {"crit": ["exp"]},
    {"crit": ["b64"], "b64": True},
    {"b64": True},
    {"zip": "DEF"},
    {"enc": "A128GCM"},
]


@st.composite
def headers(draw: st.DrawFn, setup: Setup) -> dict[str, Any]:
    header: dict[str, Any] = dict(setup.header)
    typ = draw(st.sampled_from(TYPS))
    header.pop("typ")
    if typ is not None:
        header["typ"] = typ
    kid = draw(st.sampled_from([setup.kid, setup.kid.lower(), setup.kid + " ", "other", "", 5, None]))
    header.pop("kid")
    if kid is not None:
        header["kid"] = kid
    extra: dict[str, Any] = draw(st.sampled_from(HEADER_EXTRAS))
    return header | extra


@pytest.mark.rfc("7515", "4.1")
@pytest.mark.rfc("9068", "4")
@pytest.mark.rfc("7515", "4.1.9")
@EXAMPLES
@given(data=st.data())
def test_headers_are_decided_alike(setup: Setup, data: st.DataObject) -> None:
    """typ, kid and other header parameters, validly signed over valid claims."""
    header = data.draw(headers(setup), label="header")
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    token = sign_bytes(setup, json.dumps(header).encode(), json.dumps(claims).encode())
    event(repr(check(setup, token, T0 + 100.3)).partition(" ")[0])


@pytest.mark.rfc("9068", "4")
@pytest.mark.rfc("7515", "4.1.9")
@pytest.mark.parametrize("typ", TYPS, ids=repr)
def test_every_typ(setup: Setup, typ: Any) -> None:
    header = {k: v for k, v in (setup.header | {"typ": typ}).items() if v is not None}
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    check(setup, sign_bytes(setup, json.dumps(header).encode(), json.dumps(claims).encode()), T0 + 100.3)


# ----------------------------------------------------------------------------------- token text

BAD_CHARACTERS = ["+", "/", "=", " ", "\n", "\t", "!", ".", "\x00", "\u00e9", "%", "*"]
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _pad_variants(segment: str) -> list[str]:
    """The other spellings of a segment's last character: the same data, non-zero pad bits."""
    pad_bits = {2: 4, 3: 2}.get(len(segment) % 4)  # 2 characters carry 1 octet, 3 carry 2
    if pad_bits is None:
        return []
    keep = ALPHABET.index(segment[-1]) >> pad_bits << pad_bits
    return [segment[:-1] + ALPHABET[keep | low] for low in range(1, 2**pad_bits)]


@st.composite
def mutations(draw: st.DrawFn, token: str, alg: str) -> str:
    parts = token.split(".")
    kind = draw(
        st.sampled_from(
            [
                "insert",
                "replace",
                "delete",
                "pad",
                "flip bit",
                "truncate signature",
                "signature pad bits",
                "other ECDSA spelling",
                "extra segment",
                "missing segment",
                "white space",
                "swap segments",
                "none",
            ]
        )
    )
    index = draw(st.integers(0, 2))
    segment = parts[index]
    if kind == "insert":
        at_ = draw(st.integers(0, len(token)))
        return token[:at_] + draw(st.sampled_from(BAD_CHARACTERS)) + token[at_:]
    if kind == "replace":
        at_ = draw(st.integers(0, len(segment) - 1))
        parts[index] = segment[:at_] + draw(st.sampled_from(ALPHABET)) + segment[at_ + 1 :]
    elif kind == "delete":
        at_ = draw(st.integers(0, len(segment) - 1))
        parts[index] = segment[:at_] + segment[at_ + 1 :]
    elif kind == "pad":
        parts[index] = segment + "=" * draw(st.integers(1, 3))
    elif kind == "flip bit":
        data = bytearray(b64d(segment))
        bit = draw(st.integers(0, len(data) * 8 - 1))
        data[bit // 8] ^= 1 << (bit % 8)
        parts[index] = b64e(bytes(data))
    elif kind == "truncate signature":
        parts[2] = parts[2][: draw(st.integers(0, len(parts[2]) - 1))]
    elif kind == "signature pad bits":
        parts[2] = draw(st.sampled_from(_pad_variants(parts[2]) or [parts[2]]))
    elif kind == "other ECDSA spelling" and alg == "ES256":
        signature = b64d(parts[2])
        s = int.from_bytes(signature[32:], "big")
        parts[2] = b64e(signature[:32] + (ES256_ORDER - s).to_bytes(32, "big"))
    elif kind == "extra segment":
        parts.insert(draw(st.integers(0, 3)), draw(st.sampled_from(["", "e30", parts[index]])))
    elif kind == "missing segment":
        del parts[index]
    elif kind == "white space":
        return draw(st.sampled_from([" ", "\n", "\t", "\r\n"])).join(
            ["", token] if draw(st.booleans()) else [token, ""]
        )
    elif kind == "swap segments":
        parts[0], parts[1] = parts[1], parts[0]
    return ".".join(parts)


@pytest.mark.rfc("7515", "5.2")
@pytest.mark.rfc("7515", "7.1")
@pytest.mark.rfc("7518", "3.4")
@settings(EXAMPLES, max_examples=200)
@given(data=st.data())
def test_token_text_mutations(setup: Setup, data: st.DataObject) -> None:
    """A validly signed token, one edit to its text: bad characters, padding, flipped bits, segments."""
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    token = sign_claims(setup, claims, setup.header, data.draw(SIGNERS, label="signer"))
    mutated = data.draw(mutations(token, setup.alg), label="mutated")
    event(repr(check(setup, mutated, T0 + 100.3)).partition(" ")[0])


@pytest.mark.rfc("7518", "3.4")
def test_both_ecdsa_spellings(setups: dict[str, Setup]) -> None:
    """The low-S token is accepted by all three; its high-S twin by the libraries only (the rule)."""
    setup = setups["ES256"]
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    token = sign_claims(setup, claims, setup.header, "embedauth")
    header_segment, payload_segment, signature_segment = token.split(".")
    signature = b64d(signature_segment)
    s = int.from_bytes(signature[32:], "big")
    twin = (
        f"{header_segment}.{payload_segment}.{b64e(signature[:32] + (ES256_ORDER - s).to_bytes(32, 'big'))}"
    )
    assert check(setup, token, T0 + 1.5).accepted
    assert not check(setup, twin, T0 + 1.5).accepted
    assert pyjwt_decision(setup, twin, T0 + 1.5).why == "high_s_ecdsa"


@pytest.mark.rfc("7515", "2")
@pytest.mark.rfc("4648", "3.5")
@pytest.mark.parametrize("part", [0, 1])
def test_pad_bits_of_header_and_payload(setup: Setup, part: int) -> None:
    """A header or payload segment spelled with non-zero pad bits, signed over that spelling.

    Both libraries refuse it (RFC 4648 §3.5 lets a decoder); embedauth decodes it, the signature
    covering the text, so that no one but the key holder can write such a token. Correction
    ``pad_bits_of_signed_segments``: both refusals are asserted here, and embedauth's decision must
    be the libraries' decision on the canonical spelling of the same octets.
    """
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600, "x": "ab"}
    segments_ = [b64e(json.dumps(setup.header).encode()), b64e(json.dumps(claims).encode())]
    for extra in ("", " ", "  "):  # one of these lengths leaves pad bits
        if _pad_variants(segments_[part] + ""):
            break
        data = b64d(segments_[part])
        segments_[part] = (
            b64e(data[:-1] + extra.encode() + data[-1:])
            if part == 0
            else b64e(json.dumps(claims | {"x": "ab" + extra}).encode())
        )
    variants = _pad_variants(segments_[part])
    assert variants
    canonical = sign_text(setup, *segments_)
    expected = check(setup, canonical, T0 + 100.3)
    assert expected.accepted
    for variant in variants:
        spelled = list(segments_)
        spelled[part] = variant
        token = sign_text(setup, *spelled)
        assert not pyjwt_decision(setup, token, T0 + 100.3).accepted
        assert not joserfc_decision(setup, token, T0 + 100.3).accepted
        at(setup, T0 + 100.3)
        assert same(embedauth_decision(setup, token), expected), variant


# ----------------------------------------------------------------------------------- forgeries


def _forgeries(setup: Setup) -> dict[str, str]:
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    body = b64e(json.dumps(claims).encode())

    def hs256(key: bytes, header: Mapping[str, Any]) -> str:
        import hashlib
        import hmac

        head = b64e(json.dumps(header).encode())
        mac = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64e(mac)}"

    jwk_json = json.dumps(setup.auth.jwks()["keys"][0]).encode()
    other_alg = "RS256" if setup.alg != "RS256" else "ES256"
    real = sign_text(setup, b64e(json.dumps(setup.header).encode()), body)
    signature = real.split(".")[2]
    relabel = b64e(json.dumps(setup.header | {"alg": other_alg}).encode())
    return {
        "alg none, no signature": f"{b64e(json.dumps(setup.header | {'alg': 'none'}).encode())}.{body}.",
        "alg none, real signature": f"{b64e(json.dumps(setup.header | {'alg': 'none'}).encode())}.{body}.{signature}",
        "alg None": f"{b64e(json.dumps(setup.header | {'alg': 'None'}).encode())}.{body}.{signature}",
        "HS256 keyed with the PEM": hs256(setup.public_pem, setup.header | {"alg": "HS256"}),
        "HS256 keyed with the JWK": hs256(jwk_json, setup.header | {"alg": "HS256"}),
        f"relabelled {other_alg}": f"{relabel}.{body}.{signature}",
        "alg missing": f"{b64e(json.dumps({'typ': 'at+jwt', 'kid': setup.kid}).encode())}.{body}.{signature}",
        "alg not a string": f"{b64e(json.dumps(setup.header | {'alg': [setup.alg]}).encode())}.{body}.{signature}",
        "real": real,
    }


@pytest.mark.rfc("8725", "2.1")
@pytest.mark.rfc("8725", "3.1")
@pytest.mark.parametrize(
    "name",
    [
        "alg none, no signature",
        "alg none, real signature",
        "alg None",
        "HS256 keyed with the PEM",
        "HS256 keyed with the JWK",
        "relabelled",
        "alg missing",
        "alg not a string",
        "real",
    ],
)
def test_algorithm_forgeries(setup: Setup, name: str) -> None:
    forgeries = _forgeries(setup)
    (token,) = [t for n, t in forgeries.items() if n.startswith(name)]
    assert check(setup, token, T0 + 100.3).accepted == (name == "real")


@pytest.mark.rfc("7519", "7.2")
def test_size_limit_and_revocation(setup: Setup) -> None:
    claims = setup.claims | {"iat": int(T0), "nbf": int(T0), "exp": int(T0) + 3600}
    for size in range(5900, 6300, 20):  # tokens around max_token_bytes (8192) in length
        token = sign_claims(setup, claims | {"x": "a" * size}, setup.header, "embedauth")
        decision = check(setup, token, T0 + 100.3)
        assert decision.accepted == (len(token) <= setup.max_bytes)
    assert not check(
        setup, sign_claims(setup, claims | {"jti": setup.revoked_jti}, setup.header, "embedauth"), T0 + 100.3
    ).accepted

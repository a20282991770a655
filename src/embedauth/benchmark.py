"""``embedauth bench``: what verifying and issuing a token costs here, against a floor and the peers.

Two measurements, for each of RS256, ES256 and EdDSA, on memory:// instances of its own:

* **verification** of the same tokens by ``floor`` (the least a correct verifier can do with
  ``cryptography``: split, decode, check the signature, parse the claims, compare ``iss``, ``aud``
  and ``exp``; no header policy, no revocation), ``embedauth first-seen`` (:meth:`EmbedAuth.verify
  <embedauth.EmbedAuth.verify>` on tokens it has not seen: a fresh instance each round),
  ``embedauth cached`` (the same tokens again), ``PyJWT`` (``jwt.decode`` with the key, algorithm,
  audience and issuer), ``joserfc`` (``jwt.decode`` and ``JWTClaimsRegistry.validate``) and
  ``Authlib`` (``JsonWebToken([alg]).decode`` and ``claims.validate()`` with the issuer and
  audience);
* **issuing** (``client_credentials``, a client that has authenticated before: its registration
  and verified secret cached) by ``floor`` (a bare ``cryptography`` signature of the same claims
  JSON, the header encoded once), ``PyJWT`` (``jwt.encode`` of the same claims), ``embedauth
  client_credentials`` (:meth:`Tokens.client_credentials
  <embedauth.tokens.issuer.Tokens.client_credentials>`) and ``embedauth endpoint`` (the whole
  framework-free ``POST /oauth/token``: form parsing, HTTP Basic, the grant, the JSON response).

The method: interleaved rounds. In each round every contender runs over its batch, in an order
rotated each round, so that a slow moment of a shared machine falls on all of them; a ratio is
computed within each round, and the figures are the medians over rounds (of microseconds per
operation, and of the per-round ratios). :func:`run` returns a :class:`BenchResult`, which renders
as Markdown (:meth:`BenchResult.markdown`) or JSON (:meth:`BenchResult.to_json`).

Needs the ``bench`` extra (joserfc, Authlib, tqdm): ``pip install 'embedauth[bench]'``.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import cryptography
import jwt as pyjwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from embedauth import __version__
from embedauth.core import EmbedAuth
from embedauth.errors import ConfigurationError
from embedauth.http.messages import FORM_CONTENT_TYPE, Request, parse_form
from embedauth.http.oauth import OAuthEndpoints

__all__ = [
    "ALGORITHMS",
    "DEFAULT",
    "QUICK",
    "AlgorithmResult",
    "BenchResult",
    "Machine",
    "Measured",
    "Preset",
    "Progress",
    "Target",
    "missing_extra",
    "progress_bar",
    "run",
]

#: The algorithms measured, in this order.
ALGORITHMS = ("RS256", "ES256", "EdDSA")
ISSUER = "https://api.example.com"
_EXTRA = "pip install 'embedauth[bench]'"

Progress = Callable[[int, int, str], None]
"""``progress(done, total, label)``: called after each round of each measurement."""


@dataclass(frozen=True, slots=True)
class Preset:
    """How long a run is: the rounds, and each contender's batch per round."""

    rounds: int
    verify_batch: int
    """Tokens each verifier checks in a round (the same tokens for all)."""
    issue_batch: int
    """Tokens each issuer signs in a round."""


#: A few seconds: to see that it runs, or a rough figure.
QUICK = Preset(rounds=5, verify_batch=100, issue_batch=40)
#: About half a minute on two cores: the figures to quote.
DEFAULT = Preset(rounds=20, verify_batch=600, issue_batch=200)


# ---------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Machine:
    """Where the figures come from."""

    cpu: str
    cores: int
    python: str
    cryptography: str
    openssl: str
    embedauth: str
    peers: dict[str, str]
    """The peer libraries' versions: PyJWT, joserfc, Authlib."""

    @classmethod
    def current(cls) -> Machine:
        """This machine, this interpreter and the libraries it imports."""
        try:
            from cryptography.hazmat.backends.openssl.backend import backend

            openssl = str(backend.openssl_version_text())
        except ImportError:  # another backend layout: the version is still cryptography's
            openssl = "OpenSSL version unknown"
        peers = {"PyJWT": pyjwt.__version__}
        for name, module in (("joserfc", "joserfc"), ("Authlib", "authlib")):
            with contextlib.suppress(ImportError):
                peers[name] = str(getattr(importlib.import_module(module), "__version__", "?"))
        return cls(
            cpu=_cpu_model(),
            cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
            python=f"{platform.python_implementation()} {platform.python_version()}",
            cryptography=cryptography.__version__,
            openssl=openssl,
            embedauth=__version__,
            peers=peers,
        )

    def to_json(self) -> dict[str, Any]:
        """The machine as a JSON object."""
        return {
            "cpu": self.cpu,
            "cores": self.cores,
            "python": self.python,
            "cryptography": self.cryptography,
            "openssl": self.openssl,
            "embedauth": self.embedauth,
            "peers": dict(self.peers),
        }


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            name, _, value = line.partition(":")
            if name.strip() in {"model name", "Hardware", "Processor"} and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


@dataclass(frozen=True, slots=True)
class Measured:
    """One contender on one algorithm: microseconds per operation over the rounds."""

    key: str
    """Its name in the JSON (``floor``, ``embedauth_first_seen``, ``pyjwt``…)."""
    label: str
    """Its name in the table."""
    us_per_op: float
    """The median over rounds."""
    quartiles_us: tuple[float, float]
    """The first and third quartiles over rounds: the spread of the middle half."""
    vs_floor: float
    """The median of the per-round ratios to the floor (1.0 for the floor itself)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One of DESIGN.md's numbers to reach, against a measured ratio."""

    ratio: str
    """The ratio's key in :attr:`AlgorithmResult.ratios`."""
    label: str
    """How the table names the ratio (``first/floor``)."""
    at_most: float | None
    at_least: float | None
    value: float

    @property
    def met(self) -> bool:
        """Whether the value is within the bound (``more than 1x`` is a strict bound)."""
        if self.at_most is not None:
            return self.value <= self.at_most
        assert self.at_least is not None
        return self.value > self.at_least if self.at_least == 1.0 else self.value >= self.at_least

    @property
    def bound(self) -> str:
        """The target as text: ``<= 1.15x``, ``> 1x``, ``>= 20x``."""
        if self.at_most is not None:
            return f"<= {self.at_most:g}x"
        return f"> {self.at_least:g}x" if self.at_least == 1.0 else f">= {self.at_least:g}x"

    def to_json(self) -> dict[str, Any]:
        """The target, its value and whether it is met, as a JSON object."""
        return {
            "ratio": self.ratio,
            "label": self.label,
            "target": self.bound,
            "value": round(self.value, 3),
            "met": self.met,
        }


@dataclass(frozen=True, slots=True)
class AlgorithmResult:
    """One measurement (verification or issuing) of one algorithm: every contender, the ratios."""

    alg: str
    contenders: list[Measured]
    ratios: dict[str, float]
    """``"a/b"`` (contender keys): the median over rounds of a's time divided by b's."""
    targets: list[Target] = field(default_factory=list)

    @property
    def met(self) -> bool:
        """Whether every target is met."""
        return all(target.met for target in self.targets)

    def contender(self, key: str) -> Measured:
        """The contender of that key."""
        return next(c for c in self.contenders if c.key == key)

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object (microseconds rounded to 0.01, ratios to 0.001)."""
        body: dict[str, Any] = {
            "us_per_op": {c.key: round(c.us_per_op, 2) for c in self.contenders},
            "quartiles_us": {c.key: [round(q, 2) for q in c.quartiles_us] for c in self.contenders},
            "vs_floor": {c.key: round(c.vs_floor, 3) for c in self.contenders},
            "ratios": {name: round(value, 3) for name, value in self.ratios.items()},
        }
        if self.targets:
            body["targets"] = [target.to_json() for target in self.targets]
            body["met"] = self.met
        return body


@dataclass(frozen=True, slots=True)
class BenchResult:
    """A whole run: where, when, how long, and both measurements for each algorithm."""

    machine: Machine
    date: datetime
    preset: Preset
    seconds: float
    verify: list[AlgorithmResult]
    issue: list[AlgorithmResult]

    def to_json(self) -> dict[str, Any]:
        """The run as one JSON object (the shape ``embedauth bench --json`` prints)."""
        return {
            "benchmark": "embedauth bench",
            "date": self.date.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "machine": self.machine.to_json(),
            "rounds": self.preset.rounds,
            "verify_batch": self.preset.verify_batch,
            "issue_batch": self.preset.issue_batch,
            "seconds": round(self.seconds, 1),
            "method": "interleaved rounds, order rotated each round; medians over rounds of "
            "microseconds per operation and of per-round ratios",
            "contenders": {
                "verify": {c.key: c.label for c in self.verify[0].contenders} if self.verify else {},
                "issue": {c.key: c.label for c in self.issue[0].contenders} if self.issue else {},
            },
            "verify": {r.alg: r.to_json() for r in self.verify},
            "issue": {r.alg: r.to_json() for r in self.issue},
        }

    def markdown(self) -> str:
        """The run as Markdown: the header lines, then one table per measurement."""
        m = self.machine
        peers = ", ".join(f"{name} {version}" for name, version in m.peers.items())
        lines = [
            f"embedauth bench: {m.cpu}, {m.cores} core{'s' if m.cores != 1 else ''}; {m.python}; "
            f"cryptography {m.cryptography} ({m.openssl}); embedauth {m.embedauth}; {peers}",
            f"{self.date.isoformat(timespec='seconds').replace('+00:00', 'Z')}: {self.preset.rounds} "
            f"interleaved round{'s' if self.preset.rounds != 1 else ''} (order rotated each round) of {self.preset.verify_batch} tokens per "
            f"verifier and {self.preset.issue_batch} per issuer; medians over rounds, ratios are "
            f"medians of per-round ratios; {self.seconds:.0f} s",
        ]
        if self.verify:
            lines += ["", "Verification, microseconds per token:", "", *_verify_table(self.verify)]
        if self.issue:
            lines += [
                "",
                "Issuing (client_credentials, a client seen before), microseconds per token:",
                "",
                *_issue_table(self.issue),
            ]
        return "\n".join(lines)


def _us(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _times(value: float) -> str:
    return f"{value:.0f}x" if value >= 10 else f"{value:.2f}x"


def _verify_table(results: Sequence[AlgorithmResult]) -> list[str]:
    keys = [c.key for c in results[0].contenders]
    labels = [c.label for c in results[0].contenders]
    targets = [f"{t.label} {t.bound}" for t in results[0].targets]
    header = ["alg", *labels, *targets, "met"]
    rows = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in results:
        missed = [t.label for t in r.targets if not t.met]
        cells = [
            r.alg,
            *(_us(r.contender(k).us_per_op) for k in keys),
            *(_times(t.value) for t in r.targets),
            "yes" if not missed else "no: " + ", ".join(missed),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _issue_table(results: Sequence[AlgorithmResult]) -> list[str]:
    keys = [c.key for c in results[0].contenders]
    labels = [c.label for c in results[0].contenders]
    ratios = list(results[0].ratios)
    header = ["alg", *labels, *(_ratio_label(name) for name in ratios)]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [
            r.alg,
            *(_us(r.contender(k).us_per_op) for k in keys),
            *(_times(r.ratios[n]) for n in ratios),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


_SHORT = {
    "floor": "floor",
    "pyjwt": "PyJWT",
    "joserfc": "joserfc",
    "authlib": "Authlib",
    "embedauth_first_seen": "first",
    "embedauth_cached": "cached",
    "embedauth_client_credentials": "client_credentials",
    "embedauth_endpoint": "endpoint",
}


def _ratio_label(name: str) -> str:
    a, b = name.split("/")
    return f"{_SHORT.get(a, a)}/{_SHORT.get(b, b)}"


# ---------------------------------------------------------------------- the peers


def _peers() -> tuple[ModuleType, ModuleType, ModuleType]:
    """joserfc's ``jwt`` and ``jwk`` modules and ``authlib.jose``, or the extra to install."""
    try:
        with warnings.catch_warnings(record=True):  # authlib.jose says it is deprecated, for joserfc
            warnings.simplefilter("ignore")
            jose_jwt = importlib.import_module("joserfc.jwt")
            jose_jwk = importlib.import_module("joserfc.jwk")
            authlib_jose = importlib.import_module("authlib.jose")
    except ImportError as exc:
        raise ConfigurationError(
            f"embedauth bench measures against joserfc and Authlib, and {exc.name} is not installed: {_EXTRA}"
        ) from None
    return jose_jwt, jose_jwk, authlib_jose


def missing_extra() -> str | None:
    """The first module of the ``bench`` extra that does not import here, or None when all do."""
    for module in ("joserfc.jwt", "authlib.jose", "tqdm"):
        try:
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("ignore")
                importlib.import_module(module)
        except ImportError:
            return module.split(".")[0]
    return None


def _tqdm() -> Any:
    try:
        return importlib.import_module("tqdm").tqdm
    except ImportError:
        raise ConfigurationError(f"embedauth bench shows its progress with tqdm: {_EXTRA}") from None


@contextlib.contextmanager
def progress_bar(enabled: bool | None = None) -> Iterator[Progress | None]:
    """A tqdm progress bar on stderr, as a :data:`Progress` callback; closed on exit.

    ``enabled=None`` shows it only when stderr is a terminal (so a log or a pipe gets no bar);
    False yields None (no progress).
    """
    if enabled is False:
        yield None
        return
    tqdm = _tqdm()
    bar: Any = None

    def advance(done: int, total: int, label: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, file=sys.stderr, disable=None if enabled is None else False, unit="round")
        bar.set_description(label, refresh=done == bar.n)  # else the update below redraws it
        if done > bar.n:
            bar.update(done - bar.n)

    try:
        yield advance
    finally:
        if bar is not None:
            bar.close()


# ---------------------------------------------------------------------- the contenders


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def floor_verifier(alg: str, key: Any) -> Callable[[str], dict[str, Any]]:
    """The hand-written minimum on ``cryptography``: signature, then ``iss``, ``aud``, ``exp``."""
    if alg == "RS256":

        def check(sig: bytes, data: bytes) -> None:
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())

    elif alg == "ES256":

        def check(sig: bytes, data: bytes) -> None:
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))

    else:

        def check(sig: bytes, data: bytes) -> None:
            key.verify(sig, data)

    def verify(token: str) -> dict[str, Any]:
        header, payload, signature = token.split(".")
        try:
            check(_b64decode(signature), f"{header}.{payload}".encode())
        except InvalidSignature:
            raise ValueError("bad signature") from None
        claims: dict[str, Any] = json.loads(_b64decode(payload))
        if claims["iss"] != ISSUER or claims["aud"] != ISSUER or claims["exp"] <= time.time():
            raise ValueError("bad claims")
        return claims

    return verify


def floor_signer(alg: str, key: Any, kid: str) -> Callable[[dict[str, Any]], str]:
    """The hand-written minimum on ``cryptography``: the claims JSON signed under a header encoded once."""
    header = json.dumps({"alg": alg, "kid": kid, "typ": "at+jwt"}, separators=(",", ":"), sort_keys=True)
    prefix = _b64encode(header.encode()) + "."
    if alg == "RS256":

        def signature(data: bytes) -> bytes:
            return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))

    elif alg == "ES256":

        def signature(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    else:

        def signature(data: bytes) -> bytes:
            return bytes(key.sign(data))

    def sign(claims: dict[str, Any]) -> str:
        signing_input = prefix + _b64encode(json.dumps(claims, separators=(",", ":")).encode())
        return f"{signing_input}.{_b64encode(signature(signing_input.encode()))}"

    return sign


@dataclass(frozen=True, slots=True)
class _Contender:
    key: str
    label: str
    batch: Callable[[int], Callable[[], object]]
    """``batch(round)``: the round's work, ready to run and time (set up outside the timing)."""
    done: Callable[[], None] = lambda: None
    """Called after each round (to close what the round set up)."""


def _time(work: Callable[[], object], operations: int) -> float:
    """Microseconds per operation of one run of ``work``, with the garbage collector held off."""
    gc.disable()
    try:
        start = time.perf_counter()
        work()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / operations * 1e6


def _rounds(
    contenders: Sequence[_Contender],
    operations: int,
    rounds: int,
    on_round: Callable[[int], None],
) -> dict[str, list[float]]:
    """Each contender's microseconds per operation in each round, the order rotated each round."""
    times: dict[str, list[float]] = {c.key: [] for c in contenders}
    gc.collect()
    gc.freeze()  # what the setup made stays out of the collections between batches
    try:
        for number in range(rounds):
            gc.collect()  # once a round, untimed; each batch then runs with the collector held off
            shift = number % len(contenders)
            for contender in (*contenders[shift:], *contenders[:shift]):
                work = contender.batch(number)
                try:
                    times[contender.key].append(_time(work, operations))
                finally:
                    contender.done()
            on_round(number + 1)
    finally:
        gc.unfreeze()
    return times


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def _summary(
    alg: str,
    contenders: Sequence[_Contender],
    times: dict[str, list[float]],
    ratios: Sequence[tuple[str, str]],
    targets: Sequence[tuple[str, str, float | None, float | None]] = (),
) -> AlgorithmResult:
    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))

    measured = [
        Measured(
            key=c.key,
            label=c.label,
            us_per_op=statistics.median(times[c.key]),
            quartiles_us=_quartiles(times[c.key]),
            vs_floor=ratio(c.key, "floor"),
        )
        for c in contenders
    ]
    values = {f"{a}/{b}": ratio(a, b) for a, b in ratios}
    return AlgorithmResult(
        alg,
        measured,
        values,
        [Target(name, label, at_most, at_least, values[name]) for name, label, at_most, at_least in targets],
    )


_VERIFY_RATIOS = (
    ("embedauth_first_seen", "floor"),
    ("pyjwt", "embedauth_first_seen"),
    ("joserfc", "embedauth_first_seen"),
    ("authlib", "embedauth_first_seen"),
    ("pyjwt", "embedauth_cached"),
)
#: DESIGN.md's numbers to reach: (ratio, label, at most, more than / at least).
_VERIFY_TARGETS: tuple[tuple[str, str, float | None, float | None], ...] = (
    ("embedauth_first_seen/floor", "first/floor", 1.15, None),
    ("pyjwt/embedauth_first_seen", "PyJWT/first", None, 1.0),
    ("joserfc/embedauth_first_seen", "joserfc/first", None, 1.0),
    ("authlib/embedauth_first_seen", "Authlib/first", None, 1.0),
    ("pyjwt/embedauth_cached", "PyJWT/cached", None, 20.0),
)
_ISSUE_RATIOS = (
    ("embedauth_client_credentials", "floor"),
    ("embedauth_endpoint", "floor"),
    ("pyjwt", "embedauth_endpoint"),
)


def _instance(alg: str) -> EmbedAuth:
    return EmbedAuth("memory://", issuer=ISSUER, signing_algorithm=alg)


def _measure_verify(
    auth: EmbedAuth, alg: str, preset: Preset, on_round: Callable[[int], None]
) -> AlgorithmResult:
    jose_jwt, jose_jwk, authlib_jose = _peers()
    created = auth.registrations.create(tenant="bench", name="bench verify")
    tokens = [
        auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
        for _ in range(preset.verify_batch)
    ]
    jwk = auth.jwks()["keys"][0]
    public_key = pyjwt.PyJWK(jwk).key
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    jose_keys = jose_jwk.KeySet.import_key_set({"keys": [jwk]})
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": ISSUER}
    )
    authlib_key = authlib_jose.JsonWebKey.import_key(jwk)
    authlib_jwt = authlib_jose.JsonWebToken([alg])
    authlib_options = {
        "iss": {"essential": True, "value": ISSUER},
        "aud": {"essential": True, "value": ISSUER},
    }

    def with_pyjwt(token: str) -> object:
        return pyjwt.decode(token, public_key, algorithms=[alg], audience=ISSUER, issuer=ISSUER)

    def with_joserfc(token: str) -> object:
        decoded = jose_jwt.decode(token, jose_keys, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded

    def with_authlib(token: str) -> object:
        claims = authlib_jwt.decode(token, authlib_key, claims_options=authlib_options)
        claims.validate()
        return claims

    floor = floor_verifier(alg, public_key)
    for token in tokens:  # every verifier accepts every token; embedauth's cache holds them all now
        for check in (floor, with_pyjwt, with_joserfc, with_authlib, auth.verify):
            check(token)

    def over(verify: Callable[[str], object]) -> Callable[[int], Callable[[], object]]:
        def work() -> None:
            for token in tokens:
                verify(token)

        return lambda _round: work

    fresh: list[EmbedAuth] = []

    def first_seen(_round: int) -> Callable[[], object]:
        # An empty cache over the same keys; argon2 made cheap, as it is only set up, never used.
        instance = auth.with_settings(argon2_memory_kib=256, argon2_time_cost=1)
        instance.prepare()  # keys and revocation state loaded outside the timing
        fresh.append(instance)
        return over(instance.verify)(_round)

    def close_fresh() -> None:
        while fresh:
            fresh.pop().close()

    contenders = [
        _Contender("floor", "floor", over(floor)),
        _Contender("embedauth_first_seen", "embedauth first-seen", first_seen, close_fresh),
        _Contender("embedauth_cached", "embedauth cached", over(auth.verify)),
        _Contender("pyjwt", "PyJWT", over(with_pyjwt)),
        _Contender("joserfc", "joserfc", over(with_joserfc)),
        _Contender("authlib", "Authlib", over(with_authlib)),
    ]
    times = _rounds(contenders, len(tokens), preset.rounds, on_round)
    return _summary(alg, contenders, times, _VERIFY_RATIOS, _VERIFY_TARGETS)


def _measure_issue(
    auth: EmbedAuth, alg: str, preset: Preset, on_round: Callable[[int], None]
) -> AlgorithmResult:
    created = auth.registrations.create(tenant="bench", name="bench issue")
    client_id, secret = created.client_id, created.client_secret
    first = auth.tokens.client_credentials(client_id, secret)  # argon2 once; cached from now on
    claims: dict[str, Any] = json.loads(_b64decode(first.access_token.split(".")[1]))
    loaded, private_key = auth.keys.signing_key()
    floor = floor_signer(alg, private_key, loaded.kid)
    headers = {"kid": loaded.kid, "typ": "at+jwt"}
    endpoints = OAuthEndpoints(auth)
    token_url = f"{ISSUER}/oauth/token"
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
    request_headers = {"authorization": basic, "content-type": FORM_CONTENT_TYPE}
    body = b"grant_type=client_credentials"

    def with_pyjwt() -> str:
        return pyjwt.encode(claims, private_key, algorithm=alg, headers=headers)

    def through_endpoint() -> object:
        form = parse_form(body, request_headers["content-type"])
        response = endpoints.token(Request("POST", token_url, request_headers, form=form))
        assert response.status == 200, response
        return response

    def with_client_credentials() -> object:
        return auth.tokens.client_credentials(client_id, secret)

    public_key = pyjwt.PyJWK(auth.jwks()["keys"][0]).key
    for token in (floor(claims), with_pyjwt()):  # both sign what the public key verifies
        pyjwt.decode(token, public_key, algorithms=[alg], audience=ISSUER, issuer=ISSUER)
    through_endpoint()

    def repeat(sign: Callable[[], object]) -> Callable[[int], Callable[[], object]]:
        def work() -> None:
            for _ in range(preset.issue_batch):
                sign()

        return lambda _round: work

    contenders = [
        _Contender("floor", "floor", repeat(lambda: floor(claims))),
        _Contender("pyjwt", "PyJWT", repeat(with_pyjwt)),
        _Contender(
            "embedauth_client_credentials", "embedauth client_credentials", repeat(with_client_credentials)
        ),
        _Contender("embedauth_endpoint", "embedauth endpoint", repeat(through_endpoint)),
    ]
    times = _rounds(contenders, preset.issue_batch, preset.rounds, on_round)
    return _summary(alg, contenders, times, _ISSUE_RATIOS)


def run(
    preset: Preset = DEFAULT,
    *,
    algorithms: Sequence[str] = ALGORITHMS,
    progress: Progress | None = None,
) -> BenchResult:
    """Measure verification and issuing for each algorithm (each on a memory:// instance of its
    own); ``progress`` is told after every round. Raises :class:`~embedauth.errors.ConfigurationError`
    when the ``bench`` extra is missing or an algorithm is unknown."""
    unknown = [alg for alg in algorithms if alg not in ALGORITHMS]
    if unknown:
        raise ConfigurationError(
            f"embedauth bench measures {', '.join(ALGORITHMS)}, not {', '.join(unknown)}"
        )
    if preset.rounds < 1 or preset.verify_batch < 1 or preset.issue_batch < 1:
        raise ConfigurationError("embedauth bench needs at least one round and one token per batch")
    _peers()
    started = time.perf_counter()
    date = datetime.now(UTC)
    total = 2 * preset.rounds * len(algorithms)
    done = 0

    def step(label: str) -> Callable[[int], None]:
        def on_round(number: int) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, total, f"{label} {number}/{preset.rounds}")

        return on_round

    verify: list[AlgorithmResult] = []
    issue: list[AlgorithmResult] = []
    with warnings.catch_warnings():
        # joserfc 1.8 warns on every EdDSA token that RFC 9864 deprecates the name (for Ed25519);
        # the tokens say EdDSA, as every other library expects, and the check stays in its time.
        warnings.filterwarnings("ignore", message="EdDSA is deprecated")
        for alg in algorithms:
            if progress is not None:
                progress(done, total, f"{alg} setting up")
            with _instance(alg) as auth:
                verify.append(_measure_verify(auth, alg, preset, step(f"{alg} verify")))
                issue.append(_measure_issue(auth, alg, preset, step(f"{alg} issue")))
    return BenchResult(Machine.current(), date, preset, time.perf_counter() - started, verify, issue)

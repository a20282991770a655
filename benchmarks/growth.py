"""Growth: verification and the token endpoint stay flat as the stores grow.

Two targets, both as the median over interleaved rounds of the per-round ratio against the
smallest configuration (every configuration measured in every round, the order reversed every
other round, so that drift touches them alike):

* **verify flat ±10%** (0.90-1.10): the first-seen cost of ``EmbedAuth.verify`` (fresh tokens every
  round, each verified once: no token cache hit) with the revocation state holding 0 / 10,000 /
  100,000 live entries (a third each: single access tokens of other clients, 50 per client;
  registration generations; credentials; written through ``auth.revocations.revoke(entry(...))``
  then ``sync()``), with 0 / 100,000 registrations in storage, and with both at their largest.
  One ``memory://`` instance per configuration (its own key, its own state), all in this process.
* **token endpoint flat ±20%** (0.80-1.20): in-process ``auth.tokens.client_credentials`` on
  PostgreSQL and Redis stores of 1,000 and 1,000,000 registrations, seeded straight into storage
  (``benchmarks._seed``: the backend's own rows and keys, ``COPY`` / pipelines, one shared argon2
  hash except the working set's), for clients drawn at random from a working set drawn at random
  from the seeded set. Two modes: *steady* (registration view and verified-secret cache warm: no
  storage read) and *view off* (``registration_cache_size=0``: every request reads its registration
  from storage; the secret cache still warm). Ratio against the 1,000-registration store.

After each timed block its instance writes what it holds behind (``auth.flush()``: audit records,
last uses), outside the timing, so that one case's background writes do not land in the next
case's time (in the token endpoint's figures, that write is left out for every size alike).

argon2id runs at t=1, m=256 KiB (the bench setting, stated in the output): only the working set's
first requests hash, and the token endpoint's steady state hashes nothing.

Run: ``python -m benchmarks.growth`` (``--quick`` for a seconds-long smoke run; ``--sizes``,
``--revocations``, ``--registrations``, ``--rounds``, ``--backends`` override; ``--json PATH``
writes the figures). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.services import unreachable

from benchmarks import _seed
from embedauth import EmbedAuth
from embedauth.credentials.secrets import new_id
from embedauth.models import RevocationKind
from embedauth.tokens.keys import new_key_encryption_key

ISSUER = "https://api.example.com"
VERIFY_TARGET = (0.90, 1.10)
ENDPOINT_TARGET = (0.80, 1.20)
TOKENS_PER_CLIENT = 50  # single-token revocations per other client (the coalescing limit is 100)


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


@dataclass
class Case:
    """One configuration: what it is, how to run one round of it, and its per-round figures."""

    measure: str
    backend: str
    size: str
    run: Callable[[], float]  # one round: microseconds per call
    baseline: Case | None = None
    target: tuple[float, float] = VERIFY_TARGET
    samples: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        base = self.baseline or self
        return [mine / theirs for mine, theirs in zip(self.samples, base.samples, strict=True)]


def interleave(cases: Sequence[Case], rounds: int) -> None:
    """Every case once per round, the order reversed every other round (after one uncounted round)."""
    for case in cases:
        case.run()
    for index in range(rounds):
        for case in cases if index % 2 == 0 else list(reversed(cases)):
            case.samples.append(case.run())


# ---------------------------------------------------------------------------- verify


def _verify_instance(revocations: int, registrations: int) -> tuple[EmbedAuth, str, str, int]:
    """A memory:// instance with that many revocation entries and stored registrations."""
    auth = EmbedAuth("memory://", issuer=ISSUER, **_seed.ARGON2)
    auth.permissions.add(_seed.SCOPE)
    created = auth.registrations.create(tenant=_seed.TENANT, name="bench", scopes=[_seed.SCOPE])
    if registrations:
        _seed.seed_registrations(auth.storage, registrations, working=0)
    state = auth.revocations
    kinds = (RevocationKind.ACCESS_TOKEN, RevocationKind.REGISTRATION, RevocationKind.CREDENTIAL)
    other_client = new_id()
    now = int(time.time())
    for index in range(revocations):
        kind = kinds[index % 3]
        if kind is RevocationKind.ACCESS_TOKEN:
            if (index // 3) % TOKENS_PER_CLIENT == 0:
                other_client = f"other-{new_id()}"
            entry = state.entry(kind, new_id(), client_id=other_client, issued_at=now)
        elif kind is RevocationKind.REGISTRATION:
            entry = state.entry(kind, f"paused-{new_id()}", generation=2)
        else:
            entry = state.entry(kind, new_id())
        state.revoke(entry)
    state.sync()
    first = auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
    auth.verify(first)  # loads the state and starts its thread
    return auth, created.client_id, created.client_secret, state.size()


def verify_cases(
    revocations: Sequence[int], registrations: Sequence[int], tokens: int, stack: contextlib.ExitStack
) -> list[Case]:
    configs = [(n, 0) for n in revocations] + [(0, n) for n in registrations if n]
    if max(revocations) and max(registrations):
        configs.append((max(revocations), max(registrations)))
    cases: list[Case] = []
    for rev, reg in configs:
        auth, client_id, secret, held = _verify_instance(rev, reg)
        stack.callback(auth.close)

        def one_round(auth: EmbedAuth = auth, client_id: str = client_id, secret: str = secret) -> float:
            fresh = [auth.tokens.client_credentials(client_id, secret).access_token for _ in range(tokens)]
            auth.flush()  # the issues' audit records written now, not while verifying
            gc.collect()
            started = time.perf_counter()
            for token in fresh:
                auth.verify(token)
            return (time.perf_counter() - started) / len(fresh) * 1e6

        size = f"{held:,} revocation entries, {reg:,} registrations"
        cases.append(Case("verify, first sight", "memory", size, one_round))
        cases[-1].baseline = cases[0] if cases[0] is not cases[-1] else None
    return cases


# ---------------------------------------------------------------------------- token endpoint


def endpoint_cases(
    backend: str, sizes: Sequence[int], working: int, requests: tuple[int, int], stack: contextlib.ExitStack
) -> tuple[list[Case], dict[str, Any]]:
    """Steady and view-off cases for each store size on ``backend``; seeding figures."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    steady_cases: list[Case] = []
    off_cases: list[Case] = []
    seeding: dict[str, Any] = {}
    rng = random.Random(7)
    for size in sizes:
        url = stack.enter_context(_seed.namespace(backend, workdir))
        before = _seed.redis_used_memory() if backend == "redis" else 0
        auth = EmbedAuth(
            url,
            issuer=ISSUER,
            key_encryption_key=new_key_encryption_key(),
            failed_auth_limit_per_client=10**6,
            failed_auth_limit_per_address=10**6,
            **_seed.ARGON2,
        )
        stack.callback(auth.close)
        auth.permissions.add(_seed.SCOPE)
        seeded = _seed.seed_registrations(auth.storage, size, working=working)
        figures: dict[str, Any] = {"registrations": size, "seconds": round(seeded.seconds, 1)}
        if backend == "redis":
            used = _seed.redis_used_memory() - before
            figures["redis_used_memory_mb"] = round(used / 2**20, 1)
            figures["bytes_per_registration"] = round(used / size)
        seeding[str(size)] = figures
        off = auth.with_settings(registration_cache_size=0)
        stack.callback(off.close)
        for instance in (auth, off):
            for client_id, secret in seeded.working:  # one argon2 run each, then cached
                instance.tokens.client_credentials(client_id, secret)
        for instance, mode, count, cases in (
            (auth, "steady (view + secret cache)", requests[0], steady_cases),
            (off, "view off (storage read each)", requests[1], off_cases),
        ):

            def one_round(
                instance: EmbedAuth = instance, count: int = count, work: Any = seeded.working
            ) -> float:
                picks = [rng.choice(work) for _ in range(count)]
                grant = instance.tokens.client_credentials
                gc.collect()
                started = time.perf_counter()
                for client_id, secret in picks:
                    grant(client_id, secret)
                elapsed = time.perf_counter() - started
                # Its audit records and last uses written now: not during the next case's timing.
                instance.flush()
                return elapsed / count * 1e6

            one_round()  # warm-up, not counted
            case = Case(f"token endpoint, {mode}", backend, f"{size:,} registrations", one_round)
            case.target = ENDPOINT_TARGET
            case.baseline = cases[0] if cases else None
            cases.append(case)
    return steady_cases + off_cases, seeding


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (small sizes)")
    parser.add_argument("--revocations", type=_ints, help="revocation entry counts (first: baseline)")
    parser.add_argument("--registrations", type=_ints, help="stored registration counts (verify part)")
    parser.add_argument("--sizes", type=_ints, help="store sizes for the token endpoint (first: baseline)")
    parser.add_argument("--backends", default="postgres,redis", help="token endpoint backends")
    parser.add_argument("--rounds", type=int, help="interleaved rounds")
    parser.add_argument("--tokens", type=int, help="fresh tokens per configuration per verify round")
    parser.add_argument("--working", type=int, help="working-set clients for the token endpoint")
    parser.add_argument("--skip-verify", action="store_true")
    parser.add_argument("--skip-endpoint", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    revocations = args.revocations or ([0, 1_000, 5_000] if quick else [0, 10_000, 100_000])
    registrations = args.registrations or ([0, 5_000] if quick else [0, 100_000])
    sizes = args.sizes or ([200, 5_000] if quick else [1_000, 1_000_000])
    rounds = args.rounds or (3 if quick else 21)
    tokens = args.tokens or (200 if quick else 1_000)
    working = args.working or (30 if quick else 500)
    requests = (100, 15) if quick else (1_000, 150)
    started = time.monotonic()

    cases: list[Case] = []
    skipped: list[str] = []
    seeding: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        if not args.skip_verify:
            cases += verify_cases(revocations, registrations, tokens, stack)
        if not args.skip_endpoint:
            for backend in (b for b in args.backends.split(",") if b):
                reason = unreachable(backend)
                if reason is not None:
                    skipped.append(f"{backend}: {reason}")
                    continue
                backend_cases, seeding[backend] = endpoint_cases(backend, sizes, working, requests, stack)
                cases += backend_cases
        interleave(cases, rounds)

    print("### Growth: verification and the token endpoint as the stores grow")
    print()
    print(
        f"Machine-independent parameters: {rounds} interleaved rounds, ratio = median of per-round ratios "
        f"to the first row of its measure and backend; verify: {tokens:,} fresh ES256 tokens per "
        f"configuration per round, each verified once, revocation entries "
        f"{'/'.join(f'{n:,}' for n in revocations)}, registrations {'/'.join(f'{n:,}' for n in registrations)}; "
        f"token endpoint: stores of {'/'.join(f'{n:,}' for n in sizes)} registrations seeded straight "
        f"into storage, {working} working-set clients drawn at random, {requests[0]:,} (steady) / "
        f"{requests[1]:,} (view off) requests per round; {_seed.ARGON2_TEXT}."
    )
    print()
    rows = []
    figures: dict[str, Any] = {"rounds": rounds, "argon2": _seed.ARGON2, "cases": [], "seeding": seeding}
    for case in cases:
        ratio = _seed.median(case.ratios())
        low, high = case.target
        met = low <= ratio <= high
        rows.append(
            [
                case.measure,
                case.backend,
                case.size,
                f"{_seed.median(case.samples):.1f}",
                f"{ratio:.3f}",
                f"{low:.2f}-{high:.2f}",
                _seed.yes(met),
            ]
        )
        figures["cases"].append(
            {
                "measure": case.measure,
                "backend": case.backend,
                "size": case.size,
                "us_per_call": case.samples,
                "ratios": case.ratios(),
                "median_ratio": ratio,
                "target": case.target,
                "met": met,
            }
        )
    print(
        _seed.table(
            ["measure", "backend", "configuration", "µs per call (median)", "ratio", "target", "met"], rows
        )
    )
    for backend, by_size in seeding.items():
        for size, info in by_size.items():
            extra = ""
            if "redis_used_memory_mb" in info:
                extra = (
                    f", Redis used_memory +{info['redis_used_memory_mb']} MiB "
                    f"({info['bytes_per_registration']} B per registration)"
                )
            print(
                f"\nSeeded {int(size):,} registrations into {backend} in {info['seconds']} s{extra}.", end=""
            )
    if seeding:
        print()
    for reason in skipped:
        print(f"\nSkipped {reason}")
    duration = time.monotonic() - started
    print(f"\nDuration: {duration:.0f} s.")
    figures["duration_s"] = duration
    figures["skipped"] = skipped
    _seed.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

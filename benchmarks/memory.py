"""Memory: every bounded structure within its bound, and no growth, after a million distinct tokens.

One ``EmbedAuth`` on SQLite (the embedded default; the audit trail then lives on disk, not in this
process, as it would in production) first fills the client-authentication structures past their
bounds: ``clients`` registrations (seeded straight into storage, each with a secret of its own)
authenticate once each, past ``secret_cache_size`` and ``registration_cache_size``; ``failures``
wrong-secret attempts from as many client IDs and source addresses fill the throttle past its
100,000 keys per limit. Then it verifies ``tokens`` distinct valid tokens (signed in chunks with the
instance's signing key by the signer the token endpoint uses, ``embedauth.tokens.jws.signer``; the
claims are a real issued token's with a fresh ``jti``) interleaved with as many distinct refused
ones (a third each: garbage, a valid token with a broken signature, a token under an unknown
``kid``, which also churns the header cache).

At 0, 10%, 50% and 100% of the tokens it records ``VmRSS`` (``/proc/self/status``), the
``tracemalloc`` current size (tracing starts at 0, after the set-up) and the size of every bounded
structure: the token cache, the verified-secret cache, the header cache
(``embedauth.tokens.jws._HEADERS``), both throttle limits, the registration view, and the verifier's
customer-scope cache. Targets: each structure at or under its bound, and the growth of RSS and of
traced memory from the 10% point to the end within ``--margin`` MiB (default 16): by 10% every
bounded structure is full, so what remains is allocator noise (pymalloc arenas and glibc heaps
keep freed blocks, and a full LRU replaces entries of varying size); 16 MiB is half the token cache's
own footprint, and a leak of 10 bytes per token would exceed it over the last 90% (1.8 million
tokens in a full run).

Run: ``python -m benchmarks.memory`` (``--quick``: 20,000 tokens, a token cache of 1,000 so that it
too is full by 10%; ``--tokens``, ``--clients``, ``--failures``, ``--margin`` override; ``--json
PATH`` writes the figures). Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import _seed
from embedauth import EmbedAuth
from embedauth.credentials.secrets import generate_client_secret, new_id
from embedauth.errors import InvalidClient, InvalidToken
from embedauth.tokens import jws
from embedauth.tokens import verifier as verifier_module

ISSUER = "https://api.example.com"
CHUNK = 5_000
THROTTLE_KEYS = 100_000  # FailureLimit's maxsize (per identity and per address; not a setting)


def rss_bytes() -> int:
    """This process's resident set (``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def structures(auth: EmbedAuth) -> dict[str, tuple[int, int]]:
    """Each bounded structure: (entries now, its bound)."""
    verifier = auth.tokens._verifier
    clients = auth.clients
    throttle = clients._throttle
    view = clients._registrations
    settings = auth.settings
    return {
        "token cache": (verifier.cache_size(), settings.token_cache_size),
        "verified-secret cache": (len(clients._secret_cache), settings.secret_cache_size),
        "header cache (jws._HEADERS)": (len(jws._HEADERS), jws._HEADERS_MAX),
        "throttle, per client ID": (len(throttle._identities._buckets), THROTTLE_KEYS),
        "throttle, per address": (len(throttle._addresses._buckets), THROTTLE_KEYS),
        "registration view": (len(view), settings.registration_cache_size),
        "customer-scope cache": (len(verifier._customer_scopes), verifier_module._CUSTOMER_SCOPES),
    }


def refused_tokens(valid: list[str], start: int) -> Iterator[str]:
    """As many distinct refused tokens as ``valid`` (numbered from ``start``): garbage, a broken
    signature, an unknown kid (each its own header: the header cache churns)."""
    for n, token in enumerate(valid, start):
        kind = n % 3
        head, payload, signature = token.split(".")
        if kind == 0:
            yield f"{n:x}.{n:x}.{n:x}" if n % 2 else f"not-a-token-{n}"
        elif kind == 1:
            middle = len(signature) // 2
            flipped = "A" if signature[middle] != "A" else "B"
            yield f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
        else:
            unknown = _b64(f'{{"alg":"ES256","kid":"unknown-{n}","typ":"at+jwt"}}'.encode())
            yield f"{unknown}.{payload}.{signature}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 tokens, smaller bounds")
    parser.add_argument("--tokens", type=int, help="distinct valid tokens (and as many refused)")
    parser.add_argument("--clients", type=int, help="clients that authenticate once each")
    parser.add_argument("--failures", type=int, help="failed client authentications (distinct keys)")
    parser.add_argument("--margin", type=float, default=16.0, help="allowed growth from 10%% to 100%% (MiB)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    count = args.tokens or (20_000 if quick else 1_000_000)
    clients = args.clients or (100 if quick else 1_500)
    failures = args.failures if args.failures is not None else (500 if quick else 105_000)
    client_bound = 50 if quick else 1_000
    token_bound = 1_000 if quick else 10_000
    checkpoints = [0, count // 10, count // 2, count]
    started = time.monotonic()

    with tempfile.TemporaryDirectory() as workdir, _seed.namespace("sqlite", Path(workdir)) as url:
        auth = EmbedAuth(
            url,
            issuer=ISSUER,
            token_cache_size=token_bound,
            secret_cache_size=client_bound,
            registration_cache_size=client_bound,
            **_seed.ARGON2,
        )
        try:
            auth.permissions.add(_seed.SCOPE)
            seeded = _seed.seed_registrations(auth.storage, clients, working=clients)
            for client_id, secret in seeded.working:
                auth.tokens.client_credentials(client_id, secret)
            # The view empties at every full reload of the revocation log (each minute): its size
            # is taken here too, right after the clients authenticated.
            setup = [structures(auth)]
            wrong = generate_client_secret()
            for index in range(failures):
                address = f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"
                with contextlib.suppress(InvalidClient):
                    auth.tokens.client_credentials(str(uuid.uuid4()), wrong, address=address)
            auth.flush()
            setup.append(structures(auth))
            client_id, secret = seeded.working[0]
            sample = auth.tokens.client_credentials(client_id, secret).access_token
            template = _claims(sample)
            key, private_key = auth.keys.signing_key()
            sign = jws.signer(key.alg, private_key, {"typ": "at+jwt", "kid": key.kid})
            auth.verify(sample)

            points: list[dict[str, Any]] = []

            def checkpoint(done: int) -> None:
                gc.collect()
                points.append(
                    {
                        "tokens": done,
                        "rss": rss_bytes(),
                        "traced": tracemalloc.get_traced_memory()[0],
                        "structures": structures(auth),
                    }
                )

            run = new_id()[:10]  # jti = this prefix + the token's number: distinct, and cheap
            gc.collect()
            tracemalloc.start()
            checkpoint(0)
            done = accepted = refused = 0
            while done < count:
                size = min(CHUNK, count - done, next(p for p in checkpoints if p > done) - done)
                valid = [sign({**template, "jti": f"{run}{n:012d}"}) for n in range(done, done + size)]
                for token in valid:
                    auth.verify(token)
                accepted += len(valid)
                for bad in refused_tokens(valid, done):
                    try:
                        auth.verify(bad)
                    except InvalidToken:
                        refused += 1
                    else:
                        raise AssertionError("a refused token was accepted")
                done += size
                del valid  # the chunk's tokens are not the verifier's memory
                if done in checkpoints:
                    checkpoint(done)
            tracemalloc.stop()
        finally:
            auth.close()

    duration = time.monotonic() - started
    mib = 2**20
    tenth, last = points[1], points[-1]
    rss_growth = (last["rss"] - tenth["rss"]) / mib
    traced_growth = (last["traced"] - tenth["traced"]) / mib
    rows: list[list[object]] = []
    figures: dict[str, Any] = {
        "tokens": count,
        "accepted": accepted,
        "refused": refused,
        "clients": clients,
        "failures": failures,
        "margin_mib": args.margin,
        "checkpoints": points,
        "after_setup": setup,
        "argon2": _seed.ARGON2,
    }
    for name, (_, bound) in last["structures"].items():
        peak = max(sizes[name][0] for sizes in [*setup, *(point["structures"] for point in points)])
        rows.append([f"{name}: largest size seen", f"{peak:,}", f"≤ {bound:,}", _seed.yes(peak <= bound)])
    for label, growth in (("RSS", rss_growth), ("tracemalloc", traced_growth)):
        rows.append(
            [
                f"{label} growth, {tenth['tokens']:,} → {last['tokens']:,} tokens",
                f"{growth:+.1f} MiB",
                f"≤ {args.margin:g} MiB",
                _seed.yes(growth <= args.margin),
            ]
        )
    figures.update(rss_growth_mib=rss_growth, traced_growth_mib=traced_growth, duration_s=duration)

    print("### Memory: bounded structures after a million distinct tokens")
    print()
    print(
        f"Machine-independent parameters: {count:,} distinct valid tokens verified (ES256, signed in "
        f"chunks of {CHUNK:,} with the instance's key) and {count:,} distinct refused ones (a third "
        f"each: garbage, broken signature, unknown kid); before them {clients:,} clients authenticated "
        f"once each and {failures:,} failed authentications from distinct client IDs and addresses; "
        f"sqlite storage; token_cache_size={token_bound:,}, secret_cache_size={client_bound:,}, "
        f"registration_cache_size={client_bound:,}; margin {args.margin:g} MiB (see the module "
        f"docstring); {_seed.ARGON2_TEXT}."
    )
    print()
    print(_seed.table(["check", "figure", "bound / target", "met"], rows))
    print()
    names = list(last["structures"])
    print(
        _seed.table(
            ["valid + refused tokens so far", "VmRSS MiB", "tracemalloc MiB", *names],
            [
                [
                    f"{p['tokens']:,} + {p['tokens']:,}",
                    f"{p['rss'] / mib:.1f}",
                    f"{p['traced'] / mib:.1f}",
                    *(f"{p['structures'][n][0]:,}" for n in names),
                ]
                for p in points
            ],
        )
    )
    print(f"\nAccepted {accepted:,}, refused {refused:,}. Duration: {duration:.0f} s.")
    _seed.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

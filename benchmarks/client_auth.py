"""What a failed client authentication costs, and whether its cost says anything.

An unknown client ID and a known one with a wrong secret must cost the same (one argon2 run each,
whatever the number of secrets the client has), or the time tells an attacker which client IDs
exist. Measured through ``auth.tokens.client_credentials`` at the default argon2 parameters, the
two cases interleaved in one run, with the throttle set out of the way; the cached success is shown
for scale.

Run: ``python -m benchmarks.client_auth`` (``--rounds N``). Prints a Markdown table of
milliseconds per attempt and the ratio of the two failures.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid
from collections.abc import Callable

from embedauth import EmbedAuth
from embedauth.errors import InvalidClient


def _timed(attempt: Callable[[], object]) -> float:
    started = time.perf_counter()
    with contextlib.suppress(InvalidClient):
        attempt()
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    rounds = parser.parse_args(argv).rounds
    auth = EmbedAuth(
        storage="memory://",
        issuer="https://api.example.com",
        failed_auth_limit_per_client=10**9,
        failed_auth_limit_per_address=10**9,
    )
    with auth:
        auth.permissions.add("devices:read")
        client = auth.registrations.create(tenant="t", name="two secrets", scopes=["devices:read"])
        auth.registrations.add_secret(client.client_id)
        # Well-formed (checksum and all) but not this client's: what an attacker can mint.
        wrong = auth.registrations.create(tenant="t", name="other").client_secret
        auth.tokens.client_credentials(client.client_id, client.client_secret)  # now cached
        cases: dict[str, Callable[[], object]] = {
            "unknown client ID": lambda: auth.tokens.client_credentials(str(uuid.uuid4()), wrong),
            "wrong secret (2 stored)": lambda: auth.tokens.client_credentials(client.client_id, wrong),
            "right secret, cached": lambda: auth.tokens.client_credentials(
                client.client_id, client.client_secret
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(rounds):  # interleaved, so that drift touches every case alike
            for name, attempt in cases.items():
                times[name].append(_timed(attempt))
    print(
        f"{rounds} rounds, argon2id m={auth.settings.argon2_memory_kib} KiB t={auth.settings.argon2_time_cost}"
    )
    print()
    print("| attempt | median ms | p90 ms |")
    print("|---|---|---|")
    for name, samples in times.items():
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"| {name} | {statistics.median(samples):.2f} | {p90:.2f} |")
    ratio = statistics.median(times["wrong secret (2 stored)"]) / statistics.median(
        times["unknown client ID"]
    )
    print()
    print(f"wrong secret / unknown client: {ratio:.2f}x")


if __name__ == "__main__":
    main()

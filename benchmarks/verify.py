"""Token verification cost: embedauth against PyJWT, joserfc and a hand-written floor, in one run.

For each algorithm, the same tokens go through:

* ``floor``: the least a correct verifier can do with ``cryptography``: split, decode, check the
  signature, parse the claims, compare ``iss``/``aud``/``exp``; no header policy, no revocation;
* ``embedauth first``: ``EmbedAuth.verify`` on tokens it has not seen (each token verified once);
* ``embedauth cached``: ``EmbedAuth.verify`` on a token it has seen;
* ``pyjwt``: ``jwt.decode`` with the key, algorithm, audience and issuer;
* ``joserfc``: ``jwt.decode`` then ``JWTClaimsRegistry.validate``.

Run: ``python -m benchmarks.verify`` (``--quick`` for a short run). Prints a Markdown table of
microseconds per verification (best of several rounds) and the ratios DESIGN.md sets targets for.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import jwt as pyjwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from embedauth import EmbedAuth

ISSUER = "https://api.example.com"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def floor_verifier(alg: str, key: Any) -> Callable[[str], dict[str, Any]]:
    """The hand-written minimum on ``cryptography``."""
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
            check(_b64(signature), f"{header}.{payload}".encode())
        except InvalidSignature:
            raise ValueError("bad signature") from None
        claims: dict[str, Any] = json.loads(_b64(payload))
        if claims["iss"] != ISSUER or claims["aud"] != ISSUER or claims["exp"] <= time.time():
            raise ValueError("bad claims")
        return claims

    return verify


def best_per_call(fn: Callable[[str], object], tokens: Sequence[str], rounds: int) -> float:
    """Best mean over ``rounds`` passes over ``tokens``, in microseconds per call."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for token in tokens:
            fn(token)
        best = min(best, (time.perf_counter() - start) / len(tokens))
    return best * 1e6


def measure(alg: str, count: int, rounds: int) -> dict[str, float]:
    auth = EmbedAuth(
        "memory://", issuer=ISSUER, signing_algorithm=alg, argon2_memory_kib=256, argon2_time_cost=1
    )
    created = auth.registrations.create(tenant="bench", name="bench")
    tokens = [
        auth.tokens.client_credentials(created.client_id, created.client_secret).access_token
        for _ in range(count)
    ]
    auth.verify(tokens[0])  # start the revocation state
    jwk = auth.jwks()["keys"][0]
    public_key = pyjwt.PyJWK(jwk).key
    assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
    jose_keys = KeySet.import_key_set({"keys": [jwk]})
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": ISSUER}
    )

    def with_pyjwt(token: str) -> object:
        return pyjwt.decode(token, public_key, algorithms=[alg], audience=ISSUER, issuer=ISSUER)

    def with_joserfc(token: str) -> object:
        decoded = jose_jwt.decode(token, jose_keys, algorithms=[alg])
        registry.validate(decoded.claims)
        return decoded

    floor = floor_verifier(alg, public_key)
    for check in (floor, with_pyjwt, with_joserfc, auth.verify):
        check(tokens[1])  # each accepts the token

    results = {
        "floor": best_per_call(floor, tokens, rounds),
        "pyjwt": best_per_call(with_pyjwt, tokens, rounds),
        "joserfc": best_per_call(with_joserfc, tokens, rounds),
    }
    first = float("inf")
    for _ in range(rounds):  # a fresh cache each round, so every token is seen for the first time
        fresh = auth.with_settings()
        fresh.revocations.start()
        first = min(first, best_per_call(fresh.verify, tokens, 1))
        fresh.revocations.stop()
    results["embedauth first"] = first
    results["embedauth cached"] = best_per_call(auth.verify, [tokens[0]] * count, rounds)
    auth.close()
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and rounds")
    parser.add_argument("--algorithms", default="RS256,ES256,EdDSA")
    args = parser.parse_args(argv)
    count, rounds = (300, 3) if args.quick else (2000, 7)
    print(f"{count} tokens, best of {rounds} rounds; microseconds per verification\n")
    print(
        "| alg | floor | embedauth first | embedauth cached | PyJWT | joserfc | first/floor | PyJWT/cached |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for alg in args.algorithms.split(","):
        r = measure(alg, count, rounds)
        print(
            f"| {alg} | {r['floor']:.1f} | {r['embedauth first']:.1f} | {r['embedauth cached']:.2f} "
            f"| {r['pyjwt']:.1f} | {r['joserfc']:.1f} | {r['embedauth first'] / r['floor']:.2f}x "
            f"| {r['pyjwt'] / r['embedauth cached']:.0f}x |"
        )


if __name__ == "__main__":
    main()

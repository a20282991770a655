"""Secret and refresh-token formats, hashing and the verified-secret cache (property-tested)."""

from __future__ import annotations

import secrets as stdlib_secrets
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embedauth.config import Settings
from embedauth.credentials import secrets as secrets_module
from embedauth.credentials.secrets import (
    ALPHABET,
    SecretCache,
    SecretHasher,
    VerifiedSecret,
    generate_client_secret,
    generate_refresh_token,
    hint,
    new_client_id,
    new_id,
    parse_client_secret,
    parse_refresh_token,
)
from embedauth.errors import InvalidSecret

secrets_ = st.builds(lambda _: generate_client_secret(), st.integers())
refresh_tokens = st.builds(lambda _: generate_refresh_token(), st.integers())


@given(secrets_)
def test_client_secret_round_trip(secret: str) -> None:
    assert parse_client_secret(secret) == secret
    assert len(secret) == 53 and secret.startswith("eas_")
    assert set(secret[4:]) <= set(ALPHABET)


@given(refresh_tokens)
def test_refresh_token_round_trip(made: tuple[str, str]) -> None:
    token_id, token = made
    assert parse_refresh_token(token) == token_id
    assert token.startswith("ear_") and len(token) == 75


@given(secrets_, st.data())
def test_any_single_change_to_a_secret_is_refused(secret: str, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(secret) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET + "_-+/= ").filter(lambda ch: ch != secret[i]))
    with pytest.raises(InvalidSecret):
        parse_client_secret(secret[:i] + replacement + secret[i + 1 :])


@given(secrets_, st.data())
def test_truncated_extended_or_swapped_secrets_are_refused(secret: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(secret) - 1))
    for broken in (secret[:cut], secret + data.draw(st.sampled_from(ALPHABET)), secret.upper(), " " + secret):
        if broken != secret:
            with pytest.raises(InvalidSecret):
                parse_client_secret(broken)


@given(refresh_tokens, st.data())
def test_any_single_change_to_a_refresh_token_is_refused(made: tuple[str, str], data: st.DataObject) -> None:
    _, token = made
    i = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from(ALPHABET + "_").filter(lambda ch: ch != token[i]))
    with pytest.raises(InvalidSecret):
        parse_refresh_token(token[:i] + replacement + token[i + 1 :])


@given(st.one_of(st.text(), st.binary(), st.none(), st.integers()))
def test_anything_else_is_refused_cleanly(value: object) -> None:
    for parse in (parse_client_secret, parse_refresh_token):
        with pytest.raises(InvalidSecret):
            parse(value)


def test_a_secret_is_not_a_refresh_token() -> None:
    with pytest.raises(InvalidSecret):
        parse_refresh_token(generate_client_secret())
    with pytest.raises(InvalidSecret):
        parse_client_secret(generate_refresh_token()[1])


def test_ids_and_hints() -> None:
    assert len({generate_client_secret() for _ in range(1000)}) == 1000
    assert len(new_id()) == 22 and set(new_id()) <= set(string.ascii_letters + string.digits)
    assert len(new_client_id()) == 36
    secret = generate_client_secret()
    assert hint(secret) == secret[:7]
    _, token = generate_refresh_token()
    assert hint(token) == token[:7]


def test_production_hash_parameters() -> None:
    settings = Settings()
    hasher = SecretHasher(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    secret = generate_client_secret()
    hashed = hasher.hash(secret)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify(hashed, secret)
    assert not hasher.verify(hashed, generate_client_secret())
    assert not hasher.verify(None, secret)
    assert not hasher.verify("not a hash", secret)
    assert not hasher.needs_rehash(hashed)
    weaker = SecretHasher(time_cost=1, memory_kib=256, parallelism=1)
    assert hasher.needs_rehash(weaker.hash(secret))
    assert hasher.verify(weaker.hash(secret), secret)


def test_hashes_are_upgraded_only_when_weaker() -> None:
    """Two processes configured differently must not re-hash each other's hashes on every use."""
    secret = generate_client_secret()
    stronger = SecretHasher(time_cost=3, memory_kib=256, parallelism=1)
    other = SecretHasher(time_cost=1, memory_kib=512, parallelism=1)  # more memory, fewer passes
    plain = SecretHasher(time_cost=1, memory_kib=256, parallelism=1)
    assert not plain.needs_rehash(stronger.hash(secret))  # a stronger hash is never downgraded
    assert stronger.needs_rehash(plain.hash(secret))
    assert other.needs_rehash(stronger.hash(secret)) and stronger.needs_rehash(other.hash(secret))
    assert plain.needs_rehash("$argon2i$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")  # not argon2id


def test_secret_cache_is_bounded_and_keyed() -> None:
    cache = SecretCache(maxsize=3)
    secrets = [generate_client_secret() for _ in range(5)]
    for i, secret in enumerate(secrets):
        cache.put(secret, VerifiedSecret("client", f"cred-{i}", "hash"))
    assert len(cache) == 3
    assert cache.get(secrets[0]) is None
    assert cache.get(secrets[4]) == VerifiedSecret("client", "cred-4", "hash")
    assert all(secret.encode() not in key for secret in secrets for key in cache._entries._data)
    disabled = SecretCache(maxsize=0)
    disabled.put(secrets[0], VerifiedSecret("c", "i", "h"))
    assert disabled.get(secrets[0]) is None


@given(st.integers(min_value=1, max_value=50), st.data())
def test_base62_round_trips(width: int, data: st.DataObject) -> None:
    value = data.draw(st.integers(min_value=0, max_value=62**width - 1))
    encoded = secrets_module._base62(value, width)
    assert len(encoded) == width
    assert sum(secrets_module.ALPHABET.index(c) * 62**i for i, c in enumerate(reversed(encoded))) == value
    with pytest.raises(ValueError, match="does not fit"):
        secrets_module._base62(62**width + value, width)


def test_random_base62_digits_are_uniform() -> None:
    """Each of the 62 digits equally likely. Taking a random byte modulo 62 would make the first 8
    digits (the remainders of the 8 bytes above 247) 25% likelier: a chi-square over 62,000 digits
    tells the two apart by a wide margin (uniform: ~61 ± 11; modulo bias: ~430)."""
    digits = "".join(secrets_module._random_base62(31) for _ in range(2_000))
    assert set(digits) <= set(secrets_module.ALPHABET)
    expected = len(digits) / 62
    chi_square = sum((digits.count(c) - expected) ** 2 / expected for c in secrets_module.ALPHABET)
    assert chi_square < 130  # p < 1e-6 for a uniform source (61 degrees of freedom)


def test_random_base62_draws_again_when_too_many_bytes_were_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes 248-255 name no digit: a draw left with fewer than ``width`` digits is drawn again."""
    draws = iter([bytes([255] * 9 + [0] * 21), bytes([1] * 30)])
    monkeypatch.setattr(stdlib_secrets, "token_bytes", lambda n: next(draws)[:n])
    assert secrets_module._random_base62(22) == "1" * 22

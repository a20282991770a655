"""Settings: every knob in one frozen value, from arguments or ``EMBEDAUTH_*`` environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from embedauth.errors import ConfigurationError

__all__ = ["DEFAULT_STORAGE", "Settings"]

DEFAULT_STORAGE = "sqlite:///embedauth.db"


@dataclass(frozen=True, slots=True)
class Settings:
    """What an :class:`~embedauth.EmbedAuth` instance is configured with.

    Lifetimes are in seconds unless the name says days.
    """

    storage: str = DEFAULT_STORAGE
    issuer: str = "http://127.0.0.1:8000"
    #: Path prefix of the OAuth endpoints under the issuer (``/oauth/token`` and its siblings).
    endpoint_prefix: str = ""
    #: Accepted ``aud`` values; tokens are issued for the first. Empty: the issuer.
    audiences: tuple[str, ...] = ()
    access_token_lifetime: int = 3600
    #: RS256: the cheapest to verify here (17 µs against 49 for ES256 and 81 for EdDSA, see
    #: docs/benchmarks.md) and accepted by every JWT library.
    signing_algorithm: str = "RS256"
    #: The algorithms new keys may use. ``HS256`` only when listed here explicitly.
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    leeway: int = 30
    max_token_bytes: int = 8192

    #: Secret lifetimes an admin picks from, and the latest custom expiry allowed.
    secret_lifetime_days: tuple[int, ...] = (365, 730, 1095)
    default_secret_days: int = 365
    max_secret_days: int = 1095
    max_registration_days: int = 3650
    max_live_secrets: int = 2

    #: argon2id parameters (OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane). Secrets are 256
    #: random bits, so the hash guards leaked rows, not weak passwords.
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1

    secret_cache_size: int = 10_000
    #: Verified tokens remembered; about 3 KB each (the token and its claims): 10,000 is ~30 MB.
    token_cache_size: int = 10_000

    refresh_token_idle_days: int = 365
    assertion_max_lifetime: int = 3600
    #: How long a new signing key is published before it signs, and how often a process re-reads
    #: the key ring (an unknown kid also triggers a re-read, at most once a second).
    key_publish_ahead: int = 600
    key_reload_interval: float = 30.0
    #: How often revocations are fetched when the backend has no push feed (and as a safety net).
    revocation_poll_interval: float = 0.5
    #: How often every process re-reads the whole revocation log anyway (seconds), besides after a
    #: reconnect and whenever the store's sequence goes back.
    revocation_full_reload_interval: float = 60.0
    #: Seconds of clock difference between processes that revocation allows for: an "issued at or
    #: before t" entry also refuses tokens issued up to this much after t, and entries outlive the
    #: tokens they refuse by this much.
    revocation_skew: int = 5
    #: Single revoked access tokens of one client held before they are coalesced into one entry.
    revocation_client_token_limit: int = 100
    #: Single revoked access tokens held in all, before the largest clients' are coalesced.
    revocation_token_limit: int = 100_000
    #: How long verification goes on from memory while storage cannot be read (seconds); then it
    #: fails closed (503) until the revocation state is current again.
    max_staleness: float = 30.0
    #: Seconds each storage connection attempt, and each wait for an answer, may take.
    storage_timeout: float = 3.0
    #: Failed client authentications (argon2 run and lost) allowed per client ID and per source
    #: address in ``failed_auth_window`` seconds; beyond, 429 with ``Retry-After``.
    failed_auth_limit_per_client: int = 10
    failed_auth_limit_per_address: int = 50
    failed_auth_window: float = 60.0
    #: argon2 verifications run at once in this process (0: one per CPU), and how long a request
    #: waits for a turn before a 503.
    argon2_max_concurrency: int = 0
    argon2_queue_timeout: float = 2.0
    #: Base64url 32-byte key that encrypts signing keys at rest (AES-256-GCM). None: SQLite uses a
    #: key file beside its database, memory:// a process key; other stores refuse to create a key.
    key_encryption_key: str | None = field(default=None, repr=False)
    #: Store signing keys unencrypted when there is no key-encryption key (warned at every key).
    allow_unencrypted_keys: bool = False

    def __post_init__(self) -> None:
        if self.default_secret_days not in self.secret_lifetime_days:
            raise ConfigurationError("default_secret_days must be one of secret_lifetime_days")
        if max(self.secret_lifetime_days) > self.max_secret_days:
            raise ConfigurationError("a secret lifetime choice exceeds max_secret_days")
        if self.max_live_secrets < 1:
            raise ConfigurationError("max_live_secrets must be at least 1")
        if self.access_token_lifetime <= 0 or self.leeway < 0:
            raise ConfigurationError("lifetimes must be positive and leeway not negative")
        if self.secret_cache_size < 0 or self.token_cache_size < 0:
            raise ConfigurationError("cache sizes cannot be negative")
        if self.signing_algorithm not in self.algorithms:
            raise ConfigurationError("signing_algorithm must be one of algorithms")
        if self.storage_timeout <= 0 or self.max_staleness <= 0 or self.revocation_skew < 0:
            raise ConfigurationError(
                "storage_timeout and max_staleness must be positive, revocation_skew not negative"
            )
        if min(self.failed_auth_limit_per_client, self.failed_auth_limit_per_address) < 1:
            raise ConfigurationError("the failed-authentication limits must be at least 1")
        if self.revocation_client_token_limit < 1 or self.revocation_token_limit < 1:
            raise ConfigurationError("the revocation limits must be at least 1")

    def endpoint(self, path: str) -> str:
        """The absolute URL of an endpoint path such as ``/oauth/token``."""
        return self.issuer.rstrip("/") + self.endpoint_prefix.rstrip("/") + path

    @property
    def token_endpoint(self) -> str:
        """The absolute URL of the token endpoint (an ``aud`` that client assertions may name)."""
        return self.endpoint("/oauth/token")

    @property
    def max_token_age(self) -> int:
        """Seconds after its issue that an access token signed now may still be accepted.

        ``access_token_lifetime`` + ``leeway``: how long a revocation entry, or a retired signing
        key's publication, must outlive the tokens it concerns.
        """
        return self.access_token_lifetime + self.leeway

    @property
    def audience(self) -> str:
        """The ``aud`` of issued tokens."""
        return self.audiences[0] if self.audiences else self.issuer

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (checked like a new value); unknown names are refused."""
        try:
            return dataclasses.replace(self, **changes)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``EMBEDAUTH_<FIELD>`` variables, then ``overrides`` (None is ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(f"EMBEDAUTH_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, raw, cls.__dataclass_fields__[f.name].default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc


def _parse(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            items = [item for item in raw.replace(",", " ").split() if item]
            return tuple(int(i) for i in items) if default and isinstance(default[0], int) else tuple(items)
    except ValueError as exc:
        raise ConfigurationError(f"EMBEDAUTH_{name.upper()}: cannot parse {raw!r}") from exc
    return raw

"""Settings: every knob in one frozen value, from arguments or ``EMBEDAUTH_*`` environment variables.

The reference (docs/configuration.md) is generated from this class: each field's ``#:`` comment is
its documentation, and ``tests/test_docs.py`` fails when a field has none or the page is stale.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from embedauth.errors import ConfigurationError

__all__ = ["ADMIN_COLORS", "DEFAULT_STORAGE", "ENV_PREFIX", "SettingInfo", "Settings", "setting_infos"]

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///embedauth.db"
#: Every setting ``name`` is also read from the environment variable ``EMBEDAUTH_NAME``.
ENV_PREFIX = "EMBEDAUTH_"


#: The admin page's colours (CSS custom properties), each replaceable through ``admin_colors``.
ADMIN_COLORS: Mapping[str, str] = MappingProxyType(
    {
        "accent": "#2563eb",
        "accent-text": "#ffffff",
        "background": "#ffffff",
        "text": "#111827",
        "header": "#0f172a",
    }
)
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


@dataclass(frozen=True, slots=True)
class Settings:
    """What an :class:`~embedauth.EmbedAuth` instance is configured with.

    Lifetimes are in seconds unless the name says days.
    """

    # -- where and who
    #: The storage URL: ``sqlite:///path.db``, ``memory://``, ``postgresql://…``, ``mysql+pymysql://…``
    #: (or ``mariadb://…``), ``redis://host:6379/0?prefix=…``.
    storage: str = DEFAULT_STORAGE
    #: The issuer identifier (RFC 8414): the ``iss`` of every token and the base of the endpoint URLs.
    issuer: str = "http://127.0.0.1:8000"
    #: Path prefix of the OAuth endpoints under the issuer (``/oauth/token`` and its siblings).
    endpoint_prefix: str = ""
    #: Accepted ``aud`` values; tokens are issued for the first. Empty: the issuer.
    audiences: tuple[str, ...] = ()

    # -- access tokens
    #: Seconds an access token is valid (never past its credential's or registration's expiry).
    access_token_lifetime: int = 3600
    #: The algorithm new signing keys use. ES256: signing costs a tenth of RS256's (the token
    #: endpoint's hot path), verifying is cached after a token's first sight, tokens are shorter,
    #: and every JWT library accepts it (see docs/benchmarks.md, "The default algorithm").
    signing_algorithm: str = "ES256"
    #: The algorithms new keys may use. ``HS256`` only when listed here explicitly.
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    #: Seconds of clock difference allowed when checking ``exp``, ``nbf`` and ``iat``.
    leeway: int = 30
    #: The largest token or client assertion read at all (bytes).
    max_token_bytes: int = 8192
    #: Verified tokens remembered; about 3 KB each (the token and its claims): 10,000 is ~30 MB.
    token_cache_size: int = 10_000
    #: The longest lifetime a client assertion (``private_key_jwt``) may claim (seconds).
    assertion_max_lifetime: int = 3600

    # -- secrets and registrations
    #: The secret lifetimes an admin picks from (days).
    secret_lifetime_days: tuple[int, ...] = (365, 730, 1095)
    #: The lifetime of a secret when none is asked for (days; one of ``secret_lifetime_days``).
    default_secret_days: int = 365
    #: The latest custom expiry of a secret, from now (days).
    max_secret_days: int = 1095
    #: The latest a certificate uploaded as a credential may be valid until, from now (days).
    max_certificate_days: int = 1095
    #: The latest expiry of a registration itself, from now (days).
    max_registration_days: int = 3650
    #: Live secrets a registration may hold at once (two: one to switch to without downtime).
    max_live_secrets: int = 2
    #: Successful secret verifications remembered, so that a known client costs no argon2 run.
    secret_cache_size: int = 10_000
    #: Registrations the token endpoint keeps in memory (the most recently used), so that a client
    #: that authenticated before costs no storage read; each change reaches every process through
    #: the revocation feed (see ``registry/view.py``). 0: read storage on every request.
    registration_cache_size: int = 10_000
    #: The longest a registration is served from memory (seconds), in case a change's notice was
    #: lost (storage failed just after the change was saved).
    registration_cache_seconds: float = 60.0
    #: A person's refresh token unused this many days is refused (and revoked) at its next use, and
    #: revoked by the expiry sweep.
    refresh_token_idle_days: int = 365
    #: The longest grace period a secret rotation may give the secrets it replaces (seconds; 7 days).
    max_rotation_grace: int = 604_800
    #: How often a process writes the last uses it saw (seconds): at most one write per credential
    #: in each interval, and the stored time is at most this far behind the last use.
    last_used_interval: float = 5.0

    # -- the lifecycle sweep and the audit trail
    #: Seconds between two expiry sweeps that ``embedauth serve`` (or ``auth.lifecycle.start()``)
    #: runs in the background; 0: none (run ``embedauth notify`` from a scheduler instead).
    sweep_interval: float = 0.0
    #: A file the built-in notices plugin appends each expiry notice to, as one JSON line; ``-``:
    #: standard output. None: no file (the hooks still fire).
    notice_file: str | None = None
    #: Audit records older than this many days are pruned.
    audit_retention_days: int = 90
    #: At most this many audit records are kept (the oldest go first); Redis holds them in memory,
    #: about 1 KB each.
    audit_max_records: int = 1_000_000
    #: Audit records queued in a process before the oldest unwritten ones are dropped (and counted).
    audit_queue_size: int = 10_000
    #: How often a process writes its queued audit records (seconds).
    audit_flush_interval: float = 1.0

    # -- argon2id (OWASP's minimum: 19 MiB, 2 passes, 1 lane; secrets are 256 random bits, so the
    # hash guards leaked rows, not weak passwords)
    #: argon2id passes.
    argon2_time_cost: int = 2
    #: argon2id memory (KiB).
    argon2_memory_kib: int = 19456
    #: argon2id lanes.
    argon2_parallelism: int = 1
    #: argon2 runs at once in this process (0: one per CPU).
    argon2_max_concurrency: int = 0
    #: Seconds a request waits for an argon2 turn before it is answered 503.
    argon2_queue_timeout: float = 2.0
    #: Failed client authentications allowed per client ID in ``failed_auth_window``; then 429.
    failed_auth_limit_per_client: int = 10
    #: Failed client authentications allowed per source address (IPv6: per /64) in the window.
    failed_auth_limit_per_address: int = 50
    #: The window the failure limits count in (seconds); a full window of silence forgives all.
    failed_auth_window: float = 60.0

    # -- signing keys
    #: How long a new signing key is published before it signs (seconds), so that every JWKS cache
    #: has it first.
    key_publish_ahead: int = 600
    #: How often a process re-reads the key ring in the background (seconds); an unknown kid also
    #: starts a re-read, at most once a second.
    key_reload_interval: float = 30.0
    #: Base64url 32-byte key that encrypts signing keys at rest (AES-256-GCM). None: SQLite uses a
    #: key file beside its database, memory:// a process key; other stores refuse to create a key.
    key_encryption_key: str | None = field(default=None, repr=False)
    #: Store signing keys unencrypted when there is no key-encryption key (warned at every key).
    allow_unencrypted_keys: bool = False

    # -- revocation and outages
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

    # -- the management API and the admin page
    #: Path of the management API (JSON, behind the admin guard).
    admin_api_prefix: str = "/admin/api"
    #: Path of the admin page (static files over the management API). Empty: no page.
    admin_page_path: str = "/admin"
    #: The product name the admin page shows in its header and title.
    admin_product_name: str = "embedauth"
    #: The admin page's colours, ``NAME=#rrggbb`` each: ``accent``, ``accent-text``, ``background``,
    #: ``text``, ``header`` (those not given keep their defaults).
    admin_colors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.default_secret_days not in self.secret_lifetime_days:
            raise ConfigurationError("default_secret_days must be one of secret_lifetime_days")
        if max(self.secret_lifetime_days) > self.max_secret_days:
            raise ConfigurationError("a secret lifetime choice exceeds max_secret_days")
        if self.max_live_secrets < 1:
            raise ConfigurationError("max_live_secrets must be at least 1")
        if self.access_token_lifetime <= 0 or self.leeway < 0:
            raise ConfigurationError("lifetimes must be positive and leeway not negative")
        if min(self.secret_cache_size, self.token_cache_size, self.registration_cache_size) < 0:
            raise ConfigurationError("cache sizes cannot be negative")
        if self.registration_cache_seconds < 0:
            raise ConfigurationError("registration_cache_seconds cannot be negative")
        if self.signing_algorithm not in self.algorithms:
            raise ConfigurationError(
                f"signing_algorithm {self.signing_algorithm} is not one of algorithms"
                f" ({', '.join(self.algorithms)}): set signing_algorithm to one of them"
            )
        if self.storage_timeout <= 0 or self.max_staleness <= 0 or self.revocation_skew < 0:
            raise ConfigurationError(
                "storage_timeout and max_staleness must be positive, revocation_skew not negative"
            )
        if min(self.failed_auth_limit_per_client, self.failed_auth_limit_per_address) < 1:
            raise ConfigurationError("the failed-authentication limits must be at least 1")
        if self.revocation_client_token_limit < 1 or self.revocation_token_limit < 1:
            raise ConfigurationError("the revocation limits must be at least 1")
        if self.max_rotation_grace < 0 or self.sweep_interval < 0:
            raise ConfigurationError("max_rotation_grace and sweep_interval cannot be negative")
        if min(self.last_used_interval, self.audit_flush_interval) <= 0:
            raise ConfigurationError("last_used_interval and audit_flush_interval must be positive")
        if min(self.audit_retention_days, self.audit_max_records, self.audit_queue_size) < 1:
            raise ConfigurationError("the audit bounds must be at least 1")
        for path in (self.admin_api_prefix, self.admin_page_path):
            if path and (not path.startswith("/") or path.endswith("/")):
                raise ConfigurationError(f"admin paths start with / and do not end with one; got {path!r}")
        if not self.admin_api_prefix:
            raise ConfigurationError("admin_api_prefix cannot be empty")
        self.admin_theme()  # refuses a colour it cannot read

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

    def admin_theme(self) -> dict[str, str]:
        """The admin page's colours: :data:`ADMIN_COLORS` with ``admin_colors`` applied."""
        theme = dict(ADMIN_COLORS)
        for entry in self.admin_colors:
            name, _, value = entry.partition("=")
            name, value = name.strip(), value.strip()
            if name not in ADMIN_COLORS or not _HEX_COLOR.fullmatch(value):
                raise ConfigurationError(
                    f"admin_colors: {entry!r} is not NAME=#rrggbb with NAME one of {', '.join(ADMIN_COLORS)}"
                )
            theme[name] = value
        return theme

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
        """Defaults, then ``EMBEDAUTH_<FIELD>`` variables, then ``overrides`` (None is ignored).

        A variable that looks like a misspelt setting (``EMBEDAUTH_STORAGE_TIMOUT``) is warned
        about, naming the setting it probably meant; a value that does not parse is refused.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        names = {f"{ENV_PREFIX}{f.name.upper()}": f for f in dataclasses.fields(cls)}
        for variable, raw in environ.items():
            if not variable.startswith(ENV_PREFIX):
                continue
            known = names.get(variable)
            if known is not None:
                values[known.name] = _parse(variable, raw, known.default)
                continue
            close = difflib.get_close_matches(variable, names, n=1, cutoff=0.85)
            if close:
                log.warning("embedauth: %s is not a setting; did you mean %s?", variable, close[0])
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One setting as the configuration reference shows it."""

    name: str
    variable: str
    type: str
    default: Any
    doc: str


def setting_infos() -> list[SettingInfo]:
    """Every setting, in declaration order, with its variable, type, default and ``#:`` comment."""
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(Settings).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        name, colon, _ = stripped.partition(":")
        if colon and name.isidentifier() and pending:
            docs[name] = " ".join(pending)
        if not stripped.startswith("#"):
            pending = []
    hints = typing.get_type_hints(Settings)
    infos = []
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        type_name = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
        infos.append(
            SettingInfo(
                name=f.name,
                variable=f"{ENV_PREFIX}{f.name.upper()}",
                type=type_name or str(hint).replace("typing.", ""),
                default=f.default,
                doc=docs.get(f.name, ""),
            )
        )
    return infos


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse(variable: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            word = raw.strip().lower()
            if word not in _TRUE | _FALSE:
                raise ValueError(raw)
            return word in _TRUE
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            items = [item for item in raw.replace(",", " ").split() if item]
            return tuple(int(i) for i in items) if default and isinstance(default[0], int) else tuple(items)
    except ValueError as exc:
        raise ConfigurationError(f"{variable}: cannot parse {raw!r}") from exc
    return raw

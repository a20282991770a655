"""Middleware-only mode: verify tokens that another embedauth service issues, knowing only its URL.

:class:`RemoteVerifier` reads the issuer's RFC 8414 metadata, checks that it names the same issuer
(§3.3), and loads the JWKS it points to. Keys are refreshed when a token names an unknown ``kid``
(the issuer publishes a new key ``key_publish_ahead`` seconds before it signs with it, so this is
rare) but never more often than ``refresh_floor`` seconds, so a flood of forged kids cannot turn into
a flood of requests; and, in the background, once the set is older than ``max_age``, so a key the
issuer withdrew stops verifying. No request ever waits for the network except one carrying an
unknown kid.

Revocation: with ``revocation_storage`` (the issuer's Redis or PostgreSQL URL) the verifier follows
the same change feed as the issuer, and a pause or rotation takes effect within a second. Without
it, a revoked token is accepted until it expires (at most ``access_token_lifetime``, one hour by
default).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from embedauth.clock import Clock, system_clock
from embedauth.config import Settings
from embedauth.errors import ConfigurationError
from embedauth.hooks import make_plugin_manager
from embedauth.models import Principal
from embedauth.storage import Storage, open_storage
from embedauth.tokens import jws
from embedauth.tokens.revocation import RevocationState
from embedauth.tokens.verifier import RevocationView, Verifier

__all__ = ["RemoteKeys", "RemoteVerifier"]

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1 << 20
Fetch = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class RemoteKey:
    kid: str
    alg: str
    verify: jws.Verifier


def metadata_url(issuer: str) -> str:
    """RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path."""
    parts = urllib.parse.urlsplit(issuer)
    path = "/.well-known/oauth-authorization-server" + parts.path.rstrip("/")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def check_url(url: str) -> str:
    """HTTPS, or HTTP to a loopback address (tests, a sidecar)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        return url
    if parts.scheme == "http":
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise ConfigurationError(f"{url}: keys are fetched over https only (http only to a loopback address)")


def http_fetch(url: str, timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(check_url(url), headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url}: document larger than {MAX_DOCUMENT_BYTES} bytes")
    return body


class RemoteKeys:
    """The issuer's published keys, fetched and refreshed as described in the module docstring."""

    def __init__(
        self,
        issuer: str,
        *,
        clock: Clock,
        algorithms: Sequence[str],
        refresh_floor: float = 10.0,
        max_age: float = 300.0,
        fetch: Fetch = http_fetch,
    ) -> None:
        self._issuer = issuer
        self._clock = clock
        self._algorithms = frozenset(algorithms)
        self._refresh_floor = refresh_floor
        self._max_age = max_age
        self._fetch = fetch
        self._keys: dict[str, RemoteKey] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def prepare(self) -> None:
        """Fetch the keys if they never were."""
        if self._fetched_at is None:
            self.refresh()

    def get(self, kid: str) -> RemoteKey | None:
        """The issuer's key ``kid``, fetched if unknown (no more than once per refresh floor)."""
        now = self._clock()
        key = self._keys.get(kid)
        if key is None:
            if self._fetched_at is None or now - self._fetched_at >= self._refresh_floor:
                self.refresh()
                key = self._keys.get(kid)
        elif (
            self._fetched_at is not None and now - self._fetched_at >= self._max_age and not self._refreshing
        ):
            self._refreshing = True
            threading.Thread(target=self.refresh, name="embedauth-jwks", daemon=True).start()
        return key

    def refresh(self) -> None:
        """Fetch the metadata and JWKS now; on failure keep the keys already known."""
        with self._lock:
            self._fetched_at = self._clock()
            try:
                metadata = _json(self._fetch(metadata_url(self._issuer)))
                if metadata.get("issuer") != self._issuer:
                    raise ValueError(
                        f"metadata names issuer {metadata.get('issuer')!r}, not {self._issuer!r}"
                    )
                jwks_uri = metadata.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise ValueError("metadata has no jwks_uri")
                keys = _json(self._fetch(jwks_uri)).get("keys")
                if not isinstance(keys, list):
                    raise ValueError("the JWKS has no keys list")
                self._keys = {k.kid: k for k in (self._load(jwk) for jwk in keys) if k is not None}
            except (OSError, ValueError, ConfigurationError) as exc:
                log.warning("embedauth: cannot refresh the keys of %s: %s", self._issuer, exc)
            finally:
                self._refreshing = False

    def _load(self, jwk: object) -> RemoteKey | None:
        """A key the issuer signs access tokens with, or None for anything else."""
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            return None
        kid, alg = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, str) or alg not in self._algorithms:
            return None
        try:
            return RemoteKey(kid, alg, jws.verifier(alg, jwt.PyJWK(jwk).key))
        except (jwt.PyJWTError, jws.Refused, ValueError, TypeError):
            return None


class _NoRevocations:
    """Without the issuer's feed: nothing is known revoked; tokens live out their lifetime."""

    def start(self) -> None:
        return None

    def check_current(self) -> None:
        return None

    def is_revoked(
        self,
        *,
        client_id: str,
        credential_id: str | None,
        token_id: str,
        issued_at: float,
        generation: int = 0,
        kid: str | None = None,
    ) -> bool:
        return False

    def stop(self) -> None:
        return None


class RemoteVerifier:
    """A :class:`~embedauth.http.bearer.TokenVerifier` for tokens of the embedauth service at ``issuer``.

    ``audiences`` are the ``aud`` values accepted (default: the issuer, what embedauth issues for
    when not configured otherwise). Other keyword arguments are :class:`~embedauth.config.Settings`
    fields (``leeway``, ``token_cache_size``, ``algorithms``…).
    """

    def __init__(
        self,
        issuer: str,
        *,
        audiences: Sequence[str] = (),
        revocation_storage: str | None = None,
        clock: Clock = system_clock,
        plugins: Sequence[object] = (),
        refresh_floor: float = 10.0,
        fetch: Fetch = http_fetch,
        **settings: Any,
    ) -> None:
        check_url(issuer)
        self.settings = Settings(issuer=issuer, audiences=tuple(audiences), **settings)
        self.plugins = make_plugin_manager(*plugins)
        self.keys = RemoteKeys(
            issuer, clock=clock, algorithms=self.settings.algorithms, refresh_floor=refresh_floor, fetch=fetch
        )
        self._storage: Storage | None = None
        self.revocations: RevocationView
        if revocation_storage is None:
            self.revocations = _NoRevocations()
        else:
            self._storage = open_storage(
                revocation_storage, clock=clock, plugins=self.plugins, timeout=self.settings.storage_timeout
            )
            self.revocations = RevocationState(self._storage, self.settings, clock)
        self._verifier = Verifier(
            settings=self.settings,
            clock=clock,
            keys=self.keys,
            revocations=self.revocations,
            plugins=self.plugins,
        )

    @property
    def ready(self) -> bool:
        """Whether the keys (and revocation state) are loaded."""
        return self._verifier.ready

    def prepare(self) -> None:
        """Fetch the keys and load the revocation state (blocking I/O)."""
        self._verifier.prepare()

    def verify(self, token: str) -> Principal:
        """The caller behind a valid access token, or :class:`~embedauth.errors.InvalidToken`."""
        return self._verifier.verify(token)

    def close(self) -> None:
        """Stop following the revocation feed and close its storage."""
        if isinstance(self.revocations, RevocationState):
            self.revocations.stop()
        if self._storage is not None:
            self._storage.close()


def _json(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value

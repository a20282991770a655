"""Middleware-only mode: verify tokens that another embedauth service issues, knowing only its URL.

:class:`RemoteVerifier` reads the issuer's RFC 8414 metadata (at the well-known URL of §3.1: the
well-known segment goes between the host and the issuer's path), checks that it names the same
issuer (§3.3), and loads the JWKS it points to.

When the keys are fetched (:class:`RemoteKeys`):

* :meth:`~RemoteKeys.prepare` (run by :meth:`RemoteVerifier.prepare`, or by the first ``verify``)
  fetches them once, blocking. If that first fetch fails it raises
  :class:`~embedauth.errors.StorageError`, which the adapters answer with 503 rather than refusing
  every token as invalid, and the verifier tries again on a later request (no sooner than the
  floor below allows).
* After that, :meth:`~RemoteKeys.get` only reads memory: ``verify`` never waits for the network. A
  token that names an unknown ``kid`` is refused at once and starts a refresh in a background
  daemon thread (the issuer publishes a new key ``key_publish_ahead`` seconds before it signs with
  it, so a real token rarely meets a key not yet fetched); so does any lookup once the key set is
  older than ``max_age``, so that a key the issuer withdrew stops verifying.
* At most one fetch runs at a time, and the next starts no sooner than ``refresh_floor`` seconds
  after the previous one ended, whether it succeeded or failed: a flood of forged kids against an
  unreachable issuer costs at most one attempt per floor. A failed refresh keeps the keys already
  known. Floors and ages are measured on the monotonic clock (:func:`time.monotonic`), not on the
  injected clock, which only dates tokens.

Fetching: HTTPS only (plain HTTP only to a loopback address); redirects are refused, not followed
(the issuer serves its metadata and JWKS where it says, and a redirect could lead anywhere);
documents larger than 1 MiB are refused; each network operation times out after 5 s.

Revocation: with ``revocation_storage`` (the issuer's Redis or PostgreSQL URL) the verifier follows
the same change feed as the issuer, and a pause or rotation takes effect within a second. Without
it, a revoked token is accepted until it expires (at most ``access_token_lifetime``, one hour by
default).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import IO, Any, NoReturn

import jwt

from embedauth.clock import Clock, system_clock
from embedauth.config import Settings
from embedauth.errors import ConfigurationError, StorageError
from embedauth.hooks import make_plugin_manager
from embedauth.models import Principal
from embedauth.storage import Storage, open_storage
from embedauth.tokens import jws
from embedauth.tokens.revocation import RevocationState
from embedauth.tokens.verifier import RevocationView, Verifier

__all__ = ["RemoteKeys", "RemoteVerifier"]

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1 << 20
#: Seconds each network operation of a fetch may take.
FETCH_TIMEOUT = 5.0
Fetch = Callable[[str], bytes]
#: What a failed fetch raises: network, HTTP (a refused redirect is an ``HTTPError``), or content.
FETCH_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    http.client.HTTPException,
    ValueError,
    ConfigurationError,
)


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


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Every redirect (301, 302, 303, 307, 308) is an error: the URL it leads to is never requested."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> NoReturn:
        fp.close()
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl!r} refused", headers, None)


#: urllib's default handlers (proxies from the environment included), with redirects refused.
_opener = urllib.request.build_opener(_RefuseRedirects)


def http_fetch(url: str, timeout: float = FETCH_TIMEOUT) -> bytes:
    """The body of a 2xx answer to ``GET url`` (https, or http to loopback), at most 1 MiB.

    Redirects are refused (``urllib.error.HTTPError``), as is any other non-2xx status.
    """
    request = urllib.request.Request(check_url(url), headers={"Accept": "application/json"})  # noqa: S310
    with _opener.open(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url}: document larger than {MAX_DOCUMENT_BYTES} bytes")
    return body


class RemoteKeys:
    """The issuer's published keys, fetched and refreshed as the module docstring describes.

    :meth:`prepare` is the only method that waits for the network; :meth:`get` reads memory and
    at most starts a background refresh.
    """

    def __init__(
        self,
        issuer: str,
        *,
        algorithms: Sequence[str],
        refresh_floor: float = 10.0,
        max_age: float = 300.0,
        fetch: Fetch = http_fetch,
    ) -> None:
        self._issuer = issuer
        self._algorithms = frozenset(algorithms)
        self._refresh_floor = refresh_floor
        self._max_age = max_age
        self._fetch = fetch
        self._keys: Mapping[str, RemoteKey] = {}
        #: time.monotonic() of the last successful fetch; None before the first.
        self._loaded_at: float | None = None
        #: time.monotonic() at which the last fetch ended, successful or not.
        self._attempted_at = -math.inf
        self._fetching = False
        self._lock = threading.Lock()  # guards the claim of the next fetch

    @property
    def ready(self) -> bool:
        """Whether a fetch has succeeded."""
        return self._loaded_at is not None

    def prepare(self) -> None:
        """Fetch the keys if no fetch succeeded yet (blocking, bounded by the fetch timeouts).

        ``StorageError`` when the fetch fails, or when it may not be tried yet (another is running,
        or the last one ended less than ``refresh_floor`` seconds ago).
        """
        if self._loaded_at is not None:
            return
        if not self._claim():
            raise StorageError(f"the keys of {self._issuer} are being fetched, or were not a moment ago")
        try:
            self._refresh()
        except FETCH_ERRORS as exc:
            raise StorageError(f"cannot fetch the keys of {self._issuer}: {exc}") from exc

    def get(self, kid: str) -> RemoteKey | None:
        """The issuer's key ``kid``, or None; memory only.

        An unknown kid, or a key set older than ``max_age``, starts a background refresh (one at a
        time, no sooner than ``refresh_floor`` seconds after the last fetch ended).
        """
        key = self._keys.get(kid)
        loaded_at = self._loaded_at
        if key is None or loaded_at is None or time.monotonic() - loaded_at >= self._max_age:
            self._refresh_in_background()
        return key

    def _refresh_in_background(self) -> None:
        if self._fetching or time.monotonic() - self._attempted_at < self._refresh_floor:
            return  # the common case under a flood of forged kids: no lock taken
        if not self._claim():
            return
        thread = threading.Thread(target=self._background, name="embedauth-jwks", daemon=True)
        try:
            thread.start()
        except RuntimeError as exc:  # cannot start a thread (interpreter shutting down, limits)
            self._release()
            log.warning("embedauth: cannot refresh the keys of %s: %s", self._issuer, exc)

    def _claim(self) -> bool:
        """Reserve the next fetch: False while one runs or within the floor after the last one."""
        with self._lock:
            if self._fetching or time.monotonic() - self._attempted_at < self._refresh_floor:
                return False
            self._fetching = True
            return True

    def _release(self) -> None:
        with self._lock:
            self._attempted_at = time.monotonic()
            self._fetching = False

    def _background(self) -> None:
        try:
            self._refresh()
        except FETCH_ERRORS as exc:
            log.warning("embedauth: cannot refresh the keys of %s: %s", self._issuer, exc)

    def _refresh(self) -> None:
        """One claimed fetch: the new key set replaces the old, or an error leaves the old in place."""
        try:
            metadata = _json(self._fetch(metadata_url(self._issuer)))
            if metadata.get("issuer") != self._issuer:
                raise ValueError(f"metadata names issuer {metadata.get('issuer')!r}, not {self._issuer!r}")
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError("metadata has no jwks_uri")
            keys = _json(self._fetch(jwks_uri)).get("keys")
            if not isinstance(keys, list):
                raise ValueError("the JWKS has no keys list")
            self._keys = {k.kid: k for k in (self._load(jwk) for jwk in keys) if k is not None}
            self._loaded_at = time.monotonic()
        finally:
            self._release()

    def _load(self, jwk: object) -> RemoteKey | None:
        """A key the issuer signs access tokens with, or None for anything else."""
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            return None
        kid, alg = jwk.get("kid"), jwk.get("alg")
        if not isinstance(kid, str) or alg not in self._algorithms:
            return None
        try:
            return RemoteKey(kid, alg, jws.verifier(alg, jwt.PyJWK(jwk).key, low_s_only=True))
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
    fields (``leeway``, ``token_cache_size``, ``algorithms``…). ``refresh_floor`` is the least
    time, in seconds, between the end of one key fetch and the start of the next; ``fetch`` replaces
    :func:`http_fetch` (a test, a custom transport); it signals a failure with one of
    :data:`FETCH_ERRORS` (``OSError``, ``ValueError``…).
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
            issuer, algorithms=self.settings.algorithms, refresh_floor=refresh_floor, fetch=fetch
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
        """Fetch the keys and load the revocation state (blocking I/O, bounded by timeouts).

        ``StorageError`` when the issuer's keys (or the revocation storage) cannot be reached;
        :meth:`verify` then raises it too, until a later attempt succeeds.
        """
        self._verifier.prepare()

    def verify(self, token: str) -> Principal:
        """The caller behind a valid access token, or :class:`~embedauth.errors.InvalidToken`.

        Once prepared it does no I/O: a token naming a key not yet fetched is refused, and the key
        is fetched in the background for the tokens that follow.
        """
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

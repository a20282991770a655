"""The signing key ring: generate, rotate with overlap, publish as JWKS, encrypt at rest.

Like ``cryptography``'s ``MultiFernet``: one key signs, every published key verifies. A rotation
adds the next key *published* ``key_publish_ahead`` seconds before it starts signing, so every JWKS
cache has seen it by then; the key it replaces stops signing at that moment and stays published
until the last token it signed has expired (``access_token_lifetime`` + leeway later). No second
command is needed: the handover happens by time, the same in every process.

Private keys are PKCS#8 DER, encrypted with AES-256-GCM under the key-encryption key, the kid as
associated data so a ciphertext cannot be moved to another key's row. The key-encryption key is
``key_encryption_key`` (base64url of 32 bytes) when set; otherwise, for ``sqlite:///path.db``, the
file ``path.db.kek`` beside the database (created, mode 0600, on first use: back it up with the
database), and for ``memory://`` a random key that lives as long as the process. A network store
without one refuses to create a signing key, saying how to make one, unless
``allow_unencrypted_keys`` is set, which warns at every key it stores.

Verification never waits for storage: :meth:`KeyRing.get` answers from memory, and an unknown kid
or a due re-read starts a reload in the background (at most once a second, failures included). A
leaked key is withdrawn with :meth:`KeyRing.withdraw`: a revocation entry refuses its tokens in
every process within the feed's delay, and the key leaves the JWKS.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from embedauth.clock import Clock, to_timestamp, utcnow
from embedauth.config import Settings
from embedauth.credentials.secrets import new_id
from embedauth.errors import ConfigurationError, NotFound, StorageError
from embedauth.models import RevocationKind, SigningKey
from embedauth.storage.base import Storage
from embedauth.tokens import jws
from embedauth.tokens.revocation import RevocationState

__all__ = ["KeyRing", "LoadedKey"]

log = logging.getLogger(__name__)

_NONCE = 12
#: An unknown kid starts a background re-read of the ring at most this often (seconds).
_RELOAD_FLOOR = 1.0
#: The one-time key that elects the process creating a deployment's first signing key, and how
#: long the others wait for it.
_FIRST_KEY_CLAIM = "signing-keys:first"
_FIRST_KEY_WAIT = 10.0


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A stored key with its signature check ready, and what verification reads of it as plain
    attributes (read on every verification, cached ones included)."""

    record: SigningKey
    verify: jws.Verifier
    #: The key id tokens name in their header.
    kid: str = field(init=False)
    #: The one algorithm this key signs and verifies.
    alg: str = field(init=False)
    #: When it stops being published (a POSIX time; infinity while no end is set).
    unpublished_at: float = field(init=False)
    #: When it starts and stops signing (POSIX times; infinity while no retirement is set).
    signs_from: float = field(init=False)
    signs_until: float = field(init=False)

    def __post_init__(self) -> None:
        record = self.record
        expires, retires = record.expires_at, record.retires_at
        object.__setattr__(self, "kid", record.kid)
        object.__setattr__(self, "alg", record.alg)
        object.__setattr__(self, "unpublished_at", math.inf if expires is None else to_timestamp(expires))
        object.__setattr__(self, "signs_from", to_timestamp(record.activates_at))
        object.__setattr__(self, "signs_until", math.inf if retires is None else to_timestamp(retires))


class KeyRing:
    """The instance's signing keys, cached in memory and reloaded from storage when needed."""

    def __init__(
        self, storage: Storage, settings: Settings, clock: Clock, revocations: RevocationState
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._revocations = revocations
        self._kek = _key_encryption_key(settings.key_encryption_key, storage.url)
        self._lock = threading.Lock()
        self._keys: dict[str, LoadedKey] = {}
        self._private: dict[str, Any] = {}  # decrypted on first use, for signing only
        self._loaded_at: float | None = None  # the clock's time of the last reload
        self._reloaded = -math.inf  # monotonic time of the last reload attempt (the floor)
        self._reload_interval = settings.key_reload_interval
        self._reloading = threading.Lock()
        self._warned_at = -math.inf

    # ------------------------------------------------------------------ reading

    def reload(self) -> None:
        """Read the ring from storage again (new keys from other processes, expiries, withdrawals)."""
        self._reloaded = time.monotonic()
        records = self._storage.list_signing_keys()
        with self._lock:
            known = self._keys
            self._keys = {
                r.kid: known[r.kid] if r.kid in known and known[r.kid].record == r else self._load(r)
                for r in records
            }
            self._loaded_at = self._clock()

    def _ensure_loaded(self) -> None:
        if self._loaded_at is None or self._clock() - self._loaded_at >= self._settings.key_reload_interval:
            self.reload()

    def prepare(self) -> None:
        """Load the ring if it never was (blocking I/O; what :meth:`get` needs)."""
        if self._loaded_at is None:
            self.reload()

    def get(self, kid: str) -> LoadedKey | None:
        """The published key ``kid``, from memory. An unknown kid, or a ring due to be re-read,
        starts a reload in the background (at most once a second, failures included)."""
        key = self._keys.get(kid)
        if key is None or time.monotonic() - self._reloaded >= self._reload_interval:
            self._reload_soon()
        if key is None or self._clock() >= key.unpublished_at:
            return None
        return key

    def _reload_soon(self) -> None:
        if time.monotonic() - self._reloaded < _RELOAD_FLOOR or not self._reloading.acquire(blocking=False):
            return
        self._reloaded = time.monotonic()

        def run() -> None:
            try:
                self.reload()
            except StorageError as exc:
                if time.monotonic() - self._warned_at >= 10.0:  # once per outage, not per forged kid
                    self._warned_at = time.monotonic()
                    log.warning("embedauth: cannot re-read the signing keys: %s", exc)
            finally:
                self._reloading.release()

        threading.Thread(target=run, name="embedauth-keys", daemon=True).start()

    def published(self) -> list[LoadedKey]:
        """The keys in the JWKS now (reloading the ring when it is due)."""
        self._ensure_loaded()
        now = self._clock()
        return [k for k in self._keys.values() if now < k.unpublished_at]

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517) of every published asymmetric key."""
        return {"keys": [json.loads(k.record.public_jwk) for k in self.published() if k.alg != "HS256"]}

    # ------------------------------------------------------------------ signing

    def signing_key(self) -> tuple[LoadedKey, Any]:
        """The key that signs now, and its private key; creates the first key if there is none."""
        self._ensure_loaded()
        active = self._active(self._clock())
        if active is None:
            active = self._first_key()
        private = self._private.get(active.kid)
        if private is None:
            private = self._private[active.kid] = self._decrypt(active.record)
        return active, private

    def _first_key(self) -> LoadedKey:
        """Create the first signing key, once for the deployment however many processes start.

        The process that claims the creation (a one-time key in storage) creates it; the others
        re-read the ring until it appears, and create one themselves only if it does not within
        ``_FIRST_KEY_WAIT`` seconds (the claimer died): any number of keys still works, one is tidier.
        """
        claim = utcnow(self._clock) + timedelta(seconds=_FIRST_KEY_WAIT)
        if not self._storage.consume_once(_FIRST_KEY_CLAIM, expires_at=claim):
            deadline = time.monotonic() + _FIRST_KEY_WAIT
            while time.monotonic() < deadline:
                time.sleep(0.05)
                self.reload()
                active = self._active(self._clock())
                if active is not None:
                    return active
        self._create(activates_at=utcnow(self._clock))
        self.reload()
        active = self._active(self._clock())
        assert active is not None
        return active

    def _active(self, now: float) -> LoadedKey | None:
        signing = [k for k in self._keys.values() if k.signs_from <= now < k.signs_until]
        if len(signing) == 1:  # the usual case, outside a rotation's overlap
            return signing[0]
        return max(signing, key=lambda k: (k.record.activates_at, k.kid), default=None)

    # ------------------------------------------------------------------ rotating

    def rotate(self, *, algorithm: str | None = None) -> SigningKey:
        """Publish the next key now; it signs from ``key_publish_ahead`` seconds on.

        Every key still due to sign retires at that moment and stays published until the tokens
        it signed have expired. Keys past their publication are deleted.
        """
        alg = self._checked_algorithm(algorithm)
        self.reload()
        now = utcnow(self._clock)
        signing_now = self._active(to_timestamp(now)) is not None
        activates_at = now + timedelta(seconds=self._settings.key_publish_ahead) if signing_now else now
        lifetime = timedelta(seconds=self._settings.max_token_age)
        for key in list(self._keys.values()):
            record = key.record
            if record.expires_at is not None and record.expires_at <= now:
                self._storage.delete_signing_key(record.kid)
            elif record.retires_at is None or record.retires_at > activates_at:
                if record.activates_at < activates_at:  # signs until the new key takes over
                    retired = dataclasses.replace(
                        record, retires_at=activates_at, expires_at=activates_at + lifetime
                    )
                else:  # would never sign: withdraw it
                    retired = dataclasses.replace(record, retires_at=record.activates_at, expires_at=now)
                self._storage.save_signing_key(retired)
        created = self._create(activates_at=activates_at, algorithm=alg)
        self.reload()
        return created

    def _checked_algorithm(self, algorithm: str | None) -> str:
        alg = algorithm or self._settings.signing_algorithm
        if alg not in self._settings.algorithms:
            raise ConfigurationError(f"algorithm {alg} is not in the configured algorithms")
        return alg

    def _create(self, *, activates_at: datetime, algorithm: str | None = None) -> SigningKey:
        alg = self._checked_algorithm(algorithm)
        kid = new_id()
        private_key, public_jwk = _generate(alg, kid)
        der = (
            private_key
            if isinstance(private_key, bytes)
            else private_key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        record = SigningKey(
            kid=kid,
            alg=alg,
            public_jwk=json.dumps(public_jwk, separators=(",", ":"), sort_keys=True),
            private_key=self._encrypt(kid, der),
            encrypted=self._kek is not None,
            created_at=utcnow(self._clock),
            activates_at=activates_at,
        )
        if self._kek is None:
            if not self._settings.allow_unencrypted_keys:
                raise ConfigurationError(NO_KEY_ENCRYPTION_KEY)
            log.warning(
                "embedauth: signing key %s is stored UNENCRYPTED (allow_unencrypted_keys is set)", kid
            )
        self._storage.add_signing_key(record)
        return record

    # ------------------------------------------------------------------ withdrawing

    def withdraw(self, kid: str) -> SigningKey:
        """Withdraw a key at once (it leaked): its tokens are refused everywhere, it leaves the JWKS.

        When it was the key signing now, a new one signs at once (not ``key_publish_ahead``
        later: remote verifiers fetch it on its first unknown kid).
        """
        record = next((k for k in self._storage.list_signing_keys() if k.kid == kid), None)
        if record is None:
            raise NotFound(f"no signing key {kid!r}")
        self._revocations.revoke(self._revocations.entry(RevocationKind.SIGNING_KEY, kid))
        self._storage.delete_signing_key(kid)
        self._private.pop(kid, None)
        self.reload()
        if self._active(self._clock()) is None:
            self._create(activates_at=utcnow(self._clock), algorithm=record.alg)
            self.reload()
        return record

    # ------------------------------------------------------------------ at rest

    def _encrypt(self, kid: str, der: bytes) -> bytes:
        if self._kek is None:
            return der
        nonce = os.urandom(_NONCE)
        return nonce + self._kek.encrypt(nonce, der, kid.encode())

    def _decrypt(self, record: SigningKey) -> Any:
        raw = record.private_key
        if record.encrypted:
            if self._kek is None:
                raise ConfigurationError(f"signing key {record.kid} is encrypted: set key_encryption_key")
            try:
                raw = self._kek.decrypt(raw[:_NONCE], raw[_NONCE:], record.kid.encode())
            except InvalidTag:
                raise ConfigurationError(f"signing key {record.kid}: wrong key_encryption_key") from None
        if record.alg == "HS256":
            return raw
        return serialization.load_der_private_key(raw, None)

    def _load(self, record: SigningKey) -> LoadedKey:
        if record.alg == "HS256":
            return LoadedKey(record, jws.verifier("HS256", self._decrypt(record)))
        public = jwt.PyJWK.from_json(record.public_jwk).key
        return LoadedKey(record, jws.verifier(record.alg, public, low_s_only=True))


def _generate(alg: str, kid: str) -> tuple[PrivateKeyTypes | bytes, dict[str, Any]]:
    private: PrivateKeyTypes
    if alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        jwk = jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif alg == "HS256":
        return os.urandom(32), {"kty": "oct", "kid": kid, "alg": alg}
    else:
        raise ConfigurationError(f"cannot sign with {alg}: use RS256, ES256, EdDSA or HS256")
    return private, {**jwk, "kid": kid, "alg": alg, "use": "sig"}


#: What a deployment without a key-encryption key is told.
NO_KEY_ENCRYPTION_KEY = (
    "signing keys are encrypted at rest, and this storage has no key-encryption key: set "
    "EMBEDAUTH_KEY_ENCRYPTION_KEY (key_encryption_key) to the same secret on every instance; make one with "
    "`embedauth keys generate-kek` (or set allow_unencrypted_keys to store them in plain text)"
)


def new_key_encryption_key() -> str:
    """A new key-encryption key: base64url of 32 random bytes."""
    return jws.b64encode(os.urandom(32))


def _key_encryption_key(text: str | None, storage_url: str) -> AESGCM | None:
    """The configured key, else SQLite's key file, else a process key for ``memory://``."""
    if text is None:
        scheme, _, rest = storage_url.partition("://")
        if scheme == "memory":
            return AESGCM(os.urandom(32))
        if scheme.split("+")[0] == "sqlite" and rest.startswith("/"):
            text = _key_file(Path(rest[1:].partition("?")[0] + ".kek"))
        else:
            return None
    try:
        raw = jws.b64decode(text.strip())
    except jws.Refused:
        raw = b""
    if len(raw) != 32:
        raise ConfigurationError("key_encryption_key must be base64url of exactly 32 bytes")
    return AESGCM(raw)


def _key_file(path: Path) -> str:
    """The key in ``path``, created (readable by its owner only) if it does not exist."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text("ascii")
    except OSError as exc:
        raise ConfigurationError(f"cannot create the key-encryption key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as file:
        file.write(new_key_encryption_key())
    log.info(
        "embedauth: created %s, the key that encrypts the signing keys; back it up with the database", path
    )
    return path.read_text("ascii")

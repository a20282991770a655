"""The registration lifecycle: create, read, edit, secrets, certificates, pause, renew, delete.

Every change is read-modify-write under the storage's compare-and-set on ``version``
(:meth:`Registrations._change`): two admins rotating the same secret at once are applied one after
the other, never merged into two "current" secrets, and none is lost. A change that ends a
credential's or the registration's validity also appends a revocation entry, so tokens it produced
stop verifying everywhere (see :mod:`embedauth.tokens.revocation`).
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import typing
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import pluggy

from embedauth import validation
from embedauth.clock import Clock, isoformat, utcnow
from embedauth.config import Settings
from embedauth.credentials.certificates import parse_certificate
from embedauth.credentials.secrets import SecretHasher, generate_client_secret, hint, new_client_id, new_id
from embedauth.errors import (
    Conflict,
    CredentialNotFound,
    EmbedAuthError,
    InvalidCertificate,
    InvalidInput,
    RegistrationNotFound,
    TooManySecrets,
    UnknownPermission,
)
from embedauth.models import (
    DELETED_GENERATION,
    CertificateCredential,
    CreatedSecret,
    CustomerScope,
    Page,
    Registration,
    Revocation,
    RevocationKind,
    SecretCredential,
)
from embedauth.registry.audit import Audit
from embedauth.storage.base import RegistrationSort, Storage
from embedauth.tokens.revocation import RevocationState

__all__ = ["SORTS", "Registrations", "TenantRegistrations"]

log = logging.getLogger(__name__)

MAX_PAGE = 500
#: The orders a listing may take (:meth:`Registrations.list`).
SORTS: tuple[RegistrationSort, ...] = typing.get_args(RegistrationSort)
_CAS_ATTEMPTS = 50


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


class Registrations:
    """``auth.registrations``: the admin's operations on app registrations."""

    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        clock: Clock,
        hasher: SecretHasher,
        plugins: pluggy.PluginManager,
        revocations: RevocationState,
        audit: Audit,
    ) -> None:
        self._revocations = revocations
        self._audit = audit
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._hasher = hasher
        self._plugins = plugins
        self._hook = plugins.hook

    # ------------------------------------------------------------------ reading

    def _lookup(self, client_id: object) -> Registration | None:
        """The registration, or None; anything that cannot be a client ID never reaches storage."""
        if not validation.is_client_id(client_id):
            return None
        return self._storage.get_registration(client_id)

    def get(self, client_id: str) -> Registration:
        """The registration, or :class:`~embedauth.errors.RegistrationNotFound`."""
        registration = self._lookup(client_id)
        if registration is None:
            raise RegistrationNotFound(f"no registration with client ID {client_id!r}")
        return registration

    def list(
        self,
        tenant: str | Collection[str] | None = None,
        *,
        name_contains: str | None = None,
        holding: str | None = None,
        expires_before: datetime | None = None,
        sort: RegistrationSort = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Registration]:
        """One page of registrations: the tenant's, any of several tenants', or (None) every tenant's.

        Filtered by a case-insensitive substring of the name, with ``holding`` to those that hold
        that permission, and with ``expires_before`` to those that stop working before then (the
        expired ones too); ordered by ``sort`` (``created_at``,
        ``name``, ``last_used_at``, ``expires_at`` or ``enabled``, then by age), ``descending``
        reversing it.
        """
        tenants: str | frozenset[str] | None
        if isinstance(tenant, str):
            tenants = validation.parse_identifier(tenant, "tenant")
        elif tenant is not None:
            tenants = frozenset(validation.parse_identifier(t, "tenant") for t in tenant)
        else:
            tenants = None
        if sort not in SORTS:
            raise InvalidInput(f"sort must be one of {', '.join(SORTS)}", field="sort")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInput("offset must be >= 0", field="offset")
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
        return self._storage.list_registrations(
            tenants,
            name_contains=validation.parse_search(name_contains),
            holding=None if holding is None else validation.parse_permission_name(holding, field="holding"),
            expires_before=expires_before,
            sort=sort,
            descending=bool(descending),
            offset=offset,
            limit=limit,
        )

    def for_tenants(
        self, tenants: Iterable[str] | None, *, actor: str, source: str | None = None
    ) -> TenantRegistrations:
        """These operations bound to ``tenants``: another tenant's registration does not exist there.

        The way to build a customer-facing UI: ``actor`` (who is acting) and ``source`` (from
        where: a remote address, ``cli``) are reported with every change to the
        ``embedauth_admin_action`` hook and stored in the audit trail. ``tenants=None`` spans every
        tenant (an operator's tools, such as the ``embedauth`` command).
        """
        return TenantRegistrations(self, tenants, actor=actor, audit=self._audit, source=source)

    # ------------------------------------------------------------------ creating

    def create(
        self,
        *,
        tenant: str,
        name: str,
        description: str | None = None,
        scopes: Iterable[str] | str | None = None,
        customer_scope: CustomerScope | str | None = None,
        secret_days: int | None = None,
        secret_expires_at: datetime | None = None,
        expires_at: datetime | None = None,
        enabled: bool = True,
    ) -> CreatedSecret:
        """A new registration and its first secret: the only time that secret is visible.

        ``secret_days`` is one of the configured lifetimes (365, 730, 1095 by default), or
        ``secret_expires_at`` a custom date up to ``max_secret_days`` ahead. ``expires_at`` is an
        optional expiry of the registration itself.
        """
        now = utcnow(self._clock)
        client_secret, credential = self._new_secret(now, secret_days, secret_expires_at)
        registration = Registration(
            client_id=new_client_id(),
            tenant=validation.parse_identifier(tenant, "tenant"),
            name=validation.parse_name(name),
            description=validation.parse_description(description),
            scopes=validation.parse_scopes(scopes),
            customer_scope=validation.parse_customer_scope(customer_scope),
            enabled=bool(enabled),
            created_at=now,
            updated_at=now,
            registration_expires_at=self._registration_expiry(now, expires_at),
            secrets=(credential,),
        )
        self._storage.create_registration(registration)
        self._hook.embedauth_registration_created(registration=registration)
        return CreatedSecret(registration, credential, client_secret)

    # ------------------------------------------------------------------ editing

    def update(
        self,
        client_id: str,
        *,
        name: str | _Unset = UNSET,
        description: str | _Unset | None = UNSET,
        scopes: Iterable[str] | str | _Unset | None = UNSET,
        customer_scope: CustomerScope | str | _Unset | None = UNSET,
    ) -> Registration:
        """Change name, description, permissions or customer scope; omitted fields stay."""
        changes: dict[str, Any] = {}
        if not isinstance(name, _Unset):
            changes["name"] = validation.parse_name(name)
        if not isinstance(description, _Unset):
            changes["description"] = validation.parse_description(description)
        if not isinstance(scopes, _Unset):
            changes["scopes"] = validation.parse_scopes(scopes)
        if not isinstance(customer_scope, _Unset):
            changes["customer_scope"] = validation.parse_customer_scope(customer_scope)

        def edited(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            changed = dataclasses.replace(r, **changes)
            if _narrows(r, changed):  # tokens issued with the old rights stop verifying
                return self._next_generation(changed, revoke=True)
            return changed, ()

        registration, _ = self._change(client_id, "edit", edited)
        return registration

    def disable(self, client_id: str) -> Registration:
        """Pause: every token it holds stops verifying, and it gets no new ones until enabled."""
        registration, _ = self._change(
            client_id,
            "disable",
            lambda r, now: self._next_generation(dataclasses.replace(r, enabled=False), revoke=True),
        )
        return registration

    def enable(self, client_id: str) -> Registration:
        """Restore: it may get new tokens again (tokens from before the pause stay revoked)."""
        registration, _ = self._change(
            client_id,
            "enable",
            lambda r, now: self._next_generation(dataclasses.replace(r, enabled=True), revoke=False),
        )
        return registration

    def renew(
        self, client_id: str, *, days: int | None = None, expires_at: datetime | None = None
    ) -> Registration:
        """Move the registration's own expiry later: to ``expires_at``, or ``days`` from now."""
        if (days is None) == (expires_at is None):
            raise InvalidInput("renew takes either days or expires_at", field="days")

        def renewed(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            target = expires_at if expires_at is not None else now + timedelta(days=_positive_days(days))
            new_expiry = self._registration_expiry(now, target)
            if (
                r.registration_expires_at is not None
                and new_expiry is not None
                and new_expiry <= r.registration_expires_at
            ):
                raise InvalidInput(
                    f"the registration already expires at {r.registration_expires_at.isoformat()}",
                    field="expires_at" if expires_at is not None else "days",
                )
            return dataclasses.replace(r, registration_expires_at=new_expiry), ()

        registration, _ = self._change(client_id, "renew", renewed)
        return registration

    def delete(self, client_id: str) -> None:
        """Delete one registration (its tokens stop verifying); ``RegistrationNotFound`` if absent."""
        if not self.delete_many([client_id]):
            raise RegistrationNotFound(f"no registration with client ID {client_id!r}")

    def delete_many(self, client_ids: Sequence[str]) -> builtins.list[str]:
        """Delete those that exist; return their client IDs. Their tokens stop verifying."""
        registrations = [r for r in (self._lookup(cid) for cid in dict.fromkeys(client_ids)) if r]
        revoked = [
            self._revocations.write(
                self._revocations.entry(
                    RevocationKind.REGISTRATION, registration.client_id, generation=DELETED_GENERATION
                )
            )
            for registration in registrations
        ]
        deleted = self._storage.delete_registrations([r.client_id for r in registrations])
        self._revocations.record(*revoked)
        for client_id in deleted:
            self._revocations.announce_change(client_id)
        tenants = {r.client_id: r.tenant for r in registrations}
        for client_id in deleted:
            self._hook.embedauth_registration_deleted(client_id=client_id, tenant=tenants[client_id])
        return deleted

    # ------------------------------------------------------------------ secrets

    def rotate_secret(
        self,
        client_id: str,
        *,
        secret_days: int | None = None,
        secret_expires_at: datetime | None = None,
        grace: timedelta | None = None,
    ) -> CreatedSecret:
        """A new secret that replaces every other one: the old ones stop working at once.

        With ``grace`` (at most ``max_rotation_grace``), the old secrets that still work keep
        working until now + ``grace`` (or their own expiry, if sooner) and not a millisecond after,
        so that a fleet can switch without downtime: each is kept with that expiry and marked
        ``replaced_at``. The token endpoint refuses them from then on in every process (it reads
        the stored expiry), and a token obtained with one never outlives it.
        """
        grace = _grace(grace, self._settings.max_rotation_grace)
        new = [self._new_secret(utcnow(self._clock), secret_days, secret_expires_at)]

        def rotated(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            kept: list[SecretCredential] = []
            revoked: list[Revocation] = []
            for old in r.secrets:
                if grace and old.is_live(now):
                    until = min(old.expires_at, _to_millis(now + grace))
                    kept.append(
                        dataclasses.replace(old, expires_at=until, replaced_at=old.replaced_at or now)
                    )
                else:
                    revoked.append(self._revoke(RevocationKind.CREDENTIAL, old.id))
            # A secret's hint names the one hash to check it against: no two secrets share one.
            while new[0][1].hint in {s.hint for s in kept}:
                new[0] = self._new_secret(now, secret_days, secret_expires_at)
            return dataclasses.replace(r, secrets=(*kept, new[0][1])), tuple(revoked)

        registration, _ = self._change(client_id, None, rotated)
        client_secret, credential = new[0]
        self._hook.embedauth_secret_rotated(registration=registration, credential=credential)
        return CreatedSecret(registration, credential, client_secret)

    def add_secret(
        self, client_id: str, *, secret_days: int | None = None, secret_expires_at: datetime | None = None
    ) -> CreatedSecret:
        """A second secret beside the current one, for a switch without downtime."""
        new = [self._new_secret(utcnow(self._clock), secret_days, secret_expires_at)]

        def added(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            live = r.live_secrets(now)
            if len(live) >= self._settings.max_live_secrets:
                raise TooManySecrets(
                    f"registration {r.client_id} already has {len(live)} live secret(s), the most allowed; "
                    "delete one first"
                )
            # A secret's hint names the one hash to check it against: no two secrets share one.
            while new[0][1].hint in {s.hint for s in live}:
                new[0] = self._new_secret(now, secret_days, secret_expires_at)
            return dataclasses.replace(r, secrets=(*live, new[0][1])), ()

        registration, _ = self._change(client_id, "add_secret", added)
        client_secret, credential = new[0]
        return CreatedSecret(registration, credential, client_secret)

    def delete_secret(self, client_id: str, secret_id: str) -> Registration:
        """Delete one secret; tokens obtained with it stop verifying."""

        def deleted(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            if not any(s.id == secret_id for s in r.secrets):
                raise CredentialNotFound(f"registration {r.client_id} has no secret {secret_id!r}")
            remaining = tuple(s for s in r.secrets if s.id != secret_id)
            return dataclasses.replace(r, secrets=remaining), (
                self._revoke(RevocationKind.CREDENTIAL, secret_id),
            )

        registration, _ = self._change(client_id, "delete_secret", deleted)
        return registration

    # ------------------------------------------------------------------ certificates

    def add_certificate(self, client_id: str, certificate: bytes | str) -> CertificateCredential:
        """Register a certificate (PEM or DER) whose private key may sign client assertions.

        Refused when it is valid further ahead than ``max_certificate_days`` (a credential that
        never has to be replaced is one nobody will know how to replace).
        """
        now = utcnow(self._clock)
        parsed = parse_certificate(certificate, now=now)
        longest = self._settings.max_certificate_days
        if parsed.not_after > now + timedelta(days=longest):
            raise InvalidCertificate(
                f"the certificate is valid until {parsed.not_after:%Y-%m-%d}: at most {longest} days "
                f"ahead are accepted (as for secrets); issue one that expires by "
                f"{now + timedelta(days=longest):%Y-%m-%d}"
            )
        credential = CertificateCredential(
            id=new_id(),
            thumbprint=parsed.thumbprint,
            subject=parsed.subject,
            key_type=parsed.key_type,
            public_key_pem=parsed.public_key_pem,
            not_before=parsed.not_before,
            not_after=parsed.not_after,
            created_at=now,
        )

        def added(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            if any(c.thumbprint == credential.thumbprint for c in r.certificates):
                raise Conflict(f"registration {r.client_id} already has this certificate")
            return dataclasses.replace(r, certificates=(*r.certificates, credential)), ()

        self._change(client_id, "add_certificate", added)
        return credential

    def remove_certificate(self, client_id: str, certificate_id: str) -> Registration:
        """Remove a certificate by its id or thumbprint; tokens it produced stop verifying."""

        def removed(r: Registration, now: datetime) -> tuple[Registration, tuple[Revocation, ...]]:
            gone = [c for c in r.certificates if certificate_id in (c.id, c.thumbprint)]
            if not gone:
                raise CredentialNotFound(f"registration {r.client_id} has no certificate {certificate_id!r}")
            remaining = tuple(c for c in r.certificates if c not in gone)
            return dataclasses.replace(r, certificates=remaining), (
                self._revoke(RevocationKind.CREDENTIAL, gone[0].id),
            )

        registration, _ = self._change(client_id, "remove_certificate", removed)
        return registration

    # ------------------------------------------------------------------ the machinery

    def _change(
        self,
        client_id: str,
        action: str | None,
        mutate: Callable[[Registration, datetime], tuple[Registration, tuple[Revocation, ...]]],
    ) -> tuple[Registration, tuple[Revocation, ...]]:
        """Apply ``mutate`` to the latest stored version until the compare-and-set succeeds.

        Revocations are written before the change is visible, so no verifier ever sees the new
        state without the revocation that goes with it, and a crash between the two refuses more,
        never less; this process applies them at once when the change is saved. A change that
        fails after its revocations were written would leave the registration's current tokens
        refused: :meth:`_heal` then moves the registration to the generation they revoke, so that
        new tokens verify again. Once saved, the change is announced to every process's
        registration view (:mod:`embedauth.registry.view`).
        """
        generation = 0
        written: list[Revocation] = []  # stored, so applied here too whatever happens next
        try:
            for _ in range(_CAS_ATTEMPTS):
                current = self.get(client_id)
                now = utcnow(self._clock)
                changed, revocations = mutate(current, now)
                changed = dataclasses.replace(
                    changed, version=current.version + 1, updated_at=max(now, current.updated_at)
                )
                self._check_scopes(changed.scopes)  # before any revocation is written
                # What to heal to if anything below fails: a write that timed out may have landed.
                generation = max(
                    [
                        generation,
                        *(r.generation for r in revocations if r.kind is RevocationKind.REGISTRATION),
                    ]
                )
                for revocation in revocations:
                    written.append(self._revocations.write(revocation))
                if self._storage.save_registration(changed, expected_version=current.version):
                    self._revocations.record(*written)
                    self._revocations.announce_change(client_id)
                    if action is not None:
                        self._hook.embedauth_registration_updated(registration=changed, action=action)
                    return changed, revocations
            raise Conflict(f"registration {client_id} is being changed by others; try again")
        except BaseException:
            self._revocations.record(*written)  # refuse more, never less, here as everywhere else
            if generation:
                self._heal(client_id, generation)
            raise

    def _heal(self, client_id: str, generation: int) -> None:
        """Best effort: the registration at least at ``generation`` (nothing else changes)."""
        try:
            for _ in range(_CAS_ATTEMPTS):
                current = self._lookup(client_id)
                if current is None or current.generation >= generation:
                    return
                healed = dataclasses.replace(current, generation=generation, version=current.version + 1)
                if self._storage.save_registration(healed, expected_version=current.version):
                    self._revocations.announce_change(client_id)
                    return
        except EmbedAuthError as exc:
            log.error(
                "embedauth: registration %s stays refused until its revocation entry expires: %s",
                client_id,
                exc,
            )

    def _check_scopes(self, scopes: Sequence[str]) -> None:
        """``UnknownPermission`` for scopes not in the catalog (storage checks again, atomically)."""
        missing = [name for name in scopes if self._storage.get_permission(name) is None]
        if missing:
            raise UnknownPermission(f"not in the permission catalog: {', '.join(missing)}")

    def _revoke(self, kind: RevocationKind, subject: str) -> Revocation:
        return self._revocations.entry(kind, subject)

    def _next_generation(
        self, registration: Registration, *, revoke: bool
    ) -> tuple[Registration, tuple[Revocation, ...]]:
        """The registration one generation on; with ``revoke``, tokens of earlier ones are refused."""
        bumped = dataclasses.replace(registration, generation=registration.generation + 1)
        if not revoke:
            return bumped, ()
        return bumped, (
            self._revocations.entry(
                RevocationKind.REGISTRATION, bumped.client_id, generation=bumped.generation
            ),
        )

    def _new_secret(
        self, now: datetime, days: int | None, expires_at: datetime | None
    ) -> tuple[str, SecretCredential]:
        settings = self._settings
        if days is not None and expires_at is not None:
            raise InvalidInput("give either secret_days or secret_expires_at, not both", field="secret_days")
        if expires_at is None:
            days = settings.default_secret_days if days is None else days
            if days not in settings.secret_lifetime_days:
                choices = ", ".join(str(d) for d in settings.secret_lifetime_days)
                raise InvalidInput(
                    f"secret lifetime must be one of {choices} days, or a custom date", field="secret_days"
                )
            expires_at = now + timedelta(days=days)
        else:
            _check_future(expires_at, now, settings.max_secret_days, "secret expiry", "secret_expires_at")
        client_secret = generate_client_secret()
        credential = SecretCredential(
            id=new_id(),
            hint=hint(client_secret),
            secret_hash=self._hasher.hash(client_secret),
            created_at=now,
            expires_at=_to_millis(expires_at),
        )
        return client_secret, credential

    def _registration_expiry(self, now: datetime, expires_at: datetime | None) -> datetime | None:
        if expires_at is None:
            return None
        _check_future(
            expires_at, now, self._settings.max_registration_days, "registration expiry", "expires_at"
        )
        return _to_millis(expires_at)


def _check_future(moment: datetime, now: datetime, max_days: int, what: str, field: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidInput(f"{what} must be a timezone-aware date and time", field=field)
    if moment <= now:
        raise InvalidInput(f"{what} must be in the future", field=field)
    if moment > now + timedelta(days=max_days):
        raise InvalidInput(f"{what} can be at most {max_days} days ahead", field=field)


def _grace(grace: timedelta | None, longest: int) -> timedelta | None:
    """A rotation's grace period: None (or zero) for none; refused when negative or too long."""
    if grace is None:
        return None
    if not isinstance(grace, timedelta):
        raise InvalidInput("grace is a duration (timedelta)", field="grace")
    if grace < timedelta(0):
        raise InvalidInput("grace cannot be negative", field="grace")
    if grace > timedelta(seconds=longest):
        raise InvalidInput(f"grace can be at most {longest} seconds (max_rotation_grace)", field="grace")
    return grace or None


def _positive_days(days: int | None) -> int:
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise InvalidInput("days must be a whole number of at least 1", field="days")
    return days


def _to_millis(moment: datetime) -> datetime:
    """Truncated to the millisecond, the precision every backend stores."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _narrows(old: Registration, new: Registration) -> bool:
    """Whether ``new`` takes away a right ``old`` had (a scope, or customers it could reach)."""
    return not set(new.scopes) >= set(old.scopes) or not new.customer_scope.includes(old.customer_scope)


class TenantRegistrations:
    """:class:`Registrations` bound to a set of tenants, every change reported with who made it.

    Made by :meth:`Registrations.for_tenants`. A registration of another tenant answers exactly as
    one that does not exist (:class:`~embedauth.errors.RegistrationNotFound`), so a tenant admin
    learns nothing of other tenants; ``delete_many`` reports it as not found. After each change the
    ``embedauth_admin_action`` hook hears the actor, the action, the tenant and the client ID.
    """

    def __init__(
        self,
        registrations: Registrations,
        tenants: Iterable[str] | None,
        *,
        actor: str,
        audit: Audit,
        source: str | None = None,
    ) -> None:
        self._all = registrations
        #: The tenants it reaches; None: every tenant.
        self.tenants = validation.parse_tenants(tenants)
        self.actor = validation.parse_actor(actor)
        self.source = source
        self._audit_trail = audit

    def _own(self, client_id: str) -> Registration:
        registration = self._all.get(client_id)
        if self.tenants is not None and registration.tenant not in self.tenants:
            raise RegistrationNotFound(f"no registration with client ID {client_id!r}")
        return registration

    def _audit(self, action: str, registration: Registration, **detail: Any) -> None:
        self._audit_trail.admin_action(
            actor=self.actor,
            action=f"registration.{action}",
            tenant=registration.tenant,
            target=registration.client_id,
            detail=detail,
            source=self.source,
        )

    # ------------------------------------------------------------------ reading

    def get(self, client_id: str) -> Registration:
        """The registration, if it belongs to one of these tenants."""
        return self._own(client_id)

    def list(
        self,
        tenant: str | None = None,
        *,
        name_contains: str | None = None,
        holding: str | None = None,
        expires_before: datetime | None = None,
        sort: RegistrationSort = "created_at",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Registration]:
        """As :meth:`Registrations.list`, over these tenants (or ``tenant``, when it is one of them;
        another tenant's list is empty)."""
        chosen: str | Collection[str] | None
        if self.tenants is None:
            chosen = tenant
        else:
            chosen = self.tenants if tenant is None else self.tenants & {tenant}
        return self._all.list(
            chosen,
            name_contains=name_contains,
            holding=holding,
            expires_before=expires_before,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
        )

    # ------------------------------------------------------------------ changing

    def create(self, *, tenant: str, **options: Any) -> CreatedSecret:
        """As :meth:`Registrations.create`, in one of these tenants."""
        if self.tenants is not None and tenant not in self.tenants:
            raise InvalidInput(f"tenant {tenant!r} is not one you manage", field="tenant")
        created = self._all.create(tenant=tenant, **options)
        self._audit("create", created.registration, scopes=list(created.registration.scopes))
        return created

    def update(self, client_id: str, **changes: Any) -> Registration:
        """As :meth:`Registrations.update`."""
        self._own(client_id)
        registration = self._all.update(client_id, **changes)
        self._audit("update", registration, fields=sorted(changes))
        return registration

    def disable(self, client_id: str) -> Registration:
        """As :meth:`Registrations.disable`."""
        self._own(client_id)
        registration = self._all.disable(client_id)
        self._audit("disable", registration)
        return registration

    def enable(self, client_id: str) -> Registration:
        """As :meth:`Registrations.enable`."""
        self._own(client_id)
        registration = self._all.enable(client_id)
        self._audit("enable", registration)
        return registration

    def renew(
        self, client_id: str, *, days: int | None = None, expires_at: datetime | None = None
    ) -> Registration:
        """As :meth:`Registrations.renew`."""
        self._own(client_id)
        registration = self._all.renew(client_id, days=days, expires_at=expires_at)
        self._audit("renew", registration, expires_at=_iso(registration.registration_expires_at))
        return registration

    def delete(self, client_id: str) -> None:
        """As :meth:`Registrations.delete`."""
        registration = self._own(client_id)
        self._all.delete(client_id)
        self._audit("delete", registration)

    def delete_many(self, client_ids: Sequence[str]) -> builtins.list[str]:
        """As :meth:`Registrations.delete_many`; another tenant's are left alone, as not found."""
        own: dict[str, Registration] = {}
        for client_id in dict.fromkeys(client_ids):
            try:
                own[client_id] = self._own(client_id)
            except RegistrationNotFound:
                continue
        deleted = self._all.delete_many(builtins.list(own))
        for client_id in deleted:
            self._audit("delete", own[client_id])
        return deleted

    def rotate_secret(self, client_id: str, **options: Any) -> CreatedSecret:
        """As :meth:`Registrations.rotate_secret`: every earlier secret dead at once, or at the end
        of its ``grace``."""
        self._own(client_id)
        created = self._all.rotate_secret(client_id, **options)
        grace = options.get("grace")
        kept = [s.id for s in created.registration.secrets if s.id != created.credential.id]
        self._audit(
            "rotate_secret",
            created.registration,
            secret_id=created.credential.id,
            grace_seconds=int(grace.total_seconds()) if grace else 0,
            still_valid=kept,
        )
        return created

    def add_secret(self, client_id: str, **options: Any) -> CreatedSecret:
        """As :meth:`Registrations.add_secret`."""
        self._own(client_id)
        created = self._all.add_secret(client_id, **options)
        self._audit("add_secret", created.registration, secret_id=created.credential.id)
        return created

    def delete_secret(self, client_id: str, secret_id: str) -> Registration:
        """As :meth:`Registrations.delete_secret`."""
        self._own(client_id)
        registration = self._all.delete_secret(client_id, secret_id)
        self._audit("delete_secret", registration, secret_id=secret_id)
        return registration

    def add_certificate(self, client_id: str, certificate: bytes | str) -> CertificateCredential:
        """As :meth:`Registrations.add_certificate`."""
        registration = self._own(client_id)
        credential = self._all.add_certificate(client_id, certificate)
        self._audit(
            "add_certificate", registration, certificate_id=credential.id, thumbprint=credential.thumbprint
        )
        return credential

    def remove_certificate(self, client_id: str, certificate_id: str) -> Registration:
        """As :meth:`Registrations.remove_certificate`."""
        self._own(client_id)
        registration = self._all.remove_certificate(client_id, certificate_id)
        self._audit("remove_certificate", registration, certificate=certificate_id)
        return registration


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)

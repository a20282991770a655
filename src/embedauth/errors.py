"""Every error embedauth raises, in one tree.

    EmbedAuthError
    ├── ConfigurationError        settings or a storage URL that cannot work
    ├── StorageError              a backend's driver failed (the driver's error is the __cause__)
    ├── InvalidInput              a caller's mistake; the message says what to fix
    │   ├── UnknownPermission     a scope that is not in the permission catalog
    │   ├── InvalidCertificate    garbage, a private key, expired, or a weak key
    │   └── InvalidSecret         a malformed secret (wrong prefix, length or checksum)
    ├── NotFound
    │   ├── RegistrationNotFound
    │   ├── PermissionNotFound
    │   ├── CredentialNotFound
    │   └── RefreshTokenNotFound
    ├── Conflict
    │   ├── AlreadyExists
    │   ├── PermissionInUse       a registration still holds the permission
    │   └── TooManySecrets        the registration already has the most live secrets allowed
    ├── InvalidToken              every way a token or assertion can be wrong; no oracle
    └── OAuthError                an RFC 6749 §5.2 error: code, HTTP status, description
        ├── InvalidRequest
        ├── InvalidClient
        ├── InvalidGrant
        ├── UnauthorizedClient
        ├── UnsupportedGrantType
        ├── InvalidScope
        ├── TooManyAttempts       429: too many failed authentications lately (Retry-After)
        └── Busy                  503: too many argon2 runs waiting (Retry-After)

User mistakes are `InvalidInput`, `NotFound` or `Conflict`: the CLI prints their message on one line
and exits non-zero. `InvalidToken` deliberately carries no reason: the reason goes to the audit hook.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "Busy",
    "ConfigurationError",
    "Conflict",
    "CredentialNotFound",
    "EmbedAuthError",
    "Forbidden",
    "InvalidCertificate",
    "InvalidClient",
    "InvalidGrant",
    "InvalidInput",
    "InvalidRequest",
    "InvalidScope",
    "InvalidSecret",
    "InvalidToken",
    "NotFound",
    "OAuthError",
    "PermissionInUse",
    "PermissionNotFound",
    "RefreshTokenNotFound",
    "RegistrationNotFound",
    "StorageError",
    "TooManyAttempts",
    "TooManySecrets",
    "UnauthorizedClient",
    "UnknownPermission",
    "UnsupportedGrantType",
]


class EmbedAuthError(Exception):
    """The root of every error embedauth raises."""


class ConfigurationError(EmbedAuthError):
    """Settings, or a storage URL, that cannot work."""


class StorageError(EmbedAuthError):
    """A storage backend failed; the driver's own exception is ``__cause__``."""


class InvalidInput(EmbedAuthError, ValueError):
    """A caller's mistake; the message says what to fix, and ``field`` which argument (when known)."""

    #: The argument or field refused (``"name"``, ``"scopes"``…), or None.
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field


class UnknownPermission(InvalidInput):
    """A scope that is not in the permission catalog."""

    field = "scopes"


class InvalidCertificate(InvalidInput):
    """A certificate that cannot be a credential."""

    field = "certificate"


class InvalidSecret(InvalidInput):
    """A secret or refresh token that is malformed (prefix, length, alphabet or checksum)."""


class NotFound(EmbedAuthError, LookupError):
    """The thing asked for does not exist."""


class RegistrationNotFound(NotFound):
    """No registration with that client ID (or none the caller may see)."""


class PermissionNotFound(NotFound):
    """No permission of that name in the catalog."""


class CredentialNotFound(NotFound):
    """No secret or certificate with that id on the registration."""


class RefreshTokenNotFound(NotFound):
    """No refresh token with that id."""


class AppNotFound(NotFound):
    """No app with that id (or none the caller may see)."""


class Forbidden(EmbedAuthError):
    """The caller is known but may not do this (an admin who does not manage the catalog)."""


class Conflict(EmbedAuthError):
    """The change contradicts the stored state."""


class AlreadyExists(Conflict):
    """Something with that name or id exists already."""


class PermissionInUse(Conflict):
    """A permission cannot be removed while a registration holds it."""


class TooManySecrets(Conflict):
    """The registration already has the most live secrets allowed."""


class InvalidToken(EmbedAuthError):
    """A token or client assertion that cannot be accepted, whatever the reason.

    Like ``cryptography.fernet.InvalidToken``: one type, one message, so a caller learns nothing
    about which check failed. The reason is reported to the ``embedauth_token_denied`` hook, and
    the built-in logging plugin writes it to the ``embedauth`` logger at INFO.
    """

    def __init__(self) -> None:
        super().__init__("invalid token")


class OAuthError(EmbedAuthError):
    """An OAuth 2.0 error response (RFC 6749 §5.2) that renders itself."""

    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(self, description: str | None = None) -> None:
        super().__init__(description or self.error)
        self.description = description
        #: Seconds to wait before trying again, sent as ``Retry-After`` when set.
        self.retry_after: int | None = None
        #: Why, in the server's words, for the log and the audit trail only (never sent).
        self.internal_reason: str | None = None
        #: The client (or refresh token) the refusal concerns, its tenant and who holds it, when known.
        self.refused_client_id: str | None = None
        self.refused_tenant: str | None = None
        self.refused_actor: str | None = None

    def body(self) -> dict[str, str]:
        """The RFC 6749 §5.2 JSON body: ``error`` and, when there is one, ``error_description``."""
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body

    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers the response carries besides the JSON ones (``Retry-After`` when there is a wait)."""
        return () if self.retry_after is None else (("Retry-After", str(self.retry_after)),)


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2 ``invalid_request``: a missing, repeated or malformed parameter."""

    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: 401, with ``WWW-Authenticate`` when the client used HTTP Basic."""

    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2 ``invalid_grant``: the refresh token is invalid, revoked or idle too long."""

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2 ``unauthorized_client``: e.g. revoking another client's token."""

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2 ``unsupported_grant_type``: a grant type other than those offered."""

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """RFC 6749 §5.2 ``invalid_scope``: a requested scope is malformed or not granted."""

    error = "invalid_scope"


class TooManyAttempts(OAuthError):
    """429: this client ID or source address failed to authenticate too often; try after a wait."""

    error = "temporarily_unavailable"
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; retry after {retry_after} s")
        self.retry_after = retry_after


class Busy(OAuthError):
    """503: too many secret verifications are waiting for a turn; try again in a moment."""

    error = "temporarily_unavailable"
    status = 503

    def __init__(self) -> None:
        super().__init__("the server is busy; retry in a moment")
        self.retry_after = 1

"""Parsers for what callers type: identifiers, scopes, customer scopes, names and lifetimes.

Each returns the canonical value or raises :class:`~embedauth.errors.InvalidInput` with a message a
person can act on. Property-tested in ``tests/test_validation.py``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import TypeGuard

from embedauth.errors import InvalidInput
from embedauth.models import CustomerScope, CustomerScopeKind

__all__ = [
    "IDENTIFIER",
    "PERMISSION_NAME",
    "SEARCH_FORBIDDEN",
    "is_client_id",
    "parse_actor",
    "parse_customer_scope",
    "parse_description",
    "parse_identifier",
    "parse_name",
    "parse_permission_name",
    "parse_scopes",
    "parse_search",
    "parse_tenants",
]

# A strict subset of RFC 6749 §3.3 scope-token (%x21 / %x23-5B / %x5D-7E): a permission name is also
# safe in a URL path, a Redis key and a log line.
#: A permission name (an OAuth scope token).
PERMISSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}")
#: A tenant, user, customer or group id.
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
MAX_NAME = 200
MAX_DESCRIPTION = 2000


#: What search text may not hold (C0 and C1 control characters), as a regex both Python and
#: JSON Schema read alike.
SEARCH_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_CLIENT_ID = re.compile(r"[\x20-\x7e]{1,255}")


def is_client_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` could be a client ID at all (RFC 6749 §2.2 allows printable ASCII).

    Checked before any lookup, so a NUL byte or a megabyte of text never reaches a database.
    """
    return isinstance(value, str) and _CLIENT_ID.fullmatch(value) is not None


def parse_identifier(value: str, what: str, *, field: str | None = None) -> str:
    """A tenant, user or customer id: 1-128 of ``A-Z a-z 0-9 . _ : @ -``, starting alphanumeric."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise InvalidInput(
            f"{what} must be 1-128 characters of letters, digits and . _ : @ -, "
            f"starting with a letter or digit; got {value!r}",
            field=field or what,
        )
    return value


def parse_permission_name(value: str, *, field: str = "name") -> str:
    """A permission name (an OAuth scope token): 1-128 of ``A-Z a-z 0-9 . _ : / -``."""
    if not isinstance(value, str) or not PERMISSION_NAME.fullmatch(value):
        raise InvalidInput(
            "a permission name must be 1-128 characters of letters, digits and . _ : / -, "
            f"starting with a letter or digit; got {value!r}",
            field=field,
        )
    return value


def parse_scopes(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Scopes from a space-separated string (RFC 6749 §3.3) or an iterable: sorted, unique."""
    if value is None:
        return ()
    items = value.split(" ") if isinstance(value, str) else list(value)
    if isinstance(value, str) and value and "" in items:
        raise InvalidInput("scopes are separated by single spaces", field="scopes")
    return tuple(sorted({parse_permission_name(item, field="scopes") for item in items if item != ""}))


def parse_customer_scope(value: str | CustomerScope | None) -> CustomerScope:
    """``all``, ``customers:id1,id2`` or ``groups:id1,id2`` (ids sorted and unique)."""
    if value is None:
        return CustomerScope()
    if isinstance(value, CustomerScope):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidInput("a customer scope is 'all', 'customers:ID,...' or 'groups:ID,...'", field=_CS)
    if value == "all":
        return CustomerScope()
    kind_text, sep, ids_text = value.partition(":")
    if not sep or kind_text not in (CustomerScopeKind.CUSTOMERS, CustomerScopeKind.GROUPS):
        raise InvalidInput(
            f"a customer scope is 'all', 'customers:ID,...' or 'groups:ID,...'; got {value!r}", field=_CS
        )
    ids = {parse_identifier(item, "a customer or group id", field=_CS) for item in ids_text.split(",")}
    return CustomerScope(CustomerScopeKind(kind_text), tuple(sorted(ids)))


_CS = "customer_scope"


def _printable(value: str) -> bool:
    return not any(unicodedata.category(ch).startswith("C") for ch in value if ch not in "\n\t")


def parse_name(value: str) -> str:
    """A display name: 1-200 printable characters, surrounding white space removed."""
    if not isinstance(value, str):
        raise InvalidInput("a name must be text", field="name")
    name = value.strip()
    if not name or len(name) > MAX_NAME or "\n" in name or not _printable(name):
        raise InvalidInput(f"a name must be 1-{MAX_NAME} printable characters on one line", field="name")
    return name


def parse_description(value: str | None) -> str:
    """A description: up to 2000 printable characters (new lines allowed)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("a description must be text", field="description")
    text = value.strip()
    if len(text) > MAX_DESCRIPTION or not _printable(text):
        raise InvalidInput(
            f"a description must be at most {MAX_DESCRIPTION} printable characters", field="description"
        )
    return text


def parse_search(value: str | None, *, field: str = "name_contains") -> str | None:
    """Text to filter a listing by: up to 200 characters without control characters (a NUL would
    reach the database); empty means no filter."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME or SEARCH_FORBIDDEN.search(value):
        raise InvalidInput(
            f"search text must be at most {MAX_NAME} characters, none of them control characters", field=field
        )
    return value


def parse_tenants(tenants: Iterable[str] | None) -> frozenset[str] | None:
    """The tenants a handle reaches, each an identifier; None (every tenant) stays None."""
    return None if tenants is None else frozenset(parse_identifier(t, "tenant") for t in tenants)


def parse_actor(actor: object) -> str:
    """Who is acting, for the audit trail: any non-empty text."""
    if not isinstance(actor, str) or not actor:
        raise InvalidInput("actor names who is acting, for the audit trail", field="actor")
    return actor

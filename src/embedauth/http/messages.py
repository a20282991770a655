"""The values the endpoints and adapters exchange, and the parsing of what arrives on the wire.

A :class:`Request` is what an adapter reads from its framework (method, URL, lower-cased headers,
decoded form or raw body); a :class:`Response` is what it writes back (status, headers in order, a
JSON body or bytes).
Framework-free: :mod:`embedauth.http.oauth` and :mod:`embedauth.http.bearer` work on these alone, so
both adapters send the same bytes. :func:`parse_form` and :func:`parse_basic_authorization` are the
only readers of a form body and of HTTP Basic credentials; :func:`json_bytes` is the one JSON
encoding of every body embedauth sends.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from embedauth.errors import InvalidClient, InvalidRequest, OAuthError

__all__ = [
    "FORM_CONTENT_TYPE",
    "JSON",
    "MAX_FORM_BYTES",
    "MAX_FORM_FIELDS",
    "NO_STORE",
    "UNAVAILABLE",
    "Request",
    "Response",
    "body_too_large",
    "error_response",
    "json_bytes",
    "parse_basic_authorization",
    "parse_form",
    "quoted",
]

#: The largest form body :func:`parse_form` accepts (64 KiB): a token request is a few hundred bytes.
MAX_FORM_BYTES = 64 * 1024
#: The most fields :func:`parse_form` accepts; a token request has at most eight or so.
MAX_FORM_FIELDS = 100
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

#: The ``Content-Type`` of every JSON body.
JSON = ("Content-Type", "application/json")
#: RFC 6749 §5.1: token, revocation and introspection responses are never cached.
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps makes one per call


def json_bytes(body: Any) -> bytes:
    """The one JSON encoding of a body: compact, ASCII (non-ASCII escaped), UTF-8 bytes."""
    return _ENCODE(body).encode("utf-8")


def quoted(value: str) -> str:
    """A quoted-string's content (RFC 9110 §5.6.4): backslash and double quote escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True, slots=True)
class Request:
    """What an adapter hands over: the parts of an HTTP request the endpoints read."""

    method: str
    """``"GET"``, ``"POST"``… as sent (methods are case-sensitive)."""
    url: str
    """The absolute URL of this request."""
    headers: Mapping[str, str]
    """Header names lower-cased by the adapter."""
    form: Sequence[tuple[str, str]] = ()
    """Decoded form pairs in order, repeats and blanks kept (:func:`parse_form`)."""
    body: bytes = b""
    """The raw body, for endpoints that read JSON (the management API); read up to a bound."""
    client_address: str | None = None
    """The peer's IP address (behind a reverse proxy, have the server take it from the proxy's
    headers, e.g. uvicorn's ``--proxy-headers``, so that failed attempts are counted per client)."""


@dataclass(frozen=True, slots=True)
class Response:
    """What an adapter sends back: status, headers in order, and a body: a JSON object, bytes as
    they are (the admin page's files), or ``None`` for none."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: Mapping[str, Any] | bytes | None = None

    def content(self) -> bytes:
        """The body as both adapters send it: compact JSON, the bytes, or nothing when there is none."""
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else json_bytes(self.body)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


#: The answer to a :class:`~embedauth.errors.StorageError`: the request may succeed in a moment.
UNAVAILABLE = Response(
    503,
    (JSON, *NO_STORE, ("Retry-After", "1")),
    {"error": "temporarily_unavailable"},
)


def body_too_large() -> InvalidRequest:
    """The refusal of a form body over :data:`MAX_FORM_BYTES` (adapters refuse it while reading)."""
    return InvalidRequest(f"the request body is larger than {MAX_FORM_BYTES} bytes")


def error_response(error: OAuthError) -> Response:
    """The response to an OAuth error, as the endpoints send it (RFC 6749 §5.2, no-store headers).

    For the adapters, when :func:`parse_form` refuses a body before any endpoint runs.
    """
    return Response(error.status, (JSON, *NO_STORE, *error.headers()), error.body())


def parse_form(body: bytes, content_type: str | None) -> Sequence[tuple[str, str]]:
    """The pairs of an ``application/x-www-form-urlencoded`` body, in order, repeats and blanks kept.

    Raises :class:`~embedauth.errors.InvalidRequest` for another media type (parameters such as
    ``charset=UTF-8`` are allowed; a charset other than UTF-8 is not), a body over
    :data:`MAX_FORM_BYTES`, more than :data:`MAX_FORM_FIELDS` fields, or bytes (raw or
    percent-encoded) that are not UTF-8. RFC 6749 §4.4.2, §3.2 and Appendix B.
    """
    if content_type is None:
        raise InvalidRequest(f"the request body must be {FORM_CONTENT_TYPE}")
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != FORM_CONTENT_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_CONTENT_TYPE}")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {"utf-8", "utf8"}:
            raise InvalidRequest("the request body must be UTF-8")
    if len(body) > MAX_FORM_BYTES:
        raise body_too_large()
    try:
        text = body.decode("utf-8")
        if "%" not in text and "+" not in text:  # nothing to decode (a token request, usually)
            if text.count("&") >= MAX_FORM_FIELDS:
                raise ValueError("too many fields")
            return [
                (name, value)
                for name, _, value in (field.partition("=") for field in text.split("&") if field)
            ]
        return urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidRequest("the request body must be UTF-8") from None
    except ValueError:  # max_num_fields exceeded
        raise InvalidRequest(f"the request has more than {MAX_FORM_FIELDS} parameters") from None


def parse_basic_authorization(value: str) -> tuple[str, str]:
    """``(client_id, client_secret)`` from an ``Authorization: Basic …`` header value.

    RFC 6749 §2.3.1: the client id and secret are each form-urlencoded, joined by a colon, then
    base64-encoded (RFC 7617), so both parts are form-urlencode-decoded here (``%3A`` is a colon,
    ``+`` a space). Anything else raises :class:`~embedauth.errors.InvalidClient`: another scheme,
    bad base64, no colon, an empty client id, or bytes that are not UTF-8.
    """
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("the Authorization header must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise InvalidClient("the Authorization header is not valid Basic credentials") from None
    raw_id, colon, raw_secret = decoded.partition(":")
    try:
        client_id = urllib.parse.unquote_plus(raw_id, encoding="utf-8", errors="strict")
        client_secret = urllib.parse.unquote_plus(raw_secret, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient("the Authorization header is not valid Basic credentials") from None
    if not colon or not client_id:
        raise InvalidClient("the Authorization header is not valid Basic credentials")
    return client_id, client_secret

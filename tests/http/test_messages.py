"""The values the endpoints and adapters exchange, and the wire parsers: JSON bodies, error
responses, form bodies and HTTP Basic credentials (property-tested)."""

from __future__ import annotations

import base64
import urllib.parse
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embedauth import InvalidClient, InvalidRequest
from embedauth.http.messages import (
    MAX_FORM_BYTES,
    MAX_FORM_FIELDS,
    Response,
    error_response,
    parse_basic_authorization,
    parse_form,
)
from tests.http.helpers import JSON, basic, refused


@pytest.mark.rfc("6749", "5.1")
def test_json_bytes() -> None:
    response = Response(200, (JSON,), {"b": [1, "é"], "a": None})
    assert response.content() == b'{"b":[1,"\\u00e9"],"a":null}'
    assert Response(200, ()).content() == b""
    assert response.header("content-type") == "application/json" and response.header("Allow") is None


@pytest.mark.rfc("6749", "2.3.1")
@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        ("client%3Aid:sec%3Aret", ("client:id", "sec:ret")),
        ("a+b:c+d", ("a b", "c d")),
        ("a%2Bb:%25%26%3D", ("a+b", "%&=")),
        ("caf%C3%A9:s%C3%A9cret", ("café", "sécret")),
        ("client:", ("client", "")),
        ("client:a:b", ("client", "a:b")),
        ("plain-id:eas_abc", ("plain-id", "eas_abc")),
    ],
)
def test_parse_basic_authorization(credentials: str, expected: tuple[str, str]) -> None:
    encoded = base64.b64encode(credentials.encode()).decode()
    assert parse_basic_authorization("Basic " + encoded) == expected
    assert parse_basic_authorization("basic  " + encoded + " ") == expected


@pytest.mark.rfc("6749", "2.3.1")
@settings(max_examples=300)
@given(client_id=st.text(min_size=1), client_secret=st.text())
def test_parse_basic_authorization_round_trip(client_id: str, client_secret: str) -> None:
    header = basic(client_id, client_secret)["authorization"]
    assert parse_basic_authorization(header) == (client_id, client_secret)


@pytest.mark.rfc("6749", "2.3.1")
@settings(max_examples=300)
@given(value=st.one_of(st.text(), st.binary().map(lambda b: "Basic " + base64.b64encode(b).decode())))
def test_parse_basic_authorization_refuses_with_invalid_client_only(value: str) -> None:
    try:
        client_id, _ = parse_basic_authorization(value)
    except InvalidClient:
        return
    assert client_id


@pytest.mark.rfc("6749", "4.4.2")
@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        'Application/X-WWW-Form-URLEncoded ;charset="utf-8"',
        "application/x-www-form-urlencoded; foo=bar",
    ],
)
def test_parse_form(content_type: str) -> None:
    raw = b"grant_type=client_credentials&scope=a+b%3Ac&empty=&grant_type=again&flag&caf%C3%A9=%E2%9C%93"
    assert list(parse_form(raw, content_type)) == [
        ("grant_type", "client_credentials"),
        ("scope", "a b:c"),
        ("empty", ""),
        ("grant_type", "again"),
        ("flag", ""),
        ("café", "✓"),
    ]
    assert list(parse_form(b"", content_type)) == []


@pytest.mark.rfc("6749", "4.4.2")
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/x-www-form-urlencodedx",
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
    ],
)
def test_parse_form_refuses_other_content_types(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form(b"grant_type=client_credentials", content_type)
    # What an adapter sends back: the same shape and headers as an endpoint's own errors.
    description = "the request body must be UTF-8" if content_type and "ISO" in content_type else None
    refused(error_response(caught.value), 400, "invalid_request", description=description)


@pytest.mark.rfc("6749", "3.2")
def test_parse_form_limits() -> None:
    form_type = "application/x-www-form-urlencoded"
    exact = b"token=" + b"a" * (MAX_FORM_BYTES - 6)
    assert parse_form(exact, form_type) == [("token", "a" * (MAX_FORM_BYTES - 6))]
    with pytest.raises(InvalidRequest, match="larger than"):
        parse_form(exact + b"a", form_type)
    fields = "&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS)).encode()
    assert len(parse_form(fields, form_type)) == MAX_FORM_FIELDS
    with pytest.raises(InvalidRequest, match="parameters"):
        parse_form(fields + b"&one=more", form_type)


@pytest.mark.rfc("6749", "B")
@pytest.mark.parametrize("raw", [b"token=\xff", b"token=%FF", b"tok%C3en=1", b"\xc3\x28=1", b"a=%ED%A0%80"])
def test_parse_form_refuses_what_is_not_utf8(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_form(raw, "application/x-www-form-urlencoded")


@pytest.mark.rfc("6749", "B")
@settings(max_examples=300)
@given(pairs=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=30)), max_size=20))
def test_parse_form_round_trip(pairs: list[tuple[str, str]]) -> None:
    encoded = urlencode(pairs).encode()
    assert list(parse_form(encoded, "application/x-www-form-urlencoded")) == pairs


@pytest.mark.rfc("6749", "B")
@settings(max_examples=300)
@given(raw=st.binary(max_size=300))
def test_parse_form_refuses_with_invalid_request_only(raw: bytes) -> None:
    try:
        pairs = parse_form(raw, "application/x-www-form-urlencoded")
    except InvalidRequest:
        return
    assert all(isinstance(name, str) and isinstance(value, str) for name, value in pairs)


@pytest.mark.rfc("6749", "B")
@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from("ab=&%+2Fé\x00 "), max_size=40) | st.text(max_size=40))
def test_parse_form_is_parse_qsl(text: str) -> None:
    """Bodies with nothing to decode take a shortcut: it answers what ``parse_qsl`` does."""
    raw = text.encode()
    try:
        expected: object = urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        expected = InvalidRequest
    try:
        got: object = list(parse_form(raw, "application/x-www-form-urlencoded"))
    except InvalidRequest:
        got = InvalidRequest
    assert got == expected

"""Parsers of what callers type: scopes, customer scopes, identifiers, names (property-tested)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from embedauth.errors import InvalidInput
from embedauth.models import CustomerScope, CustomerScopeKind
from embedauth.validation import (
    parse_customer_scope,
    parse_description,
    parse_identifier,
    parse_name,
    parse_permission_name,
    parse_scopes,
)

ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
permission_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ALNUM),
    st.text(alphabet=ALNUM + "._:/-", max_size=127),
)
identifiers = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ALNUM),
    st.text(alphabet=ALNUM + "._:@-", max_size=127),
)


@pytest.mark.rfc("6749", "3.3")
@given(st.lists(permission_names, max_size=10))
def test_scope_string_round_trip(names: list[str]) -> None:
    parsed = parse_scopes(" ".join(names))
    assert parsed == tuple(sorted(set(names)))
    assert parse_scopes(parsed) == parsed
    assert parse_scopes(" ".join(parsed)) == parsed


@pytest.mark.rfc("6749", "3.3")
@pytest.mark.parametrize("bad", ["a  b", " a", "a ", 'a"b', "a\\b", "é", "a\tb", "-a", "x" * 129])
def test_malformed_scopes(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_scopes(bad)


@given(st.text(max_size=200))
def test_scope_parser_never_fails_otherwise(text: str) -> None:
    try:
        parsed = parse_scopes(text)
    except InvalidInput:
        return
    assert all(parse_permission_name(name) == name for name in parsed)


def test_no_scopes() -> None:
    assert parse_scopes(None) == () == parse_scopes("") == parse_scopes([])


@given(st.sampled_from(["customers", "groups"]), st.lists(identifiers, min_size=1, max_size=5))
def test_customer_scope_round_trip(kind: str, ids: list[str]) -> None:
    scope = parse_customer_scope(f"{kind}:{','.join(ids)}")
    assert scope == CustomerScope(CustomerScopeKind(kind), tuple(sorted(set(ids))))
    assert parse_customer_scope(str(scope)) == scope
    assert parse_customer_scope(scope) == scope


@given(st.text(max_size=100))
def test_customer_scope_parser_never_fails_otherwise(text: str) -> None:
    try:
        scope = parse_customer_scope(text)
    except InvalidInput:
        return
    assert parse_customer_scope(str(scope)) == scope


@pytest.mark.parametrize(
    "bad", ["", "everyone", "customers", "customers:", "customers:a,,b", "groups:a b", "ALL"]
)
def test_malformed_customer_scopes(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_customer_scope(bad)


def test_customer_scope_defaults_to_all() -> None:
    assert parse_customer_scope(None) == parse_customer_scope("all") == CustomerScope()
    assert str(CustomerScope()) == "all"


@given(identifiers)
def test_identifiers(value: str) -> None:
    assert parse_identifier(value, "tenant") == value


@given(st.text(max_size=300))
def test_identifier_parser_never_fails_otherwise(text: str) -> None:
    try:
        parsed = parse_identifier(text, "tenant")
    except InvalidInput as exc:
        message = str(exc)
        assert "tenant" in message
    else:
        assert parsed == text


@given(st.text(max_size=300))
def test_names(text: str) -> None:
    try:
        name = parse_name(text)
    except InvalidInput:
        return
    assert name == text.strip() and 1 <= len(name) <= 200 and "\n" not in name


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "nul\x00", "bell\x07", "x" * 201])
def test_bad_names(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_name(bad)


def test_descriptions() -> None:
    assert parse_description(None) == ""
    assert parse_description("  two\nlines ") == "two\nlines"
    with pytest.raises(InvalidInput):
        parse_description("x" * 2001)
    with pytest.raises(InvalidInput):
        parse_description("esc\x1b[31m")

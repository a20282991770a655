"""Settings: defaults, ``EMBEDAUTH_*`` variables, keyword overrides, and the generated reference."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from embedauth import EmbedAuth
from embedauth.config import Settings, setting_infos
from embedauth.errors import ConfigurationError


def test_each_kind_of_value_is_read_from_its_variable() -> None:
    settings = Settings.from_env(
        {
            "EMBEDAUTH_ISSUER": "https://auth.example.com",
            "EMBEDAUTH_ACCESS_TOKEN_LIFETIME": "600",
            "EMBEDAUTH_STORAGE_TIMEOUT": "1.5",
            "EMBEDAUTH_ALLOW_UNENCRYPTED_KEYS": " Yes ",
            "EMBEDAUTH_AUDIENCES": "https://a.example, https://b.example",
            "EMBEDAUTH_SECRET_LIFETIME_DAYS": "365 730",
        }
    )
    assert settings.issuer == "https://auth.example.com"
    assert settings.access_token_lifetime == 600
    assert settings.storage_timeout == 1.5
    assert settings.allow_unencrypted_keys is True
    assert settings.audiences == ("https://a.example", "https://b.example")
    assert settings.secret_lifetime_days == (365, 730)


@pytest.mark.parametrize("word", ["1", "true", "ON", "yes"])
def test_true_words(word: str) -> None:
    assert Settings.from_env({"EMBEDAUTH_ALLOW_UNENCRYPTED_KEYS": word}).allow_unencrypted_keys is True


@pytest.mark.parametrize("word", ["0", "false", "Off", "no"])
def test_false_words(word: str) -> None:
    environ = {"EMBEDAUTH_ALLOW_UNENCRYPTED_KEYS": word}
    assert Settings.from_env(environ, allow_unencrypted_keys=None).allow_unencrypted_keys is False


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("EMBEDAUTH_ALLOW_UNENCRYPTED_KEYS", "maybe"),  # never "anything else is false"
        ("EMBEDAUTH_ALLOW_UNENCRYPTED_KEYS", ""),
        ("EMBEDAUTH_ACCESS_TOKEN_LIFETIME", "1h"),
        ("EMBEDAUTH_STORAGE_TIMEOUT", "three"),
        ("EMBEDAUTH_SECRET_LIFETIME_DAYS", "365,two"),
    ],
)
def test_a_value_that_does_not_parse_names_its_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{variable}: cannot parse"):
        Settings.from_env({variable: raw})


def test_a_value_that_parses_is_still_checked() -> None:
    with pytest.raises(ConfigurationError, match="storage_timeout"):
        Settings.from_env({"EMBEDAUTH_STORAGE_TIMEOUT": "0"})


def test_a_misspelt_variable_is_warned_about_with_the_setting_it_meant(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="embedauth"):
        settings = Settings.from_env({"EMBEDAUTH_STORAGE_TIMOUT": "1", "EMBEDAUTH_SOMETHING_OF_MINE": "x"})
    assert settings.storage_timeout == Settings().storage_timeout  # not silently applied either
    assert caplog.messages == [
        "embedauth: EMBEDAUTH_STORAGE_TIMOUT is not a setting; did you mean EMBEDAUTH_STORAGE_TIMEOUT?"
    ]  # a variable of the embedding app's own, far from every setting, is left alone


def test_keywords_win_over_variables_and_none_is_no_keyword() -> None:
    environ = {"EMBEDAUTH_ACCESS_TOKEN_LIFETIME": "600", "EMBEDAUTH_LEEWAY": "5"}
    settings = Settings.from_env(environ, access_token_lifetime=900, leeway=None)
    assert (settings.access_token_lifetime, settings.leeway) == (900, 5)


def test_embedauth_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDAUTH_STORAGE", "memory://")
    monkeypatch.setenv("EMBEDAUTH_ACCESS_TOKEN_LIFETIME", "600")
    monkeypatch.setenv("EMBEDAUTH_LEEWAY", "5")
    with EmbedAuth(leeway=7) as auth:
        assert auth.settings.storage == "memory://"
        assert auth.settings.access_token_lifetime == 600
        assert auth.settings.leeway == 7  # the keyword wins
    with EmbedAuth(settings=Settings(storage="memory://")) as auth:  # explicit settings: no environment
        assert auth.settings.access_token_lifetime == Settings().access_token_lifetime


def test_an_unknown_keyword_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="acces_token_lifetime"):
        EmbedAuth("memory://", acces_token_lifetime=600)


def test_the_reference_lists_every_setting_with_its_variable_and_a_description() -> None:
    infos = setting_infos()
    fields = dataclasses.fields(Settings)
    assert [info.name for info in infos] == [f.name for f in fields]
    for info, field in zip(infos, fields, strict=True):
        assert info.variable == f"EMBEDAUTH_{field.name.upper()}"
        assert info.default == field.default
        assert len(info.doc) > 10, f"{info.name} has no #: comment"
    by_name = {info.name: info for info in infos}
    assert by_name["storage_timeout"].type == "float"
    assert by_name["audiences"].type == "tuple[str, ...]"

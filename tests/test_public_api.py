"""The public API is exactly ``embedauth.__all__``; every hook is documented; types are shipped."""

from __future__ import annotations

import inspect
from pathlib import Path

import embedauth
from embedauth import hooks


def test_all_is_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(embedauth).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(embedauth.__all__)
    for name in embedauth.__all__:
        assert getattr(embedauth, name).__module__.startswith("embedauth."), name


def test_design_python_api_names() -> None:
    assert {"EmbedAuth", "InvalidToken", "Principal"} <= set(embedauth.__all__)


def test_every_hook_is_documented() -> None:
    specs = [name for name in dir(hooks.Specs) if name.startswith("embedauth_")]
    assert len(specs) >= 10
    for name in specs:
        doc = inspect.getdoc(getattr(hooks.Specs, name)) or ""
        assert len(doc) > 20, f"hook {name} needs a docstring"


def test_py_typed_is_shipped() -> None:
    assert Path(embedauth.__file__).with_name("py.typed").exists()

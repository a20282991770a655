"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_python_api_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # it writes sqlite:///embedauth.db
    namespace: dict[str, object] = {}
    exec(compile(python_blocks()[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    principal = namespace["principal"]
    assert getattr(principal, "scopes") == frozenset({"devices:read"})  # noqa: B009
    namespace["auth"].close()  # type: ignore[attr-defined]

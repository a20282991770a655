"""MkDocs hooks: the reference tables are generated from the code at build time, so they cannot drift.

``<!-- embedauth:settings -->`` in a page becomes the table of every setting (from
:func:`embedauth.config.setting_infos`); ``<!-- embedauth:hooks -->`` the list of every hook (from
:class:`embedauth.hooks.Specs`, their signatures and docstrings).
"""

from __future__ import annotations

import inspect
from typing import Any

from embedauth.config import setting_infos
from embedauth.hooks import Specs


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(str(item) for item in value) or "(empty)"
    if value == "":
        return "(empty)"
    return str(value)


def settings_table() -> str:
    rows = ["| setting | variable | type | default | what it does |", "|---|---|---|---|---|"]
    for info in setting_infos():
        doc = info.doc.replace("|", "\\|")
        rows.append(
            f"| `{info.name}` | `{info.variable}` | `{info.type}` | `{_default(info.default)}` | {doc} |"
        )
    return "\n".join(rows)


def hooks_list() -> str:
    sections = []
    for name in sorted(n for n in dir(Specs) if n.startswith("embedauth_")):
        spec = getattr(Specs, name)
        signature = str(inspect.signature(spec)).replace("(self, ", "(").replace("(self)", "()")
        doc = inspect.getdoc(spec) or ""
        sections.append(f"### `{name}`\n\n```python\n{name}{signature}\n```\n\n{doc}\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace the markers with the generated references."""
    return markdown.replace("<!-- embedauth:settings -->", settings_table()).replace(
        "<!-- embedauth:hooks -->", hooks_list()
    )

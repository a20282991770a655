"""The documentation keeps up with the code: every public name documented, every module on the map."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import embedauth
from embedauth.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(embedauth.__file__).parent


def public_objects() -> list[tuple[str, object]]:
    """Every class and function a module lists in ``__all__`` and defines, and their public methods."""
    found: list[tuple[str, object]] = []
    for info in pkgutil.walk_packages(embedauth.__path__, "embedauth."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found.append((info.name, module))
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            if (
                not (inspect.isclass(value) or inspect.isfunction(value))
                or value.__module__ != module.__name__
            ):
                continue
            found.append((f"{info.name}.{name}", value))
            if inspect.isclass(value):
                for attribute, member in vars(value).items():
                    function = (
                        member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    )
                    if not attribute.startswith("_") and inspect.isfunction(function):
                        # documented here, or where the method is declared (a backend's contract method)
                        found.append((f"{info.name}.{name}.{attribute}", getattr(value, attribute)))
    return found


def test_every_public_name_has_a_docstring() -> None:
    undocumented = [name for name, value in public_objects() if not (inspect.getdoc(value) or "").strip()]
    assert undocumented == []


def test_the_architecture_page_maps_every_module() -> None:
    """docs/architecture.md's tree lists each module of the package exactly, one line each."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    tree = page.split("## The package, one line per module", 1)[1].split("```")[1]
    listed: set[str] = set()
    folder = ""
    for line in tree.splitlines()[1:]:
        match = re.match(r"^  (\s*)(\w+(?:/\w+)*)(\.py|/)?\s", line + " ")
        if not match:
            continue
        indent, name, suffix = match.groups()
        if suffix == "/":
            folder = name + "/"
        elif suffix == ".py":
            listed.add(("" if not indent else folder) + name + ".py")
        if not indent and suffix == ".py":
            folder = ""
    modules = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if path.name != "__main__.py"}
    # Every module is on the map; a package's __init__ is listed when it holds code of its own.
    assert {m for m in listed if not m.endswith("__init__.py")} == {
        m for m in modules if not m.endswith("__init__.py")
    }
    assert listed <= modules


def _reason_fragments() -> set[str]:
    """Every constant piece of text a refusal reason is made of, found in the source."""
    fragments: set[str] = set()

    def add(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            fragments.add(node.value.strip())
        elif isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.Constant) and isinstance(part.value, str) and part.value.strip():
                    fragments.add(part.value.strip(" :'"))
        elif isinstance(node, ast.IfExp):
            add(node.body)
            add(node.orelse)

    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if called in {"Refused", "_Denied", "deny"} and node.args:
                add(node.args[0])
            elif called == "_deny" and len(node.args) >= 2:
                add(node.args[1])
            elif called == "embedauth_token_denied":
                for keyword in node.keywords:
                    if keyword.arg == "reason":
                        add(keyword.value)
    return {fragment for fragment in fragments if len(fragment) > 3}


def test_every_refusal_reason_is_explained() -> None:
    """docs/refusals.md names every reason the code can log (so a reader can look theirs up)."""
    page = (ROOT / "docs" / "refusals.md").read_text()
    fragments = _reason_fragments()
    assert len(fragments) > 40
    assert sorted(fragment for fragment in fragments if fragment not in page) == []


def test_the_readme_lists_every_command_and_option() -> None:
    """The README's command block names every verb of ``embedauth`` and each of its options."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- --8<-- [start:command] -->")[1].split("<!-- --8<-- [end:command] -->")[0]
    lines = block.split("```")[1].splitlines()
    text: dict[str, str] = {}  # group -> its lines, continuation lines included
    group = ""
    for line in lines:
        if line.startswith("embedauth "):
            group = line.split()[1]
        text[group] = text.get(group, "") + line + "\n"

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions[0].choices) if actions else {}

    def options(parser: argparse.ArgumentParser) -> list[str]:
        common = {"--help", "--storage", "--json"}
        return [
            o for a in parser._actions for o in a.option_strings if o.startswith("--") and o not in common
        ]

    missing = [option for option in options(build_parser()) if option not in readme]
    for name, parser in subcommands(build_parser()).items():
        described = text.get(name, "")
        verbs = subcommands(parser) or {"": parser}
        for verb, verb_parser in verbs.items():
            if verb and not re.search(rf"[\s|]{re.escape(verb)}[\s|]", described):
                missing.append(f"{name} {verb}")
            missing += [f"{name} {verb} {o}" for o in options(verb_parser) if o not in described]
    assert not missing, f"not in the README's command block: {missing}"

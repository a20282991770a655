"""The ``embedauth`` command: parse the arguments, call one service method, print the result.

    embedauth [--storage URL] GROUP VERB [ARGS] [--json]

Storage is ``--storage URL`` (before GROUP or after VERB), else ``EMBEDAUTH_STORAGE``, else
``sqlite:///embedauth.db`` (a verb that needs none, such as ``bench``, gets memory://); other
settings come from ``EMBEDAUTH_*`` variables. Each verb is one row of
:data:`~embedauth.cli.commands.COMMANDS`; its handler's result is printed by
:mod:`embedauth.cli.render`, as text or (``--json``) exactly one JSON document on stdout. An
:class:`~embedauth.errors.EmbedAuthError` is printed as one ``embedauth: error: ...`` line on stderr
with exit status 1; argparse's usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from embedauth import __version__
from embedauth.cli import commands
from embedauth.cli.commands import COMMANDS, GROUP_HELP, PROG, SERVE_HELP, TOP_LEVEL, Deleted, Listed
from embedauth.cli.render import render
from embedauth.clock import Clock, system_clock, utcnow
from embedauth.config import DEFAULT_STORAGE, Settings
from embedauth.core import EmbedAuth
from embedauth.errors import EmbedAuthError

__all__ = ["build_parser", "main"]


class _UsageError(Exception):
    """A usage mistake argparse found: its message, and the usage line of the command."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """Every error names the command it is about; :func:`main` prints it (as text or JSON)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix(PROG).strip()
        raise _UsageError(f"{command + ': ' if command else ''}{message}", self.format_usage())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb in :data:`~embedauth.cli.commands.COMMANDS`, and ``serve``."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--storage",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"storage URL (default: $EMBEDAUTH_STORAGE, else {DEFAULT_STORAGE})",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document"
    )
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="Manage embedauth's permissions, app registrations, refresh tokens and signing keys.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    for group_name, verbs in COMMANDS.items():
        help_text = GROUP_HELP[group_name]
        group = groups.add_parser(group_name, parents=[common], help=help_text, description=help_text)
        verb_parsers = group.add_subparsers(dest="verb", metavar="VERB", required=True)
        for verb_name, command in verbs.items():
            verb = verb_parsers.add_parser(
                verb_name, parents=[common], help=command.help, description=command.help
            )
            for add in command.arguments:
                add(verb)
            verb.set_defaults(handler=command.handler, uses_storage=command.storage)
    for name, command in TOP_LEVEL.items():
        verb = groups.add_parser(name, parents=[common], help=command.help, description=command.help)
        for add in command.arguments:
            add(verb)
        verb.set_defaults(handler=command.handler, verb=None, uses_storage=command.storage)
    serve = groups.add_parser("serve", parents=[common], help=SERVE_HELP, description=SERVE_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    serve.add_argument(
        "--issuer", metavar="URL", help="the issuer URL (default: $EMBEDAUTH_ISSUER, else http://HOST:PORT)"
    )
    serve.add_argument(
        "--framework",
        choices=["starlette", "flask"],
        default="starlette",
        help="the web framework the endpoints run in (default starlette; the answers are the same)",
    )
    serve.add_argument(
        "--no-demo", action="store_true", help="serve only the embedauth endpoints, without the /demo/ API"
    )
    serve.set_defaults(handler=commands.serve)
    return parser


def _issuer(args: argparse.Namespace) -> str | None:
    """``serve``'s issuer: ``--issuer``, else ``$EMBEDAUTH_ISSUER``, else where it listens."""
    if args.group != "serve":
        return None
    if args.issuer is None and "EMBEDAUTH_ISSUER" not in os.environ:
        return f"http://{args.host}:{args.port}"
    return str(args.issuer) if args.issuer is not None else None


def _error(message: str, error: EmbedAuthError | None = None, *, as_json: bool = False) -> int:
    """One line on stderr (with ``--json``, one JSON object naming the error's type); status 1."""
    text = " ".join(message.split())
    if as_json:
        kind = type(error).__name__ if error is not None else "RegistrationNotFound"
        print(json.dumps({"error": text, "type": kind}), file=sys.stderr)
    else:
        print(f"{PROG}: error: {text}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None, *, clock: Clock = system_clock) -> int:
    """Run the command; return its exit status (0, 1 for an error, 2 for a usage error)."""
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(words)
    except _UsageError as exc:
        if "--json" in words:
            print(json.dumps({"error": str(exc), "type": "UsageError"}), file=sys.stderr)
        else:
            print(f"{exc.usage}{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # after --help and --version
        return exc.code if isinstance(exc.code, int) else 2
    as_json = getattr(args, "json", False)
    try:
        storage = getattr(args, "storage", None) if getattr(args, "uses_storage", True) else "memory://"
        settings = Settings.from_env(storage=storage, issuer=_issuer(args))
        with EmbedAuth(settings=settings, clock=clock, load_entrypoints=True) as auth:
            result = args.handler(auth, args)
            now = utcnow(auth.clock)
    except EmbedAuthError as exc:
        return _error(str(exc), exc, as_json=as_json)
    if result is not None:
        text = render(result, as_json, now)
        if text:
            print(text)
        if as_json and isinstance(result, Listed) and len(result.page.items) < result.page.total:
            # stdout stays the list (the contract); the total goes beside it, where a script can see it.
            page = result.page
            shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "none"
            print(f"{PROG}: {shown} of {page.total} shown; --all for every one", file=sys.stderr)
    if isinstance(result, Deleted) and result.not_found:
        missing = ", ".join(map(repr, result.not_found))
        return _error(f"no registration with client ID {missing}", as_json=as_json)
    return 0

"""The ``embedauth`` command: parse the arguments, call one service method, print the result.

    embedauth [--storage URL] GROUP VERB [ARGS] [--json]

Storage is ``--storage URL`` (before GROUP or after VERB), else ``EMBEDAUTH_STORAGE``, else
``sqlite:///embedauth.db``; other settings come from ``EMBEDAUTH_*`` variables. Each verb is one row of
:data:`~embedauth.cli.commands.COMMANDS`; its handler's result is printed by
:mod:`embedauth.cli.render`, as text or (``--json``) exactly one JSON document on stdout. An
:class:`~embedauth.errors.EmbedAuthError` is printed as one ``embedauth: error: ...`` line on stderr
with exit status 1; argparse's usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from embedauth.cli import commands
from embedauth.cli.commands import COMMANDS, GROUP_HELP, PROG, SERVE_HELP, Deleted
from embedauth.cli.render import render
from embedauth.clock import Clock, system_clock, utcnow
from embedauth.config import DEFAULT_STORAGE, Settings
from embedauth.core import EmbedAuth
from embedauth.errors import EmbedAuthError

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """Every error line starts ``embedauth: error:``, naming the command it is about."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix(PROG).strip()
        self.exit(2, f"{PROG}: error: {command + ': ' if command else ''}{message}\n")


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
            verb.set_defaults(handler=command.handler)
    serve = groups.add_parser("serve", parents=[common], help=SERVE_HELP, description=SERVE_HELP)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--issuer", metavar="URL", help="the issuer URL (default: $EMBEDAUTH_ISSUER, else http://HOST:PORT)"
    )
    serve.add_argument("--framework", choices=["starlette", "flask"], default="starlette")
    serve.set_defaults(handler=commands.serve)
    return parser


def _issuer(args: argparse.Namespace) -> str | None:
    """``serve``'s issuer: ``--issuer``, else ``$EMBEDAUTH_ISSUER``, else where it listens."""
    if args.group != "serve":
        return None
    if args.issuer is None and "EMBEDAUTH_ISSUER" not in os.environ:
        return f"http://{args.host}:{args.port}"
    return str(args.issuer) if args.issuer is not None else None


def _error(message: str) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None, *, clock: Clock = system_clock) -> int:
    """Run the command; return its exit status (0, 1 for an error, 2 for a usage error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on a usage error (2) and after --help (0)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = Settings.from_env(storage=getattr(args, "storage", None), issuer=_issuer(args))
        with EmbedAuth(settings=settings, clock=clock, load_entrypoints=True) as auth:
            result = args.handler(auth, args)
            now = utcnow(auth.clock)
    except EmbedAuthError as exc:
        return _error(str(exc))
    if result is not None:
        text = render(result, getattr(args, "json", False), now)
        if text:
            print(text)
    if isinstance(result, Deleted) and result.not_found:
        return _error(f"no registration with client ID {', '.join(map(repr, result.not_found))}")
    return 0

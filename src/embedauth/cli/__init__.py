"""The ``embedauth`` command: :mod:`.main` (arguments and the entry point), :mod:`.commands` (one row
per verb), :mod:`.render` (text and ``--json``) and :mod:`.demo` (what ``embedauth serve`` runs)."""

from embedauth.cli.main import main

__all__ = ["main"]

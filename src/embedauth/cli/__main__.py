"""``python -m embedauth.cli``: the ``embedauth`` command."""

from embedauth.cli.main import main

raise SystemExit(main())

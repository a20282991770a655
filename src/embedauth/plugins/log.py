"""Every refusal, with its internal reason and the client ID it named, to the ``embedauth`` logger.

A caller who has not authenticated is told nothing about why a token or an assertion was refused
(no oracle); the operator reads it here, at INFO::

    embedauth: refused: client assertion: jti already used (replay) (client '3f1c…')

Reasons never hold a secret or a token: they name the check that failed. The client ID is quoted
with ``repr`` so that whatever a caller sent cannot forge log lines.
"""

from __future__ import annotations

import logging

from embedauth.hooks import hookimpl

__all__ = ["embedauth_token_denied", "log"]

log = logging.getLogger("embedauth")


@hookimpl
def embedauth_token_denied(client_id: str | None, reason: str) -> None:
    """Log one refusal at INFO."""
    if client_id is None:
        log.info("embedauth: refused: %s", reason)
    else:
        log.info("embedauth: refused: %s (client %r)", reason, client_id[:64])

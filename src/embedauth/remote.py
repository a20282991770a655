"""Middleware-only mode: verify the tokens of another embedauth service from its URL alone.

The public home of :class:`~embedauth.tokens.remote.RemoteVerifier` (``from embedauth.remote import
RemoteVerifier``); the implementation lives with the other verifiers in :mod:`embedauth.tokens.remote`.
"""

from embedauth.tokens.remote import RemoteVerifier, metadata_url

__all__ = ["RemoteVerifier", "metadata_url"]

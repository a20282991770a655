"""What may block, and a way to forbid it: how the async adapter keeps the event loop free and
skips the thread pool when nothing would block.

A token request from a client that authenticated before needs no storage, no argon2 run and so no
worker thread: its registration is in the :class:`~embedauth.registry.view.RegistrationView`, its
secret in the verified-secret cache, the signing key in memory. The Starlette adapter therefore
runs the token endpoint on the event loop first, inside :func:`nonblocking`. Every place that can
block calls :func:`may_block` *before it starts*: a storage call (the one wrapper every backend
method goes through, :mod:`embedauth.storage.base`) and an argon2 run
(:class:`~embedauth.credentials.secrets.SecretHasher`). Inside :func:`nonblocking` that raises
:class:`WouldBlock`, and the adapter answers the whole request again in a worker thread, as it did
before. Outside it (every other caller, every sync framework) :func:`may_block` costs one
context-variable read.

The rule that makes the retry safe: nothing a request does before its first :func:`may_block` may
last (no write, no audit record, no hook call); on the token path everything up to the storage
lookup and the argon2 run is a read of memory.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["WouldBlock", "may_block", "nonblocking"]

_forbidden: ContextVar[bool] = ContextVar("embedauth_nonblocking", default=False)


class WouldBlock(Exception):
    """Internal: the work would block here; run it again where blocking is allowed."""


def may_block(what: str) -> None:
    """Before work that may block (``what`` names it): :class:`WouldBlock` inside :func:`nonblocking`."""
    if _forbidden.get():
        raise WouldBlock(what)


class nonblocking:  # noqa: N801 - used as a function: ``with nonblocking():``
    """Within the block, :func:`may_block` raises :class:`WouldBlock` (a class, not a
    ``@contextmanager``: it is entered on every token request, and a generator costs more)."""

    __slots__ = ("_token",)

    def __enter__(self) -> None:
        self._token = _forbidden.set(True)

    def __exit__(self, *exc_info: object) -> None:
        _forbidden.reset(self._token)

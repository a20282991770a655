"""``GET /healthz``: liveness and readiness, for load balancers and whoever is paged.

200 when storage answers and the revocation state is current; 503 (with ``Retry-After``) when
either is not, so that a balancer stops sending traffic a process would refuse anyway. The body
says which::

    {"status": "ok", "storage": {"reachable": true, "latency_ms": 0.4},
     "revocations": {"loaded": true, "age_seconds": 0.2, "max_staleness": 30.0, "entries": 12}}

The storage probe is one round trip, bounded by ``storage_timeout``; nothing secret is reported
(a storage error is named by its type only).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from embedauth.errors import StorageError
from embedauth.http.messages import JSON, Request, Response

if TYPE_CHECKING:
    from embedauth.core import EmbedAuth

__all__ = ["HEALTH_PATH", "Health"]

HEALTH_PATH = "/healthz"
_NO_CACHE = ("Cache-Control", "no-store")


class Health:
    """The health endpoint of one :class:`~embedauth.EmbedAuth`."""

    def __init__(self, auth: EmbedAuth) -> None:
        self._auth = auth

    def check(self, request: Request) -> Response:
        """``GET``/``HEAD /healthz``: 200 when ready, 503 when storage or revocation is not."""
        if request.method not in {"GET", "HEAD"}:
            refusal = {"error": "invalid_request", "error_description": "allowed methods: GET, HEAD"}
            return Response(405, (JSON, _NO_CACHE, ("Allow", "GET, HEAD")), refusal)
        storage: dict[str, Any] = {"reachable": True}
        started = time.perf_counter()
        try:
            self._auth.storage.ping()
        except StorageError as exc:
            cause = exc.__cause__
            storage = {"reachable": False, "error": type(cause).__name__ if cause else "StorageError"}
        else:
            storage["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        revocations = self._auth.revocations
        age = revocations.age()
        max_staleness = self._auth.settings.max_staleness
        current = age is None or age <= max_staleness  # never loaded: nothing to be stale yet
        report = {
            "loaded": age is not None,
            "age_seconds": None if age is None else round(age, 3),
            "max_staleness": max_staleness,
            "entries": revocations.size(),
        }
        ready = storage["reachable"] and current
        body: dict[str, Any] = {
            "status": "ok" if ready else "unavailable",
            "storage": storage,
            "revocations": report,
        }
        headers: tuple[tuple[str, str], ...] = (JSON, _NO_CACHE)
        if not ready:
            headers = (*headers, ("Retry-After", "1"))
        return Response(200 if ready else 503, headers, body)

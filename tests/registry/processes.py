"""Work run in processes of their own (``spawn``: nothing shared but the storage URL), for the tests
that need "two processes at once": parallel sweeps, and a grace period's end seen by each."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

from embedauth import EmbedAuth, InvalidClient
from embedauth.clock import FrozenClock
from tests.conftest import ISSUER, TEST_SETTINGS

_SPAWN = multiprocessing.get_context("spawn")


def _sweep(url: str, at: float, barrier: Any, results: Any) -> None:
    with EmbedAuth(url, clock=FrozenClock(at), issuer=ISSUER, **TEST_SETTINGS) as auth:
        barrier.wait(timeout=60)  # both processes sweep at the same moment
        result = auth.lifecycle.sweep()
        results.put(
            [
                f"{n.registration.client_id}:{'-' if n.credential is None else n.credential.id}:{n.threshold}"
                for n in result.notices
            ]
        )


def _tokens(url: str, moments: list[float], client_id: str, secret: str, barrier: Any, results: Any) -> None:
    clock = FrozenClock(moments[0])
    with EmbedAuth(url, clock=clock, issuer=ISSUER, **TEST_SETTINGS) as auth:
        barrier.wait(timeout=60)
        answers = []
        for moment in moments:
            clock.set(moment)
            try:
                auth.tokens.client_credentials(client_id, secret)
                answers.append("ok")
            except InvalidClient as exc:
                answers.append(str(exc))
        results.put(answers)


def in_processes(count: int, target: Callable[..., None], *args: Any) -> list[Any]:
    """Run ``target(*args, barrier, results)`` in ``count`` fresh processes; what each put."""
    barrier, results = _SPAWN.Barrier(count), _SPAWN.Queue()
    processes = [_SPAWN.Process(target=target, args=(*args, barrier, results)) for _ in range(count)]
    for process in processes:
        process.start()
    answers = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return answers


def sweep_in_processes(url: str, at: float, count: int = 2) -> list[list[str]]:
    """The notices (``client:credential:threshold``) each of ``count`` processes' sweeps sent."""
    return in_processes(count, _sweep, url, at)


def tokens_in_processes(url: str, moments: list[float], client_id: str, secret: str) -> list[list[str]]:
    """In each of two processes, a token request at each of ``moments``: "ok" or the refusal."""
    return in_processes(2, _tokens, url, moments, client_id, secret)

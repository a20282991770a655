"""A second process that verifies tokens, for tests/tokens/test_revocation_processes.py.

``python -m tests.tokens.verifier_process URL ISSUER POLL_INTERVAL TOKEN...`` prints, one line each:
``feed NAME`` whenever its revocation feed (re)connects, ``ready`` once every token verifies, and
``refused I T`` when token I is first refused (T: ``time.monotonic()``, shared by processes).
It stops when every token is refused, or when its standard input closes.
"""

from __future__ import annotations

import sys
import threading
import time

from embedauth import EmbedAuth, InvalidToken
from embedauth.storage.feed import ChangeFeed

_printing = threading.Lock()


def say(line: str) -> None:
    """One whole line per write, under a lock: the feed thread and the main thread both report."""
    with _printing:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def main() -> None:
    url, issuer, poll_interval, *tokens = sys.argv[1:]
    auth = EmbedAuth(url, issuer=issuer, revocation_poll_interval=float(poll_interval))
    opened = auth.storage.open_change_feed

    def announce() -> ChangeFeed | None:
        feed = opened()
        name = getattr(feed, "client_name", None) or getattr(feed, "application_name", None)
        say(f"feed {name}")
        return feed

    auth.storage.open_change_feed = announce  # type: ignore[method-assign]
    for token in tokens:
        auth.verify(token)
    say("ready")
    told_to_stop = threading.Event()

    def stop_when_told() -> None:
        sys.stdin.read()
        told_to_stop.set()

    threading.Thread(target=stop_when_told, daemon=True).start()
    live = set(range(len(tokens)))
    while live and not told_to_stop.is_set():
        for i in sorted(live):
            try:
                auth.verify(tokens[i])
            except InvalidToken:
                say(f"refused {i} {time.monotonic()}")
                live.discard(i)
        time.sleep(0.002)
    auth.close()


if __name__ == "__main__":
    main()

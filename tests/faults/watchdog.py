"""Clean up after a test process that died without closing its servers (run by tests.faults.servers).

It reads lines ``+ KIND VALUE`` (register) and ``- KIND VALUE`` (forget) from its stdin, which only
the test process writes to; ``KIND`` is ``pid`` (a process to SIGKILL), ``pg`` (a PostgreSQL data
directory whose postmaster gets an immediate shutdown) or ``dir`` (a directory to delete). When
stdin ends (the test process exited, however: SIGKILL, a CI timeout's SIGTERM), it does that to
what is still registered, and exits. After a clean run nothing is, and it just exits.

Standard library only, so that it starts fast and imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in {"Z", "X"}
    except OSError:
        return True


def stop_cluster(data: str) -> None:
    """Immediate shutdown of the postmaster of ``data`` (its children and shared memory go too)."""
    try:
        pid = int(Path(data, "postmaster.pid").read_text().split("\n", 1)[0])
        if data.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return  # not that cluster's postmaster: the ID was reused
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the tests, which clean up
    held: dict[str, set[str]] = {"pid": set(), "pg": set(), "dir": set()}
    for line in sys.stdin:
        sign, kind, value = line.rstrip("\n").split(" ", 2)
        if sign == "+":
            held[kind].add(value)
        else:
            held[kind].discard(value)
    for pid in held["pid"]:
        for sig in (signal.SIGCONT, signal.SIGKILL):  # SIGCONT: a SIGSTOPped redis-server
            with contextlib.suppress(OSError):
                os.kill(int(pid), sig)
    for data in held["pg"]:
        stop_cluster(data)
    for path in held["dir"]:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()

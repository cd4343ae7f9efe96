"""Injectable crash points for the fault-injection tests.

`point("export.after_build")` kills the process on the spot (no cleanup, no finally blocks, like
a power cut or `kill -9`) when the environment variable BURSAR_CRASH_AT names that point.  A
point reached many times in one run takes a count: `BURSAR_CRASH_AT=payments.after_pay_post#3`
dies the third time it is reached.  With the variable unset it does nothing.  The tests use it
to prove every command is safe to re-run after dying between any two of its steps.
"""

from __future__ import annotations

import os
import threading

CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL

_seen: dict[str, int] = {}
_lock = threading.Lock()  # points are reached from worker threads too (the pay calls)


def point(name: str) -> None:
    wanted = os.environ.get("BURSAR_CRASH_AT")
    if not wanted:
        return
    target, _, count = wanted.partition("#")
    if target != name:
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] >= int(count or 1):
            os._exit(CRASH_EXIT_CODE)

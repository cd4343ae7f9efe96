"""Injectable crash points for the fault-injection tests.

`point("export.after_build")` kills the process on the spot (no cleanup, no finally blocks, like
a power cut or `kill -9`) when the environment variable BURSAR_CRASH_AT names that point.  With
the variable unset it does nothing.  The tests use it to prove every command is safe to re-run
after dying between any two of its steps.
"""

from __future__ import annotations

import os

CRASH_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def point(name: str) -> None:
    if os.environ.get("BURSAR_CRASH_AT") == name:
        os._exit(CRASH_EXIT_CODE)

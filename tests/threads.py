"""A check shared by the test folders that start servers and SSH transports."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_new_threads_after(grace: float = 3.0) -> Iterator[None]:
    """Fail unless every thread started inside the block has ended within `grace` seconds."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + grace
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not left, f"threads still running after the test: {[t.name for t in left]}"

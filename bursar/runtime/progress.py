"""A one-line progress counter on stderr, shown only when stderr is a terminal (never in cron
mail or logs) and not with --quiet."""

from __future__ import annotations

import sys
import time

enabled = True  # the CLI turns this off for --quiet


class Progress:
    def __init__(self, label: str, *, every: float = 0.2):
        self.label = label
        self.count = 0
        self.every = every
        self._last = 0.0
        self._shown = enabled and sys.stderr.isatty()

    def step(self, n: int = 1) -> None:
        self.count += n
        if self._shown and time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            sys.stderr.write(f"\r{self.label}: {self.count:,}")
            sys.stderr.flush()

    def done(self) -> None:
        if self._shown and self.count:
            sys.stderr.write(f"\r{self.label}: {self.count:,}\n")
            sys.stderr.flush()

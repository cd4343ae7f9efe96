"""The cron week on the sandbox, shared by the tests that compare runs with a clean week.

Each day Alma's Analytics shows yesterday's pay calls (the nightly refresh) and the Bursar drops
its cumulative payments file; every version of every file that reaches the Bursar's server is
kept, so a test can say that nothing was replaced and no line arrived twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import time as dtime
from pathlib import Path

from bursar.sandbox.payments_gen import fold_payments, install_world_keeping_payments, payment_files

from .conftest import Sandbox, make_sandbox


class Week:
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.files = payment_files(sandbox.worlds)
        self.stamped: list[dict] = []
        self.versions: dict[str, set[bytes]] = {}
        self.outputs: list[str] = []

    def prepare(self, index: int) -> datetime:
        """Alma and the Bursar's folder as they are on day `index`; returns that day's 18:00."""
        world = self.sandbox.worlds[index]
        now = datetime.combine(world.day, dtime(18, 0))
        install_world_keeping_payments(self.sandbox.alma, fold_payments(world, self.stamped, now=now))
        self.sandbox.drop_payment_file(self.files[index].name, self.files[index].data, mtime=1000 + index)
        return now

    def finish(self, now: datetime) -> None:
        """Stamp the day's pay calls (tomorrow's Analytics shows them) and keep the uploads."""
        self.stamped = [{**call, "time": call.get("time", now)}
                        for call in self.stamped + self.sandbox.alma.pay_calls[len(self.stamped):]]
        self.snapshot()

    def today(self, index: int, *args: str, expect=(0, 3)):
        """Run `today` (with `args`) on day `index`, from preparing the day to finishing it."""
        now = self.prepare(index)
        result = self.sandbox.run("today", *args, day=self.sandbox.worlds[index].day)
        self.outputs.append(result.stdout + result.stderr)
        assert result.returncode in expect, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        self.finish(now)
        return result

    def snapshot(self) -> None:
        for name, data in self.sandbox.uploaded().items():
            self.versions.setdefault(name, set()).add(data)

    def lines(self) -> Counter:
        """Every line that reached the Bursar, counted across every version of every file."""
        return Counter(line for contents in self.versions.values() for data in contents
                       for line in data.decode("ascii").splitlines())

    def paid(self) -> Counter:
        return Counter((c["fee_id"], c["amount"]) for c in self.sandbox.alma.pay_calls)


@contextmanager
def clean_week(base: Path, worlds: list, profile: str | None = None) -> Iterator[Week]:
    """The three sandbox days of `today` run once, cleanly, on a sandbox of their own under `base`
    (with `profile` as BURSAR_PROFILE): what the Bursar and Alma should end up with, for a test
    to compare its own week against."""
    with make_sandbox(base, worlds) as box:
        if profile is not None:
            box.env["BURSAR_PROFILE"] = profile
        week = Week(box)
        for index in range(3):
            week.today(index)
        yield week

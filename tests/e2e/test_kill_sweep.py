"""Kill `today` anywhere, run it again: nothing paid twice, no line lost or doubled, nothing left.

The cron week runs on the sandbox.  On day 2, `today` is killed with SIGKILL (the whole process
group): at event points (after an Analytics page, after the merge, after an export file is
written, after an upload and its rename, after the k-th pay POST, during the backup) and at
moments spread over a clean run.  Then `today` runs again until it finishes, and the week goes
on.  At the end:
- each Bursar payment was applied once (per fee, the totals the Bursar's files ask for);
- no external_transaction_id reached Alma twice;
- every line reached the Bursar's server exactly once, and no file there was replaced;
- no temporary file is left anywhere, here or on the server;
- nothing printed a traceback.

`make chaos` runs a longer sweep (BURSAR_CHAOS_POINTS=N adds N time points).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from bursar.runtime.crash import CRASH_EXIT_CODE
from bursar.runtime.leftovers import BACKUP_TMP

from .conftest import ABS
from .week import Week

EVENT_POINTS = [
    "analytics.after_page#2", "import.after_stage", "import.mid_merge", "export.after_apply",
    "export.build_line#3", "export.after_write_1", "sftp.after_put#1", "send.after_upload#2",
    "send.before_mark_sent", "payments.after_pending#2", "payments.after_pay_post#1",
    "payments.after_pay_post#3", "backup.after_snapshot", "backup.after_gzip",
]
TIME_FRACTIONS = [0.15, 0.45, 0.75] + [round(0.05 + 0.9 * k / max(1, int(os.environ.get(
    "BURSAR_CHAOS_POINTS", "0"))), 3) for k in range(int(os.environ.get("BURSAR_CHAOS_POINTS", "0")))]
TEMP_NAME = re.compile(r"(^\..+\.[a-z0-9_]{8}\.(tmp|part)$)|(^\..+\.part$)")


class SweepWeek(Week):
    def run_until_clean(self, index: int) -> None:
        for _ in range(4):
            result = self.sandbox.run("today", day=self.sandbox.worlds[index].day)
            self.outputs.append(result.stdout + result.stderr)
            self.snapshot()
            if result.returncode in (0, 3):
                return
        pytest.fail("today did not finish cleanly after a kill:\n" + self.outputs[-1])

    def killed(self, index: int, *, point: str | None = None, after: float | None = None) -> None:
        sandbox = self.sandbox
        env = {**os.environ, **sandbox.env, "BURSAR_NOW": f"{sandbox.worlds[index].day.isoformat()}T18:00:00"}
        if point:
            env["BURSAR_CRASH_AT"] = point
        proc = subprocess.Popen([sys.executable, str(ABS), "today"], cwd=sandbox.work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        if after is not None:
            time.sleep(after)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it had finished already
        out, err = proc.communicate(timeout=120)
        self.outputs.append(out + err)
        self.snapshot()
        if point:
            assert proc.returncode == CRASH_EXIT_CODE, f"{point} was never reached:\n{out}{err}"


def temporary_files(sandbox) -> list[str]:
    found = []
    for root in (sandbox.work, sandbox.sftp_root):
        for path in root.rglob("*"):
            if path.is_file() and (TEMP_NAME.match(path.name) or BACKUP_TMP.match(path.name)):
                found.append(str(path.relative_to(root)))
    found += [str(p) for p in sandbox.work.rglob("bursar-import-*")]
    return found


def check_invariants(week: SweepWeek) -> None:
    sandbox = week.sandbox
    expected = {fee: amount for fee, amount in week.files[-1].expected.items() if amount}
    paid: dict[str, object] = {}
    for call in sandbox.alma.pay_calls:
        paid[call["fee_id"]] = paid.get(call["fee_id"], 0) + call["amount"]
    assert paid == expected, "a Bursar payment was applied twice or not at all"
    ids = Counter(c["external_transaction_id"] for c in sandbox.alma.pay_calls)
    assert not [i for i, n in ids.items() if n > 1], "an external_transaction_id reached Alma twice"
    assert all(len(v) == 1 for v in week.versions.values()), "a file on the Bursar's server was replaced"
    assert not [line for line, n in week.lines().items() if n > 1], "a line reached the Bursar twice"
    assert temporary_files(sandbox) == []
    assert not [o for o in week.outputs if "Traceback" in o]


@pytest.fixture(scope="module")
def clean_lines(tmp_path_factory, worlds):
    """The lines a clean week sends, and how long a clean day-2 `today` takes."""
    from .conftest import make_sandbox

    with make_sandbox(tmp_path_factory.mktemp("clean-week"), worlds) as box:
        week = SweepWeek(box)
        took = 0.0
        for index in range(3):
            now = week.prepare(index)
            started = time.monotonic()
            week.run_until_clean(index)
            if index == 1:
                took = time.monotonic() - started
            week.finish(now)
        yield week.lines(), took


def sweep(sandbox, clean_lines, **kill) -> None:
    lines, _ = clean_lines
    week = SweepWeek(sandbox)
    for index in range(3):
        now = week.prepare(index)
        if index == 1:
            week.killed(index, **kill)
        week.run_until_clean(index)
        week.finish(now)
    check_invariants(week)
    assert week.lines() == lines


@pytest.mark.parametrize("point", EVENT_POINTS)
def test_killed_at_an_event_point(sandbox, clean_lines, point):
    sweep(sandbox, clean_lines, point=point)


@pytest.mark.parametrize("fraction", TIME_FRACTIONS)
def test_killed_at_a_moment_of_the_run(sandbox, clean_lines, fraction):
    _, took = clean_lines
    sweep(sandbox, clean_lines, after=max(0.05, took * fraction))

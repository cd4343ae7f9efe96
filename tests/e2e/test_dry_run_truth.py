"""A dry run tells the truth: what `today --dry-run` prints is what the real `today` then does.

Over the three sandbox days, starting with no store at all: the export lines the dry run prints
are exactly the lines of the files the real run writes, and the payments it says it would make
are exactly the payments the real run makes.  The first dry run creates nothing.
"""

from __future__ import annotations

import re
from collections import Counter

from .week import Week

LINE = re.compile(r"^ +\|(.{97})\|$", re.M)
PAY = re.compile(r"would pay (\d+\.\d\d) on fee (\S+)")


def test_today_dry_run_prints_what_today_then_does(sandbox):
    week = Week(sandbox)
    for index, world in enumerate(sandbox.worlds):
        now = week.prepare(index)
        before_files, before_pays = sandbox.uploaded(), len(sandbox.alma.pay_calls)

        dry = sandbox.run("today", "--dry-run", day=world.day)
        assert dry.returncode in (0, 3), dry.stdout + dry.stderr
        assert "failed" not in dry.stdout.splitlines()[0 if index else 1]
        if index == 0:
            assert dry.stdout.startswith("no pyBursar database at ")
            assert "showing what a first run would do" in dry.stdout.splitlines()[0]
            assert sorted(p.name for p in sandbox.work.iterdir()) == [], "the first dry run created something"
        assert sandbox.uploaded() == before_files and len(sandbox.alma.pay_calls) == before_pays

        real = sandbox.run("today", day=world.day)
        assert real.returncode in (0, 3), real.stdout + real.stderr
        sent = {n: d for n, d in sandbox.uploaded().items() if n not in before_files}
        sent_lines = Counter(line for data in sent.values() for line in data.decode("ascii").splitlines())
        assert Counter(LINE.findall(dry.stdout)) == sent_lines, f"day {index + 1}: the export differs"
        paid = Counter((c["fee_id"], f"{c['amount']:.2f}") for c in sandbox.alma.pay_calls[before_pays:])
        assert Counter((fee, amount) for amount, fee in PAY.findall(dry.stdout)) == paid, \
            f"day {index + 1}: the payments differ"
        assert sent_lines or index, "day 1 should send lines"
        week.finish(now)


def test_pay_fines_dry_run_prints_the_pays_pay_fines_then_makes(sandbox):
    week = Week(sandbox)
    week.today(0)
    world = sandbox.worlds[1]
    week.prepare(1)
    dry = sandbox.run("payFines", "--dry-run", day=world.day)
    assert dry.returncode in (0, 3), dry.stdout + dry.stderr
    assert "failed" not in dry.stdout and "not yet tried" not in dry.stdout
    real = sandbox.run("payFines", day=world.day)
    assert real.returncode in (0, 3), real.stdout + real.stderr
    paid = Counter((c["fee_id"], f"{c['amount']:.2f}") for c in sandbox.alma.pay_calls)
    assert paid and Counter((fee, amount) for amount, fee in PAY.findall(dry.stdout)) == paid

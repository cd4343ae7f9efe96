"""The run summary: an interface.  Commands return one, the CLI prints it, the log and the
notifications carry the same text, and tests assert on it.

A summary holds counts *and* money totals per category, the items that need a person's
attention (which make the exit code 3), and free notes such as export ids and file names.
Its first line says which command ran, on which host, when it started and how it ended (the
CLI stamps the host and the start time), so a summary read in a mailbox or a log stands alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from bursar.errors import EXIT_ATTENTION, EXIT_OK

INDENT = "  "


@dataclass
class Attention:
    ref: str  # what it is about, e.g. "fine 7816239430003841"
    message: str


@dataclass
class Summary:
    command: str
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, Decimal] = field(default_factory=dict)
    attention: list[Attention] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    host: str | None = None  # where it ran (set by the CLI)
    started: datetime | None = None  # when it started (set by the CLI)
    failed: bool = False  # the run stopped with an error (set by the CLI)
    brief: bool = False  # render only the first line and the attention list (--quiet)
    attachments: list[Path] = field(default_factory=list)  # files for the e-mail (the reconcile report)

    def count(self, category: str, n: int = 1, amount: Decimal | None = None) -> None:
        """Add n to a category and, when given, an amount to its money total."""
        self.counts[category] = self.counts.get(category, 0) + n
        if amount is not None:
            self.totals[category] = self.totals.get(category, Decimal("0.00")) + amount

    def flag(self, ref: str, message: str) -> None:
        self.attention.append(Attention(ref, message))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def merge(self, other: Summary) -> None:
        """Fold another step's summary into this one (used by `today`), prefixing categories."""
        for key, n in other.counts.items():
            self.counts[f"{other.command}: {key}"] = n
        for key, total in other.totals.items():
            self.totals[f"{other.command}: {key}"] = total
        self.attention.extend(other.attention)
        self.notes.extend(other.notes)
        self.attachments.extend(other.attachments)

    def stamp(self, *, host: str, started: datetime, failed: bool = False, brief: bool = False) -> None:
        """What the CLI knows and the job does not: where and when it ran, how it ended."""
        self.host, self.started, self.failed, self.brief = host, started, failed, brief

    @property
    def exit_code(self) -> int:
        return EXIT_ATTENTION if self.attention else EXIT_OK

    @property
    def outcome(self) -> str:
        if self.failed:
            text = "failed"
        elif self.attention:
            n = len(self.attention)
            text = f"{n} item{'s' if n != 1 else ''} need{'s' if n == 1 else ''} attention"
        elif not self.counts and not self.notes:
            text = "nothing to do"
        else:
            text = "ok"
        return text + (" (dry run: nothing was changed)" if self.dry_run else "")

    def header(self) -> str:
        """The first line: command, host, start time, outcome."""
        where = f" on {self.host}" if self.host else ""
        when = f", started {self.started:%Y-%m-%d %H:%M:%S %Z}".rstrip() if self.started else ""
        return f"{self.command}{where}{when}: {self.outcome}"

    def count_lines(self) -> list[str]:
        """One line per category: the labels padded to the longest, counts and money right-aligned
        in their own columns (a long label never pushes its numbers out of line)."""
        if not self.counts:
            return []
        label_width = max(len(key) for key in self.counts)
        count_width = max(len(f"{n:,}") for n in self.counts.values())
        money = {key: _money(total) for key, total in self.totals.items() if key in self.counts}
        money_width = max((len(text) for text in money.values()), default=0)
        lines = []
        for key, n in self.counts.items():
            line = f"{key:<{label_width}}  {n:>{count_width},}"
            if money_width:
                line += f"  {money.get(key, ''):>{money_width}}"
            lines.append(line.rstrip())
        return lines

    def attention_lines(self) -> list[str]:
        if not self.attention:
            return []
        return [f"needs attention ({len(self.attention)}):"] + \
            [f"{INDENT}- {item.ref}: {item.message}" for item in self.attention]

    def render(self) -> str:
        lines = [self.header()]
        if not self.brief:
            lines += [INDENT + line for line in self.count_lines()]
            lines += [INDENT + text for text in self.notes]
        lines += [INDENT + line for line in self.attention_lines()]
        return "\n".join(lines)


def _money(amount: Decimal) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"

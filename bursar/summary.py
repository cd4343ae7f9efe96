"""The run summary: an interface.  Commands return one, the CLI prints it, the log and the
notifications carry the same text, and tests assert on it.

A summary holds counts *and* money totals per category, the items that need a person's
attention (which make the exit code 3), and free notes such as export ids and file names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .errors import EXIT_ATTENTION, EXIT_OK


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

    @property
    def exit_code(self) -> int:
        return EXIT_ATTENTION if self.attention else EXIT_OK

    def render(self) -> str:
        title = f"{self.command} summary" + (" (dry run: nothing was changed)" if self.dry_run else "")
        lines = [title]
        if not self.counts and not self.notes and not self.attention:
            lines.append("  nothing to do")
        for key, n in self.counts.items():
            total = self.totals.get(key)
            money = f"  ${total:,.2f}" if total is not None else ""
            lines.append(f"  {key:<54} {n:>7}{money}")
        for text in self.notes:
            lines.append(f"  {text}")
        if self.attention:
            lines.append(f"  needs attention ({len(self.attention)}):")
            for item in self.attention:
                lines.append(f"    - {item.ref}: {item.message}")
        return "\n".join(lines)

"""The reconcile report as one self-contained HTML page (values in, text out; no I/O of its own).

Why self-contained: the business office opens it from a mail attachment or a shared folder, often
offline and behind mail filters that strip remote content.  So the page has no script, no font,
no image and no link to fetch: the style is inline, the chart is inline SVG drawn here (no
plotting dependency), and the text carries no URL at all (inline SVG in HTML needs no namespace
URL).  Every number is also in a data-* attribute as plain text, so a test (or a script) can read
the page's figures back exactly.

The page: the headline totals (billed, reversed, paid at the Bursar, applied in Alma,
outstanding; outstanding = billed - reversed - paid, to the cent), a chart of charges, reversals
and payments by month over 13 months, the ageing of outstanding balances (its rows add up to
outstanding), the differences by class with counts and sums, and the full difference list
(streamed from the CSV rows, so the page and the CSV cannot disagree).  Emplids appear only by
their last four digits: the page is meant to be mailed, and no Emplid goes by e-mail.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import TextIO

from bursar.rules import reconcile_rules as rules
from bursar.rules.money import ZERO

SERIES = (("charges", "Charges sent", "#2b6cb0"), ("reversals", "Reversals sent", "#dd6b20"),
          ("payments", "Paid at the Bursar", "#2f855a"))
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #1a202c; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
p.meta { color: #4a5568; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #cbd5e0; padding: 4px 8px; vertical-align: top; }
th { background: #edf2f7; text-align: left; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.date { white-space: nowrap; }
tr.total td { font-weight: bold; background: #f7fafc; }
.ok { color: #2f855a; font-weight: bold; } .bad { color: #c53030; font-weight: bold; }
.small { font-size: 12px; color: #4a5568; }
svg text { font-size: 11px; fill: #2d3748; }
"""


@dataclass(frozen=True)
class ReportMeta:
    today: date
    generated: datetime
    alma_as_of: datetime | None
    live: bool
    totals: rules.Totals
    classes: rules.ClassTotals
    months: Sequence[str]  # YYYY-MM, oldest first
    chart: Sequence[tuple[Decimal, Decimal, Decimal]]  # per month: charges, reversals, payments
    csv_name: str


def money(amount: Decimal | None) -> str:
    """$1,234.56 (-$3.00); empty for None."""
    if amount is None:
        return ""
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def plain(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def masked(emplid: str) -> str:
    """An Emplid as the page shows it: its last four characters.  The page travels by e-mail,
    where no Emplid goes (bursar.clients.notify.scrub); the CSV beside it has them in full."""
    emplid = emplid.strip()
    return "" if not emplid else "…" + emplid[-4:]


def render_report(meta: ReportMeta, rows: Iterable[Mapping[str, str]], out: TextIO) -> None:
    """Write the page to `out`; `rows` are the CSV's rows (bursar.jobs.reconcile.CSV_COLUMNS)."""
    w = out.write
    t = meta.totals
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
    w(f"<title>pyBursar reconcile {meta.today:%Y-%m-%d}</title>\n<style>{_STYLE}</style></head><body>\n")
    w(f"<h1>pyBursar reconcile, {meta.today:%Y-%m-%d}</h1>\n")
    as_of = f"{meta.alma_as_of:%Y-%m-%d %H:%M}" if meta.alma_as_of else "never (no import has succeeded yet)"
    w(f"<p class=\"meta\">Made {meta.generated:%Y-%m-%d %H:%M}. Alma as the latest importAlmaFines recorded it: "
      f"<span id=\"alma-as-of\">{_e(as_of)}</span>"
      + ("; the fines that differ were confirmed through the Alma fees API (--live)" if meta.live else "")
      + f". The same differences, one per row and with the patrons' Emplids in full (shown here by their "
      f"last four digits): <code>{_e(meta.csv_name)}</code>.</p>\n")
    n = meta.classes.total
    verdict = ("<span class=\"ok\">All three sides agree.</span>" if n == 0 else
               f"<span class=\"bad\">{n} difference{'s' if n != 1 else ''} need{'s' if n == 1 else ''} a look.</span>")
    w(f"<p id=\"verdict\">{verdict}</p>\n")

    w("<h2>Headline totals</h2>\n<table id=\"totals\"><tr><th>what</th><th class=\"num\">fines</th>"
      "<th class=\"num\">amount</th></tr>\n")
    for key, label, count, amount in (
            ("billed", "Billed (charges sent to the Bursar)", t.billed_fines, t.billed),
            ("reversed", "Reversed (reversals sent)", t.reversed_fines, t.reversed),
            ("paid", "Paid at the Bursar", t.paid_fines, t.paid),
            ("outstanding", "Outstanding at the Bursar = billed − reversed − paid", None, t.outstanding),
            ("applied", "Applied in Alma (of the Bursar's payments)", t.applied_fines, t.applied)):
        cls = " class=\"total\"" if key == "outstanding" else ""
        w(f"<tr{cls}><td>{_e(label)}</td><td class=\"num\">{'' if count is None else f'{count:,}'}</td>"
          f"<td class=\"num\" data-total=\"{key}\" data-amount=\"{plain(amount)}\">{money(amount)}</td></tr>\n")
    w(f"</table>\n<p class=\"small\">{t.fines:,} fines checked.</p>\n")

    w("<h2>Charges, reversals and payments by month</h2>\n")
    w(chart_svg(meta.months, meta.chart))
    w("\n<table id=\"months\"><tr><th>month</th>" + "".join(f"<th class=\"num\">{_e(label)}</th>"
                                                          for _, label, _ in SERIES) + "</tr>\n")
    for month, values in zip(meta.months, meta.chart):
        w(f"<tr><td>{_e(month)}</td>" + "".join(
            f"<td class=\"num\" data-series=\"{key}\" data-amount=\"{plain(v)}\">{money(v)}</td>"
            for (key, _, _), v in zip(SERIES, values)) + "</tr>\n")
    w("</table>\n")

    w("<h2>Ageing of outstanding balances</h2>\n<table id=\"ageing\"><tr><th>billed</th><th class=\"num\">fines</th>"
      "<th class=\"num\">outstanding</th></tr>\n")
    for (label, _, _), count, amount in zip(rules.AGE_BUCKETS, t.ageing_counts, t.ageing):
        w(f"<tr><td>{_e(label)} ago</td><td class=\"num\">{count:,}</td>"
          f"<td class=\"num\" data-age=\"{_e(label)}\" data-amount=\"{plain(amount)}\">{money(amount)}</td></tr>\n")
    w(f"<tr><td>credit balances (paid more than billed)</td><td></td><td class=\"num\" data-age=\"credit\" "
      f"data-amount=\"{plain(t.credit_balances)}\">{money(t.credit_balances)}</td></tr>\n")
    w(f"<tr class=\"total\"><td>outstanding</td><td></td><td class=\"num\" data-age=\"total\" "
      f"data-amount=\"{plain(t.outstanding)}\">{money(t.outstanding)}</td></tr>\n</table>\n")

    w("<h2>Differences by class</h2>\n<table id=\"classes\"><tr><th>class</th><th>what it means</th>"
      "<th>what to do</th><th class=\"num\">count</th><th class=\"num\">sum</th></tr>\n")
    grand = ZERO
    for code in rules.ORDER:
        c = rules.CLASSES[code]
        count, total = meta.classes.counts[code], meta.classes.sums[code]
        grand += total
        w(f"<tr data-class=\"{code}\"><td>{_e(c.title)}</td><td>{_e(c.explanation)}</td><td>{_e(c.action)}</td>"
          f"<td class=\"num\" data-count=\"{count}\">{count:,}</td>"
          f"<td class=\"num\" data-sum=\"{plain(total)}\">{money(total)}</td></tr>\n")
    w(f"<tr class=\"total\" data-class=\"all\"><td colspan=\"3\">all differences</td>"
      f"<td class=\"num\" data-count=\"{n}\">{n:,}</td>"
      f"<td class=\"num\" data-sum=\"{plain(grand)}\">{money(grand)}</td></tr>\n</table>\n")

    w("<h2>Every difference</h2>\n<table id=\"differences\"><tr><th>class</th><th>fine</th><th>reference</th>"
      "<th>patron</th><th class=\"num\">amount</th><th class=\"num\">Alma balance</th><th>Alma</th>"
      "<th class=\"num\">billed</th><th class=\"num\">reversed</th><th class=\"num\">pending</th>"
      "<th class=\"num\">paid at Bursar</th><th class=\"num\">applied in Alma</th>"
      "<th class=\"num\">outstanding</th><th>last line</th><th>last payment</th>"
      + ("<th>live</th>" if meta.live else "") + "<th>detail</th></tr>\n")
    shown = 0
    for row in rows:
        shown += 1
        cells = [_e(row["title"]), _e(row["fine_id"]), _e(row["reference"]), _e(masked(row["patron"]))]
        w(f"<tr class=\"diff\" data-class=\"{_e(row['class'])}\" data-amount=\"{_e(row['amount'])}\">"
          + "".join(f"<td>{c}</td>" for c in cells)
          + "".join(f"<td class=\"num\">{money(Decimal(row[k])) if row[k] else ''}</td>"
                    for k in ("amount", "alma_balance"))
          + f"<td>{_e(row['alma_status'])}</td>"
          + "".join(f"<td class=\"num\">{money(Decimal(row[k])) if row[k] else ''}</td>"
                    for k in ("billed", "reversed", "pending", "paid_at_bursar", "applied_in_alma",
                              "bursar_outstanding"))
          + f"<td class=\"date\">{_e(row['last_line'])}</td><td class=\"date\">{_e(row['last_payment'])}</td>"
          + (f"<td>{_e(row['live'])}</td>" if meta.live else "")
          + f"<td class=\"small\">{_e(row['detail'])}</td></tr>\n")
    if shown == 0:
        w(f"<tr><td colspan=\"{17 if meta.live else 16}\">none</td></tr>\n")
    w("</table>\n</body></html>\n")


# -- the chart ---------------------------------------------------------------------------------

def _nice_ceiling(value: Decimal) -> Decimal:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    digits = value.to_integral_value(rounding=ROUND_CEILING).adjusted()
    step = Decimal(10) ** digits
    for factor in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        if value <= factor * step:
            return factor * step
    return 10 * step  # pragma: no cover


def _px(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def chart_svg(months: Sequence[str], values: Sequence[tuple[Decimal, Decimal, Decimal]]) -> str:
    """Grouped bars, one group per month, drawn with plain SVG rectangles and text."""
    width, height = 780, 300
    left, right, top, bottom = 80, 10, 30, 40
    plot_w, plot_h = Decimal(width - left - right), Decimal(height - top - bottom)
    highest = max((v for trio in values for v in trio), default=ZERO)
    axis_max = _nice_ceiling(highest)
    group = plot_w / max(1, len(months))
    bar = (group * Decimal("0.8")) / len(SERIES)
    parts = [f"<svg id=\"chart\" role=\"img\" aria-label=\"Charges, reversals and payments by month\" "
             f"width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">"]
    for i in range(5):  # gridlines and the axis labels
        level = axis_max * i / 4
        y = Decimal(top) + plot_h - plot_h * i / 4
        parts.append(f"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{_px(y)}\" y2=\"{_px(y)}\" "
                     f"stroke=\"#e2e8f0\"/>")
        parts.append(f"<text x=\"{left - 6}\" y=\"{_px(y + 4)}\" text-anchor=\"end\">{_e(money(level))}</text>")
    for m, (month, trio) in enumerate(zip(months, values)):
        x0 = Decimal(left) + group * m + group * Decimal("0.1")
        for s, ((key, label, color), v) in enumerate(zip(SERIES, trio)):
            h = plot_h * v / axis_max if axis_max else ZERO
            x = x0 + bar * s
            y = Decimal(top) + plot_h - h
            parts.append(f"<rect data-month=\"{month}\" data-series=\"{key}\" x=\"{_px(x)}\" y=\"{_px(y)}\" "
                         f"width=\"{_px(bar)}\" height=\"{_px(h)}\" fill=\"{color}\">"
                         f"<title>{_e(label)}, {_e(month)}: {_e(money(v))}</title></rect>")
        year, mon = month.split("-")
        parts.append(f"<text x=\"{_px(Decimal(left) + group * m + group / 2)}\" y=\"{height - bottom + 16}\" "
                     f"text-anchor=\"middle\">{_MONTHS[int(mon) - 1]} {year[2:]}</text>")
    parts.append(f"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{top + int(plot_h)}\" y2=\"{top + int(plot_h)}\" "
                 f"stroke=\"#4a5568\"/>")
    for s, (_, label, color) in enumerate(SERIES):  # the legend
        lx = left + 10 + s * 170
        parts.append(f"<rect x=\"{lx}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{color}\"/>"
                     f"<text x=\"{lx + 18}\" y=\"18\">{_e(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)

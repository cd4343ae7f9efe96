"""The reconcile HTML report in a real browser: Debian's headless Chromium, driven through the
DevTools protocol (tests/chromium.py).  `make test` installs Chromium when it can
(scripts/ensure-chromium.sh); elsewhere these tests skip and say why."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal

import pytest

from bursar.rules import reconcile_rules as rules

from .. import chromium
from . import reconcile_world as rw

pytestmark = pytest.mark.skipif(chromium.available() is not None, reason=chromium.available() or "")

FIGURES = """JSON.stringify({
  totals: Object.fromEntries([...document.querySelectorAll('[data-total]')]
            .map(e => [e.dataset.total, e.dataset.amount])),
  shownTotals: Object.fromEntries([...document.querySelectorAll('[data-total]')]
            .map(e => [e.dataset.total, e.innerText.trim()])),
  classes: [...document.querySelectorAll('#classes tr[data-class]')].map(r => ({
            code: r.dataset.class, count: r.querySelector('[data-count]').innerText.trim(),
            sum: r.querySelector('[data-sum]').dataset.sum,
            shown: r.querySelector('[data-sum]').innerText.trim()})),
  rows: [...document.querySelectorAll('#differences tr.diff')].map(r => ({
            code: r.dataset.class, amount: r.dataset.amount})),
  ageing: Object.fromEntries([...document.querySelectorAll('[data-age]')]
            .map(e => [e.dataset.age, e.dataset.amount])),
  bars: document.querySelectorAll('#chart rect[data-series]').length,
  images: document.images.length, scripts: document.scripts.length,
  links: document.querySelectorAll('link, iframe, object, embed').length,
  heading: document.querySelector('h1').innerText
})"""


def money(amount: Decimal) -> str:
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def test_the_page_renders_offline_and_shows_the_csv_totals(sandbox, tmp_path):
    cases = rw.build(sandbox)
    result = sandbox.run("reconcile", day=rw.DAY1)
    assert result.returncode == 3, result.stdout + result.stderr
    reports = sandbox.work / "reports"
    page = reports / "reconcile-20260303.html"
    with (reports / "reconcile-20260303.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    text = page.read_text(encoding="utf-8")
    # self-contained by construction: nothing that could name a resource outside the file
    assert not re.search(r"https?:|src=|href=|@import|url\(", text, flags=re.I)

    with chromium.Browser(tmp_path / "chromium-profile") as browser:
        browser.open(page.as_uri())
        figures = json.loads(browser.evaluate(FIGURES))
        requests = browser.requests()
        shot = tmp_path / "reconcile-20260303.png"
        browser.screenshot(shot)

    assert requests == [page.as_uri()], requests  # the page itself, and nothing else
    assert figures["heading"] == "pyBursar reconcile, 2026-03-03"
    assert figures["images"] == figures["scripts"] == figures["links"] == 0
    assert figures["bars"] == 13 * 3

    # the page's figures are the CSV's, to the cent
    assert sorted((r["code"], r["amount"]) for r in figures["rows"]) == sorted((r["class"], r["amount"]) for r in rows)
    by_code = {c["code"]: c for c in figures["classes"]}
    for code in rules.ORDER:
        mine = [Decimal(r["amount"]) for r in rows if r["class"] == code]
        assert int(by_code[code]["count"]) == len(mine) == 1
        assert Decimal(by_code[code]["sum"]) == sum(mine, Decimal("0.00")) == \
            sum((a for (c, _), a in cases.expected.items() if c == code), Decimal("0.00"))
        assert by_code[code]["shown"] == money(Decimal(by_code[code]["sum"]))
    everything = sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))
    assert Decimal(by_code["all"]["sum"]) == everything and int(by_code["all"]["count"]) == len(rows)
    totals = {k: Decimal(v) for k, v in figures["totals"].items()}
    assert totals["outstanding"] == totals["billed"] - totals["reversed"] - totals["paid"]
    assert all(figures["shownTotals"][k] == money(v) for k, v in totals.items())
    ageing = {k: Decimal(v) for k, v in figures["ageing"].items()}
    assert ageing.pop("total") == totals["outstanding"] == sum(ageing.values(), Decimal("0.00"))

    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000

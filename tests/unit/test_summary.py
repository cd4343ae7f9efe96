from decimal import Decimal

from bursar.summary import Summary


def test_counts_totals_and_exit_code():
    summary = Summary("exportBurs")
    assert summary.exit_code == 0 and "nothing to do" in summary.render()
    summary.count("charge lines", 2, Decimal("65.00"))
    summary.count("charge lines", 1, Decimal("0.01"))
    text = summary.render()
    assert "charge lines" in text and "3" in text and "$65.01" in text
    summary.flag("fine 1", "too wide")
    assert summary.exit_code == 3
    assert "needs attention (1)" in summary.render() and "fine 1: too wide" in summary.render()


def test_dry_run_is_said():
    assert "dry run" in Summary("exportBurs", dry_run=True).render()

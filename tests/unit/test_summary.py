from decimal import Decimal

from bursar.runtime.summary import Summary


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


def _stamped(summary: Summary, **kwargs) -> Summary:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    summary.stamp(host="lib-cron-1", started=datetime(2026, 3, 2, 18, 0, 5, tzinfo=ZoneInfo("America/Phoenix")),
                  **kwargs)
    return summary


def test_first_line_gives_command_host_start_and_outcome():
    summary = _stamped(Summary("exportBurs"))
    first = summary.render().splitlines()[0]
    assert first == "exportBurs on lib-cron-1, started 2026-03-02 18:00:05 MST: nothing to do"
    summary.count("charge lines", 2, Decimal("10.00"))
    assert summary.header() == "exportBurs on lib-cron-1, started 2026-03-02 18:00:05 MST: ok"
    summary.flag("fine 1", "too wide")
    assert summary.header().endswith(": 1 item needs attention")
    summary.flag("fine 2", "too wide")
    assert summary.header().endswith(": 2 items need attention")
    assert _stamped(Summary("today"), failed=True).header().endswith(": failed")
    assert _stamped(Summary("backupDB", dry_run=True)).header().endswith(
        ": nothing to do (dry run: nothing was changed)")


def test_columns_stay_aligned_whatever_the_label_length():
    summary = Summary("today")
    summary.count("importAlmaFines: fines new", 30, Decimal("1822.93"))
    summary.count("importAlmaPayments: rows settled earlier (not sent again)", 1204)
    summary.count("importAlmaPayments: found already applied in Alma (not paid again)", 3, Decimal("-5.00"))
    summary.count("backupDB: backups", 1)
    w = len("importAlmaPayments: found already applied in Alma (not paid again)")  # the longest label
    assert summary.render().splitlines()[1:] == [
        "  " + "importAlmaFines: fines new".ljust(w) + "     30  $1,822.93",
        "  " + "importAlmaPayments: rows settled earlier (not sent again)".ljust(w) + "  1,204",
        "  " + "importAlmaPayments: found already applied in Alma (not paid again)" + "      3     -$5.00",
        "  " + "backupDB: backups".ljust(w) + "      1",
    ]


def test_brief_shows_only_the_first_line_and_the_attention_list():
    summary = _stamped(Summary("importAlmaFines"), brief=True)
    summary.count("fines new", 3)
    summary.note("asked Alma for changes since 2017-01-01")
    summary.flag("transaction 9", "unknown transaction type 'Refund'")
    assert summary.render().splitlines() == [
        "importAlmaFines on lib-cron-1, started 2026-03-02 18:00:05 MST: 1 item needs attention",
        "  needs attention (1):",
        "    - transaction 9: unknown transaction type 'Refund'",
    ]


def test_slack_gets_the_same_aligned_count_lines():
    import json

    from bursar.clients.notify import summary_blocks

    summary = Summary("today")
    summary.count("importAlmaPayments: rows settled earlier (not sent again)", 12)
    summary.count("exportBurs: charge lines", 3, Decimal("65.00"))
    text = json.dumps(summary_blocks(summary, title="pyBursar today", ok=True))
    for line in summary.count_lines():
        assert json.dumps(line)[1:-1] in text

"""Slack notifications: the run summary to one webhook, failures to another.

Why this module is careful (the original's defects: docs/original-defects.md §35 and §36):
- Slack is a third party, so nothing that identifies a patron may leave the machine: Emplids
  and raw API bodies (which quote patron records) are scrubbed from every text we send, and the
  secrets in force are masked as a last pass.
- A notification is a courtesy, never part of the run: `send` has a timeout, never raises, and
  turns every failure into a one-line warning that never shows the webhook URL (the URL *is*
  the credential).
- `blocks` is a real JSON list (the original double-encoded it as a string), and every text is
  kept under Slack's limits so Slack never rejects a payload for its size.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import requests

from bursar.runtime.summary import Summary

if TYPE_CHECKING:
    from bursar.settings import Settings

SUMMARY_HOOK = "SLACK_WEBHOOK_URL"
ERROR_HOOK = "SLACK_ERROR_WEBHOOK_URL"

# Slack's documented limits for the blocks we use.
HEADER_LIMIT = 150  # header block, plain_text
SECTION_LIMIT = 3000  # section block, text
FALLBACK_LIMIT = 300  # our own cap for the top-level "text" (used in push notifications)
MAX_ATTENTION_ITEMS = 20  # shown; the rest are counted in "... and N more"
MAX_NOTES = 15
LINE_LIMIT = 200  # one attention item or note, before escaping

# An Emplid is a run of 9-11 digits standing alone.  Alma ids (fines, loans, transactions) are
# 16+ digits and charge accounts 12, so an exact-length run never catches them; dates (8) and
# amounts are shorter.
_EMPLID = re.compile(r"(?<!\d)\d{9,11}(?!\d)")
# The start of a raw body: a JSON object or a Python dict repr ('{' then a quote, bracket or
# '}'), or XML/HTML ('<' then a tag name, '?', '!' or '/').  Everything from there on is cut.
_RAW_BODY = re.compile(r"\{\s*[\"'\[{}]|<\s*[A-Za-z?!/]")
_SLACK_ERROR_CODE = re.compile(r"^[a-z_]{1,60}$")  # e.g. "invalid_payload", "no_service"


def scrub(text: str) -> str:
    """Remove what must never leave the machine: raw API bodies and Emplid-like numbers.

    A raw body is cut from its first '{'/'<' to the end of the text (bodies span lines), so
    scrub one item at a time; the result is safe to scrub again (idempotent).
    """
    match = _RAW_BODY.search(text)
    if match:
        text = text[: match.start()].rstrip() + " [response body removed]"
    return _EMPLID.sub("[id]", text)


def summary_blocks(summary: Summary, *, title: str, ok: bool) -> dict:
    """A Slack incoming-webhook payload for a run summary.

    Counts with money totals, the notes (export ids and file names) and the items that need
    attention, each list capped so the message stays readable and within Slack's limits.
    """
    icon = ":white_check_mark:" if ok else ":warning:"
    n_attention = len(summary.attention)
    status = "done" if ok else (f"{n_attention} item(s) need attention" if n_attention else "needs attention")
    if summary.dry_run:
        status += " (dry run: nothing was changed)"
    blocks: list[dict[str, Any]] = [_header(f"{icon} {title}: {status}")]

    count_lines = summary.count_lines()  # the same aligned columns as the printed summary
    if not count_lines and not summary.notes and not summary.attention:
        count_lines = ["nothing to do"]
    if count_lines:
        blocks.append(_code_section(f"*{_escape(summary.command)}*", count_lines, len(count_lines)))

    notes = [n.strip() for n in summary.notes if not _is_file_line(n)]
    if notes:
        blocks.append(_code_section("*Notes*", notes[:MAX_NOTES], len(notes)))

    if summary.attention:
        items = [f"- {a.ref}: {a.message}" for a in summary.attention]
        blocks.append(_code_section(f"*Needs attention ({n_attention})*",
                                    items[:MAX_ATTENTION_ITEMS], n_attention))

    where = f" on {summary.host}" if summary.host else ""
    when = f", started {summary.started:%Y-%m-%d %H:%M:%S %Z}".rstrip() if summary.started else ""
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"pyBursar `{_escape(scrub(summary.command))}`{_escape(where)}{when}, "
                                   f"exit code {summary.exit_code}"},
    ]})
    return {"text": _cap(scrub(f"{title}: {status}"), FALLBACK_LIMIT), "blocks": blocks}


def failure_blocks(command: str, message: str) -> dict:
    """A Slack payload saying that a run failed, and why (scrubbed)."""
    title = f"pyBursar {command} failed"
    lines = [line for line in scrub(message).splitlines() if line.strip()] or ["(no message)"]
    return {
        "text": _cap(scrub(f"{title}: {lines[0]}"), FALLBACK_LIMIT),
        "blocks": [
            _header(f":x: {title}"),
            _code_section("*Error*", lines, len(lines)),
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": _escape(f"The run stopped on {socket.gethostname()}; "
                                                   "see the log there for details.")},
            ]},
        ],
    }


def send(url: str | None, payload: dict, *, timeout: float = 5.0) -> str | None:
    """POST the payload as JSON; None on success (or when no URL is set), else a warning.

    Never raises: a notification must not fail the run.  The warning never contains the URL.
    """
    if not url:
        return None
    try:
        response = requests.post(url, json=payload, timeout=(timeout, timeout), allow_redirects=False)
    except requests.Timeout:
        return f"Slack notification not sent: no answer within {timeout:g} s"
    except requests.ConnectionError:
        return "Slack notification not sent: could not connect to the webhook host"
    except requests.RequestException as exc:  # MissingSchema, InvalidURL, InvalidSchema, ...
        return f"Slack notification not sent: the webhook URL is not usable ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - a notification must never fail the run
        return f"Slack notification not sent: {type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return None
    try:
        body = response.text.strip()
    except Exception:  # noqa: BLE001 - an undecodable body just means no detail
        body = ""
    detail = f" ({body})" if _SLACK_ERROR_CODE.match(body) else ""
    return f"Slack notification not sent: the webhook answered HTTP {response.status_code}{detail}"


def notify_run(settings: Settings, summary: Summary) -> list[str]:
    """Send the run summary to SLACK_WEBHOOK_URL, and also to SLACK_ERROR_WEBHOOK_URL when the
    run needs attention; returns the warnings (empty when all went well or nothing is set)."""
    ok = summary.exit_code == 0
    payload = _mask(summary_blocks(summary, title=f"pyBursar {summary.command}", ok=ok),
                    settings.secret_values())
    hooks = [SUMMARY_HOOK] if ok else [SUMMARY_HOOK, ERROR_HOOK]
    return _post_to(settings, hooks, payload)


def notify_failure(settings: Settings, command: str, message: str) -> list[str]:
    """Send a failed run's message to SLACK_ERROR_WEBHOOK_URL only; returns the warnings."""
    payload = _mask(failure_blocks(command, message), settings.secret_values())
    return _post_to(settings, [ERROR_HOOK], payload)


# --- helpers -------------------------------------------------------------------------------


def _post_to(settings: Settings, hooks: list[str], payload: dict) -> list[str]:
    warnings: list[str] = []
    sent: set[str] = set()
    for name in hooks:
        url = settings.get(name)
        if not url or url in sent:  # unset, or the same hook twice: post once
            continue
        sent.add(url)
        warning = send(url, payload)
        if warning:
            warnings.append(f"{name}: {warning}")
    return warnings


def _header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": _cap(scrub(text), HEADER_LIMIT), "emoji": True}}


def _code_section(heading: str, lines: Iterable[str], total: int) -> dict:
    """A mrkdwn section: a bold heading over a code block (so '_' and '*' in file names and
    messages are shown as typed), cut by whole lines to stay within SECTION_LIMIT."""
    shown: list[str] = []
    budget = SECTION_LIMIT - len(heading) - len("\n```\n\n```") - 40  # 40: room for the "more" line
    for line in lines:
        safe = _escape(_cap(scrub(line), LINE_LIMIT)).replace("`", "'")
        if len(safe) + 1 > budget:
            break
        shown.append(safe)
        budget -= len(safe) + 1
    if total > len(shown):
        shown.append(f"... and {total - len(shown)} more")
    text = heading + "\n```\n" + "\n".join(shown) + "\n```"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _is_file_line(note: str) -> bool:
    """Dry-run previews of Bursar file lines ("    |1201901471  5310...|") stay on the machine."""
    return note.lstrip().startswith("|")


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (see Slack's "Escaping text" guide)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mask(value: Any, secrets: list[str]) -> Any:
    """Replace every secret in force (API key, passwords, webhook URLs) in every string."""
    secrets = [s for s in secrets if len(s) >= 4]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    return value

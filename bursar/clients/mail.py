"""E-mail: the run summary to MAIL_TO, failures (and runs that need attention) to MAIL_ERRORS_TO.

Why e-mail as well as Slack: library sites and business offices live in e-mail, and peers send
the Bursar's office control totals that way.  The rules are Slack's (bursar.clients.notify):

- the same scrubbing: every line goes through `notify.scrub` (no Emplids, no raw API bodies) and
  the secrets in force are masked as a last pass; dry-run previews of file lines stay home;
- a courtesy, never part of the run: a short timeout, never raises, and every failure becomes a
  one-line warning that never shows the password or what the server answered to the login;
- plain text plus an HTML alternative, so both a terminal mail reader and Outlook show it well.

Security is SMTP_SECURITY: `starttls` (port 587) or `tls` (implicit TLS, port 465), both with
the system's CA certificates and the host name checked; `none` only where a login is not sent
or the host is loopback (settings refuse the rest).
"""

from __future__ import annotations

import html
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from bursar.clients.notify import _is_file_line, _mask, scrub
from bursar.runtime.summary import Summary

if TYPE_CHECKING:
    from bursar.settings import Settings

TIMEOUT = 10.0  # seconds for the connection and each SMTP command
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
MAX_NOTES = 60
MAX_ATTENTION_ITEMS = 200
LINE_LIMIT = 300


# -- the messages (pure: values in, an EmailMessage out) ----------------------------------------


def summary_message(summary: Summary, *, sender: str, to: list[str], file_prefix: str,
                    secrets: list[str]) -> EmailMessage:
    """The run summary as text + HTML: outcome, counts and money totals per category, the export
    file names, the notes and the items that need attention."""
    notes = [n.strip() for n in summary.notes if not _is_file_line(n)]
    files = _export_files(notes, file_prefix)
    attention = [f"{a.ref}: {a.message}" for a in summary.attention]
    counts = [(key, n, summary.totals.get(key)) for key, n in summary.counts.items()]
    subject = f"pyBursar {summary.header()}"
    text = [subject, ""]
    if counts:
        text += ["Counts and money totals:"] + ["  " + line for line in summary.count_lines()] + [""]
    elif not notes and not attention:
        text += ["Nothing to do.", ""]
    if files:
        text += ["Export files:"] + [f"  {name}" for name in files] + [""]
    if notes:
        text += ["Notes:"] + [f"  {n}" for n in _capped(notes, MAX_NOTES)] + [""]
    if attention:
        text += [f"Needs attention ({len(attention)}):"] + [f"  - {a}" for a in _capped(attention, MAX_ATTENTION_ITEMS)]
        text += [""]
    text.append(f"Exit code {summary.exit_code}.")

    body = [f"<h2>{_h(subject)}</h2>"]
    if counts:
        rows = "".join(f"<tr><td>{_h(key)}</td><td align=\"right\">{n:,}</td>"
                       f"<td align=\"right\">{_h(_money(total)) if total is not None else ''}</td></tr>"
                       for key, n, total in counts)
        body.append("<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">"
                    "<tr><th align=\"left\">category</th><th>count</th><th>total</th></tr>" + rows + "</table>")
    elif not notes and not attention:
        body.append("<p>Nothing to do.</p>")
    for heading, items in (("Export files", files), ("Notes", _capped(notes, MAX_NOTES)),
                           (f"Needs attention ({len(attention)})", _capped(attention, MAX_ATTENTION_ITEMS))):
        if items:
            body.append(f"<h3>{_h(heading)}</h3><ul>" + "".join(f"<li><code>{_h(i)}</code></li>" for i in items)
                        + "</ul>")
    body.append(f"<p>Exit code {summary.exit_code}.</p>")
    return _message(subject, text, body, sender=sender, to=to, secrets=secrets)


def failure_message(command: str, error: str, *, host: str, sender: str, to: list[str],
                    summary: Summary | None, secrets: list[str]) -> EmailMessage:
    """A failed run: what stopped it (scrubbed) and, for a chain, what the steps did before."""
    subject = f"pyBursar {command} FAILED on {host}"
    lines = [line for line in error.splitlines() if line.strip()] or ["(no message)"]
    text = [subject, "", "Error:"] + [f"  {line}" for line in lines] + [""]
    body = [f"<h2>{_h(subject)}</h2><h3>Error</h3><pre>" + "\n".join(_h(x) for x in lines) + "</pre>"]
    if summary is not None:
        done = [line for line in summary.render().splitlines()[1:] if not _is_file_line(line)]
        if done:
            text += ["What the run did before it stopped:"] + done + [""]
            body.append("<h3>What the run did before it stopped</h3><pre>" + "\n".join(_h(x) for x in done)
                        + "</pre>")
    text.append(f"See the log on {host} for details; every command is safe to run again.")
    body.append(f"<p>See the log on {_h(host)} for details; every command is safe to run again.</p>")
    return _message(subject, text, body, sender=sender, to=to, secrets=secrets)


def probe_message(*, host: str, sender: str, to: list[str]) -> EmailMessage:
    subject = f"pyBursar doctor on {host}: test message"
    text = [subject, "", "This is a test from `abs.py doctor --notify`: e-mail from pyBursar reaches you."]
    body = [f"<h2>{_h(subject)}</h2><p>This is a test from <code>abs.py doctor --notify</code>: "
            "e-mail from pyBursar reaches you.</p>"]
    return _message(subject, text, body, sender=sender, to=to, secrets=[])


# -- sending ------------------------------------------------------------------------------------


def mail_run(settings: Settings, summary: Summary) -> list[str]:
    """The summary to MAIL_TO, and to MAIL_ERRORS_TO too when the run needs attention; returns
    the warnings (empty when sent, or when e-mail is off)."""
    if not settings.get("SMTP_HOST"):
        return []
    to = recipients(settings, errors=summary.exit_code != 0)
    msg = summary_message(summary, sender=str(settings.get("MAIL_FROM")), to=to,
                          file_prefix=settings.file_prefix, secrets=settings.secret_values())
    skipped = attach_reports(msg, summary.attachments)
    return skipped + _warn(deliver(settings, msg, to))


MAX_ATTACHMENT = 10 * 1024 * 1024  # bytes; a larger report stays in REPORTS_DIR


def attach_reports(msg: EmailMessage, paths: list[Path]) -> list[str]:
    """The reports a run made (the reconcile page: Emplids only by their last digits) as
    attachments; returns a warning for each one left out."""
    warnings = []
    for path in paths:
        try:
            size = path.stat().st_size
            if size > MAX_ATTACHMENT:
                warnings.append(f"e-mail: {path.name} ({size:,} bytes) is too large to attach; it is in {path.parent}")
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            warnings.append(f"e-mail: {path.name} could not be attached ({type(exc).__name__})")
            continue
        msg.add_attachment(text, subtype="html" if path.suffix == ".html" else "plain", filename=path.name)
    return warnings


def mail_failure(settings: Settings, command: str, error: str, summary: Summary | None = None) -> list[str]:
    """A failed run's message to MAIL_ERRORS_TO (MAIL_TO when unset); returns the warnings."""
    if not settings.get("SMTP_HOST"):
        return []
    to = recipients(settings, errors=True, only_errors=True)
    msg = failure_message(command, error, host=socket.gethostname(), sender=str(settings.get("MAIL_FROM")),
                          to=to, summary=summary, secrets=settings.secret_values())
    return _warn(deliver(settings, msg, to))


def recipients(settings: Settings, *, errors: bool, only_errors: bool = False) -> list[str]:
    """Addresses for a message: MAIL_TO, plus (or, for a failure, only) MAIL_ERRORS_TO."""
    to = _addresses(settings.get("MAIL_TO"))
    err = _addresses(settings.get("MAIL_ERRORS_TO")) or to
    chosen = err if only_errors else (to + err if errors else to)
    return list(dict.fromkeys(chosen))


def deliver(settings: Settings, msg: EmailMessage, to: list[str]) -> str | None:
    """Send through SMTP_HOST; None on success, else a one-line warning (never raises)."""
    host = str(settings.get("SMTP_HOST"))
    security = (settings.get("SMTP_SECURITY") or "starttls").lower()
    port = int(settings.get("SMTP_PORT") or DEFAULT_PORTS[security])
    user, password = settings.get("SMTP_USER"), settings.get("SMTP_PASSWORD")
    where = f"{host}:{port}"
    try:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context) if security == "tls"
                              else smtplib.SMTP(host, port, timeout=TIMEOUT))
        with smtp:
            if security == "starttls":
                try:
                    smtp.starttls(context=context)
                except smtplib.SMTPNotSupportedError:
                    return f"e-mail not sent: {where} does not offer STARTTLS (check SMTP_SECURITY and SMTP_PORT)"
            if user and password:
                try:
                    smtp.login(user, password)
                except smtplib.SMTPNotSupportedError:
                    return f"e-mail not sent: {where} offers no login (AUTH) on this connection (check SMTP_SECURITY)"
            smtp.send_message(msg, to_addrs=to)
    except smtplib.SMTPAuthenticationError as exc:
        return f"e-mail not sent: {where} refused the login of SMTP_USER (SMTP {exc.smtp_code})"
    except smtplib.SMTPRecipientsRefused as exc:
        return f"e-mail not sent: {where} refused {len(exc.recipients)} recipient(s) (check MAIL_TO / MAIL_ERRORS_TO)"
    except smtplib.SMTPSenderRefused as exc:
        return f"e-mail not sent: {where} refused the sender MAIL_FROM (SMTP {exc.smtp_code})"
    except smtplib.SMTPResponseException as exc:
        return f"e-mail not sent: {where} answered SMTP {exc.smtp_code}"
    except ssl.SSLCertVerificationError:
        return f"e-mail not sent: the TLS certificate of {where} is not trusted or not for that name"
    except ssl.SSLError:
        return f"e-mail not sent: TLS with {where} failed (check SMTP_SECURITY and SMTP_PORT)"
    except TimeoutError:
        return f"e-mail not sent: {where} did not answer within {TIMEOUT:g} s"
    except ConnectionRefusedError:
        return f"e-mail not sent: connection to {where} refused"
    except socket.gaierror:
        return f"e-mail not sent: host name {host} not found (SMTP_HOST)"
    except (smtplib.SMTPException, OSError) as exc:
        return f"e-mail not sent: {where}: {type(exc).__name__}"
    except Exception as exc:  # noqa: BLE001 - e-mail must never fail the run
        return f"e-mail not sent: {type(exc).__name__}"
    return None


# -- helpers ------------------------------------------------------------------------------------


def _message(subject: str, text: list[str], body: list[str], *, sender: str, to: list[str],
             secrets: list[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = _mask(_cap(scrub(subject)), secrets)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    domain = sender.rsplit("@", 1)[-1].strip("<> ") if "@" in sender else None
    msg["Message-ID"] = make_msgid("pybursar", domain=domain or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    plain = "\n".join(_cap(scrub(line)) for line in text) + "\n"
    msg.set_content(_mask(plain, secrets))
    page = ("<html><body style=\"font-family: sans-serif\">" + "\n".join(body) + "</body></html>\n")
    msg.add_alternative(_mask(page, secrets), subtype="html")
    return msg


def _h(text: str) -> str:
    """Scrubbed, capped and escaped for HTML."""
    return html.escape(_cap(scrub(text)))


def _cap(text: str) -> str:
    return text if len(text) <= LINE_LIMIT else text[: LINE_LIMIT - 3] + "..."


def _capped(items: list[str], limit: int) -> list[str]:
    return items if len(items) <= limit else items[:limit] + [f"... and {len(items) - limit} more"]


def _export_files(notes: list[str], prefix: str) -> list[str]:
    pattern = re.compile(re.escape(prefix) + r"\.\d{8}\.\d+\.[12]\b")
    return list(dict.fromkeys(m.group(0) for note in notes for m in pattern.finditer(note)))


def _money(amount: object) -> str:
    from decimal import Decimal

    value = Decimal(str(amount))
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


def _addresses(value: str | None) -> list[str]:
    return [addr for _, addr in getaddresses([value or ""]) if addr]


def _warn(warning: str | None) -> list[str]:
    return [warning] if warning else []

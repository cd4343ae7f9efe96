"""A dead-man's switch for cron: ping HEALTHCHECK_URL as a run starts, succeeds or fails.

Why: every other message we send says something about a run that happened.  Nothing we send can
say that a scheduled run never happened at all (cron stopped, the machine was down, the lock was
never freed).  A healthchecks-style monitor can: it expects a ping on a schedule and alerts when
none arrives.  The convention (healthchecks.io and the tools that copy it):

- `<url>/start` when a run begins (the monitor then also measures how long it took);
- `<url>` when it finished (exit 0, or 3: it ran to the end and listed what needs a person);
- `<url>/fail` when it failed (exit 1, or 2: a settings problem stops the run just as surely).

The ping is a courtesy, like Slack: a short timeout, never raises, never fails the run.  The URL
is treated as a secret (anyone holding it can report a run), so it is never in a message.  The
body of a finish ping carries the scrubbed summary (the monitor shows it as the ping's log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

from bursar.clients.notify import scrub

if TYPE_CHECKING:
    from bursar.settings import Settings

SETTING = "HEALTHCHECK_URL"
TIMEOUT = 5.0  # seconds, connect and read each: a slow monitor must not hold up cron
BODY_LIMIT = 10_000  # healthchecks.io keeps the first 10 kB of a ping body
_SUFFIX = {"start": "/start", "success": "", "fail": "/fail", "log": "/log"}


def ping(settings: Settings, event: str, text: str = "") -> str | None:
    """Ping the monitor for `event` (start, success, fail, log); None when sent or when no URL is
    set, else a one-line warning (never with the URL)."""
    url = settings.get(SETTING)
    if not url:
        return None
    return send(url, event, text, secrets=settings.secret_values())


def send(url: str, event: str, text: str = "", *, secrets: list[str] | None = None,
         timeout: float = TIMEOUT) -> str | None:
    target = url.rstrip("/") + _SUFFIX[event]
    body = "\n".join(scrub(line) for line in text.splitlines())
    for secret in secrets or []:
        if len(secret) >= 4:
            body = body.replace(secret, "***")
    try:
        response = requests.post(target, data=body[:BODY_LIMIT].encode("utf-8"), timeout=(timeout, timeout),
                                 headers={"Content-Type": "text/plain; charset=utf-8"}, allow_redirects=False)
    except requests.Timeout:
        return f"{SETTING}: {event} ping not sent: no answer within {timeout:g} s"
    except requests.ConnectionError:
        return f"{SETTING}: {event} ping not sent: could not connect to the monitor"
    except requests.RequestException as exc:
        return f"{SETTING}: {event} ping not sent: the URL is not usable ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - a ping must never fail the run
        return f"{SETTING}: {event} ping not sent: {type(exc).__name__}"
    if 200 <= response.status_code < 300:
        return None
    return f"{SETTING}: {event} ping not accepted: the monitor answered HTTP {response.status_code}"


def event_for(exit_code: int) -> str:
    """success for a run that got to the end (0, 3), fail otherwise."""
    return "success" if exit_code in (0, 3) else "fail"

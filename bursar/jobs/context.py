"""What every job is given: settings, the store, the clock, the effects, and lazily built clients.

Time is an argument: a job reads `ctx.now` (aware, in BURSAR_TIMEZONE), never the wall clock; the
CLI reads the clock once per command.  Every side effect outside the store goes through
`ctx.effects` (bursar.effects): a job never knows whether it is a dry run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from bursar.clients.sftp import SftpEndpoint
from bursar.effects import Effects
from bursar.runtime.summary import Summary
from bursar.settings import Settings
from bursar.store import Store

if TYPE_CHECKING:  # the HTTP client is imported on first use: most commands never call Alma
    from bursar.clients.alma.http import AlmaHttp

log = logging.getLogger("bursar")


@dataclass
class JobContext:
    settings: Settings
    store: Store
    now: datetime
    effects: Effects = field(default_factory=Effects)
    _alma: AlmaHttp | None = field(default=None, repr=False)

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def utc_now(self) -> datetime:
        """UTC, naive, whole seconds: the stamp for created/updated/job fields (as the original)."""
        return self.now.astimezone(UTC).replace(tzinfo=None, microsecond=0)

    @property
    def local_now(self) -> datetime:
        """Local wall-clock time, naive, whole seconds."""
        return self.now.replace(tzinfo=None, microsecond=0)

    def alma(self) -> AlmaHttp:
        """The shared Alma HTTP client (one session, one rate limiter), built on first use."""
        if self._alma is None:
            from bursar.clients.alma.http import AlmaHttp

            self._alma = AlmaHttp(
                self.settings.alma_api_url,
                self.settings.require("ALMA_API_KEY", "the Alma commands"),
                calls_per_second=self.settings.alma_calls_per_second,
                max_retries=self.settings.alma_retries,
                backoff_base=self.settings.alma_retry_backoff_ms / 1000,
                daily_reserve=self.settings.daily_reserve,
            )
        return self._alma

    def close(self) -> None:
        """Release the Alma session and the store (the effects belong to the command)."""
        if self._alma is not None:
            self._alma.close()
            self._alma = None
        self.store.close()

    def __enter__(self) -> JobContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def midnight(day: date) -> datetime:
    """A calendar date as the naive datetime the store keeps (Mongo has no date type)."""
    return datetime(day.year, day.month, day.day)


@contextmanager
def recorded(ctx: JobContext, kind: str, summary: Summary) -> Iterator[None]:
    """Record the job in `jobs`: In Progress, then Success with the summary's counts, or Failed
    with whatever stopped it (any exception, not only ours)."""
    job = start_job(ctx, kind)
    calls_before = ctx._alma.calls if ctx._alma is not None else 0
    try:
        yield
        if ctx._alma is not None and ctx._alma.calls > calls_before:
            summary.note(ctx._alma.quota_line(calls_before))
    except BaseException as exc:
        try:
            finish_job(ctx, job, error=str(exc) or type(exc).__name__)
        except Exception:  # the store itself may be what failed: the first error is the one to tell
            log.debug("could not record the failure of job %s", job, exc_info=True)
        raise
    finish_job(ctx, job, summary={"counts": summary.counts, "attention": len(summary.attention)})


def start_job(ctx: JobContext, kind: str) -> int | None:
    """Record a job as In Progress.  Jobs a killed process left 'In Progress' are closed as
    interrupted first, so the history stays truthful."""
    ctx.store.update_where(
        "jobs", {"type": kind, "status": "In Progress"},
        {"status": "Failed", "errorMsg": "interrupted (the process stopped before finishing)",
         "updated": ctx.utc_now},
    )
    stamp = ctx.utc_now
    return ctx.store.insert("jobs", {"type": kind, "status": "In Progress", "scheduled": stamp,
                                     "started": stamp, "created": stamp, "updated": stamp})


def finish_job(ctx: JobContext, job_id: int | None, *, error: str | None = None,
               summary: dict | None = None) -> None:
    if job_id is None:
        return
    fields: dict[str, Any] = {"status": "Failed" if error else "Success", "finished": ctx.utc_now,
                              "updated": ctx.utc_now}
    if error:
        fields["errorMsg"] = error
    # with the exit code its outcome maps to (0 ok, 3 needs attention, 1 failed), for `status`
    fields["summary"] = {**(summary or {}), "exitCode": 1 if error else 3 if (summary or {}).get("attention") else 0}
    ctx.store.update("jobs", job_id, fields)


def sftp_endpoint(ctx: JobContext, which: str) -> SftpEndpoint:
    """The SFTP server of `which` ("bursar_sftp" or "payments_sftp"), its settings required."""
    s = ctx.settings
    conf = getattr(s, which)
    needed_by = "sftpToBurs" if which == "bursar_sftp" else "importAlmaPayments"
    for suffix in ("HOST", "USER", "DIR"):
        s.require(f"{conf.label}_{suffix}", needed_by)
    if not conf.password and conf.key_file is None:
        s.require(f"{conf.label}_PASSWORD", needed_by + f" (or set {conf.label}_KEY_FILE)")
    return SftpEndpoint(label=conf.label, host=conf.host, port=conf.port, user=conf.user,
                        password=conf.password, key_file=conf.key_file, directory=conf.directory,
                        known_hosts=s.known_hosts)

"""today and payFines: the cron chains, with one combined summary.

today:    importAlmaFines -> exportBurs -> sftpToBurs -> importAlmaPayments -> backupDB  (M/W/F)
payFines: importAlmaPayments -> backupDB                                                (Tu/Th)

The chain stops at the first failed step, but the backup is still attempted once any step has
run (a failed step may have changed the store, and a backup of an unchanged store costs
little).  The combined summary carries every step's counts; the exit code is the failure's, or
3 when a step needs attention.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import crash
from ..errors import BursarError
from ..settings import Settings
from ..summary import Summary
from . import backup as backup_job
from . import export, import_fines, payments, send
from .context import JobContext

Step = tuple[str, Callable[[JobContext], Summary]]
TODAY: list[Step] = [("importAlmaFines", import_fines.run), ("exportBurs", export.run),
                     ("sftpToBurs", send.run), ("importAlmaPayments", payments.run)]
PAY_FINES: list[Step] = [("importAlmaPayments", payments.run)]


class ChainFailed(BursarError):
    """A step of the chain failed; the combined summary so far travels with the error."""

    def __init__(self, summary: Summary, cause: BursarError, step: str):
        super().__init__(f"{summary.command} stopped at {step}: {cause}")
        self.summary = summary
        self.cause = cause
        self.exit_code = cause.exit_code


def run_chain(name: str, steps: list[Step], make_context: Callable[[], JobContext], settings: Settings,
              *, dry_run: bool) -> Summary:
    combined = Summary(name, dry_run=dry_run)
    failure: BursarError | None = None
    failed_step = ""
    for step_name, step in steps:
        crash.point(f"{name}.before_{step_name}")
        ctx = make_context()
        try:
            combined.merge(step(ctx))
        except BursarError as exc:
            failure, failed_step = exc, step_name
            combined.note(f"{step_name} failed: {exc}")
            break
        finally:
            ctx.close()
            ctx.store.close()
    crash.point(f"{name}.before_backupDB")
    try:
        combined.merge(backup_job.backup(settings, dry_run=dry_run))
    except BursarError as exc:
        combined.note(f"backupDB failed: {exc}")
        if failure is None:
            failure, failed_step = exc, "backupDB"
    if failure is not None:
        raise ChainFailed(combined, failure, failed_step)
    return combined


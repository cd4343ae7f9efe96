"""today and payFines: the cron chains, with one combined summary.

today:    importAlmaFines -> exportBurs -> sftpToBurs | importAlmaPayments | backupDB   (M/W/F)
          | reconcile, on the days RECONCILE_ON names
payFines: importAlmaPayments | backupDB                                               (Tu/Th)

The steps run on one job context: one clock, one store (in a dry run, one dry-run view of it),
so each step sees what the one before did.  The two directions are independent (other
servers, other data): within Direction 1 the chain stops at the first failed step, but
Direction 2 still runs, and the backup is always attempted (a failed step may have changed the
store, and a backup of an unchanged store costs little).  The combined summary carries every
step's counts; a failure names every failed step and exits 1 (2 when every failure was a
settings problem), otherwise 3 when a step needs attention.
"""

from __future__ import annotations

from collections.abc import Callable

from bursar.errors import EXIT_FAILED, EXIT_USAGE, BursarError
from bursar.jobs import backup as backup_job
from bursar.jobs import export, import_fines, payments, reconcile, send
from bursar.jobs.context import JobContext
from bursar.runtime import crash
from bursar.runtime.summary import Summary

Step = tuple[str, Callable[[JobContext], Summary]]
Direction = list[Step]
TODAY: list[Direction] = [
    [("importAlmaFines", import_fines.run), ("exportBurs", export.run), ("sftpToBurs", send.run)],
    [("importAlmaPayments", payments.run)],
]
PAY_FINES: list[Direction] = [[("importAlmaPayments", payments.run)]]


class ChainFailed(BursarError):
    """Steps of the chain failed; the combined summary so far travels with the error."""

    def __init__(self, summary: Summary, failures: list[tuple[str, BursarError]]):
        steps = ", ".join(step for step, _ in failures)
        detail = "; ".join(f"{step}: {exc}" for step, exc in failures)
        super().__init__(f"{summary.command} failed at {steps} ({detail})")
        self.summary = summary
        self.failures = failures
        self.exit_code = EXIT_USAGE if all(e.exit_code == EXIT_USAGE for _, e in failures) else EXIT_FAILED


def run_chain(name: str, directions: list[Direction], ctx: JobContext) -> Summary:
    combined = ctx.effects.summary(name)
    failures: list[tuple[str, BursarError]] = []
    for direction in directions:
        for step_name, step in direction:
            crash.point(f"{name}.before_{step_name}")
            try:
                combined.merge(step(ctx))
            except BursarError as exc:
                failures.append((step_name, exc))
                combined.note(f"{step_name} failed: {exc}")
                break  # the rest of this direction depends on this step; the next direction does not
            finally:
                combined.notes.extend(ctx.effects.take_notes())
    crash.point(f"{name}.before_backupDB")
    try:
        combined.merge(backup_job.backup(ctx.settings, ctx.effects, ctx.now))
    except BursarError as exc:
        combined.note(f"backupDB failed: {exc}")
        failures.append(("backupDB", exc))
    finally:
        combined.notes.extend(ctx.effects.take_notes())
    if name == "today" and reconcile.due(ctx):  # RECONCILE_ON: after the backup, on the days it names
        try:
            combined.merge(reconcile.run_scheduled(ctx))
        except BursarError as exc:
            combined.note(f"reconcile failed: {exc}")
            failures.append(("reconcile", exc))
        finally:
            combined.notes.extend(ctx.effects.take_notes())
    if failures:
        raise ChainFailed(combined, failures)
    return combined

"""backupDB, restoreLast, restoreChoose: the store's backups as commands (rules in bursar.backup)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bursar.backup import CHOOSE_COUNT, Backup, list_backups, pick_backup
from bursar.clients.s3 import s3_target
from bursar.effects import Effects
from bursar.errors import BackupError, BursarError, UsageError
from bursar.runtime.summary import Summary
from bursar.settings import Settings


def backup(settings: Settings, effects: Effects, now: datetime) -> Summary:
    summary = effects.summary("backupDB")
    try:
        made, key = effects.backup(settings, now)
    except BackupError as exc:
        if exc.backup is not None:  # the local copy is complete; only the off-site copy failed
            summary.note(f"local backup {exc.backup.path} ({exc.backup.size:,} bytes)")
        raise
    summary.count("backups", 1)
    effects.done(summary, f"wrote {made.path} ({made.size:,} bytes)")
    if key:
        target = s3_target(settings)
        assert target is not None  # create_backup returns an S3 key only when given a target
        effects.done(summary, f"copied to s3://{target.bucket}/{key}")
    return summary


def choices(settings: Settings) -> list[Backup]:
    return list_backups(settings.backups_dir, s3=s3_target(settings))[:CHOOSE_COUNT]


def restore(settings: Settings, effects: Effects, now: datetime, chosen: Backup) -> Summary:
    summary = effects.summary("restore")
    summary.note(f"backup {chosen.name} ({chosen.location}, {chosen.size:,} bytes, "
                 f"made {chosen.created:%Y-%m-%d %H:%M} UTC)")
    before = _facts_before(settings, chosen, summary)
    restored, safety = effects.restore(settings, chosen, now)
    if not restored:
        return summary
    summary.count("restored", 1)
    if safety is not None:
        summary.note(f"the state before the restore was saved as {safety.path}")
    _roll_forward(settings, chosen, before, now, summary)
    return summary


def _facts_before(settings: Settings, chosen: Backup, summary: Summary) -> dict | None:
    """What the store about to be replaced knows (sent exports, the highest export id): the
    roll-forward checks the evidence against it.  None when that store cannot be read."""
    from bursar.jobs.rollforward import capture
    from bursar.store import open_store

    try:
        store = open_store(settings.db, create=False)
        try:
            return capture(store, since=chosen.created)
        finally:
            store.close()
    except BursarError as exc:
        summary.note(f"the current store could not be read before the restore ({exc})")
        return None


def _roll_forward(settings: Settings, chosen: Backup, before: dict | None, now: datetime, summary: Summary) -> None:
    from bursar.jobs import rollforward
    from bursar.jobs.context import JobContext
    from bursar.store import open_store

    ctx = JobContext(settings=settings, store=open_store(settings.db), now=now)
    try:
        rollforward.begin(ctx.store, backup=chosen.name, before=before, now=now)
        if rollforward.roll_forward(ctx, summary):
            summary.note(f"until the gap is closed, every command that bills or pays refuses to run "
                         f"(or add {rollforward.ACCEPT_FLAG} to accept the risk)")
    finally:
        ctx.close()


def restore_last(settings: Settings, effects: Effects, now: datetime) -> Summary:
    found = choices(settings)
    if not found:
        raise BackupError(f"no backup to restore in {settings.backups_dir}"
                          + (" or S3" if s3_target(settings) else ""))
    return restore(settings, effects, now, found[0])


def restore_choose(settings: Settings, effects: Effects, now: datetime, *, pick: int | None,
                   ask: Callable[[str], str] = input) -> Summary:
    found = choices(settings)
    if not found:
        raise BackupError(f"no backup to restore in {settings.backups_dir}")
    if pick is None:
        print("", *(f"{n}: {b.name}  ({b.location}, {b.size:,} bytes)" for n, b in enumerate(found, 1)), "", sep="\n")
        try:
            answer = ask("Please enter the number next to the backup file you want to use as a restore point: ")
        except EOFError:
            raise UsageError("no answer given; nothing was changed (use --pick N in scripts)") from None
        return restore(settings, effects, now, pick_backup(found, answer))
    return restore(settings, effects, now, pick_backup(found, pick))

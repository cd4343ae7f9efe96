"""backupDB, restoreLast, restoreChoose: the store's backups as commands (rules in bursar.backup)."""

from __future__ import annotations

from collections.abc import Callable

from ..backup import Backup, BackupError, create_backup, list_backups, restore_backup
from ..errors import BursarError, UsageError
from ..s3 import s3_target
from ..settings import Settings
from ..summary import Summary

CHOICES = 5  # restoreChoose lists the five newest backups, as the original did


def backup(settings: Settings, *, dry_run: bool = False) -> Summary:
    summary = Summary("backupDB", dry_run=dry_run)
    target = s3_target(settings)
    try:
        made, key = create_backup(settings.db_uri, settings.backups_dir, now=settings.now(),
                                  keep=settings.backups_keep, s3=target, dry_run=dry_run)
    except BackupError as exc:
        if exc.backup is not None:  # the local copy is complete; only the off-site copy failed
            summary.note(f"local backup {exc.backup.path} ({exc.backup.size:,} bytes)")
        raise
    verb = "would write" if dry_run else "wrote"
    summary.count("backups", 1)
    summary.note(f"{verb} {made.path}" + (f" ({made.size:,} bytes)" if not dry_run else ""))
    if key:
        assert target is not None  # create_backup returns an S3 key only when given a target
        summary.note(f"{'would copy' if dry_run else 'copied'} to s3://{target.bucket}/{key}")
    return summary


def choices(settings: Settings) -> list[Backup]:
    return list_backups(settings.backups_dir, s3=s3_target(settings))[:CHOICES]


def restore(settings: Settings, chosen: Backup, *, dry_run: bool = False) -> Summary:
    summary = Summary("restore", dry_run=dry_run)
    summary.note(f"backup {chosen.name} ({chosen.location}, {chosen.size:,} bytes, "
                 f"made {chosen.created:%Y-%m-%d %H:%M} UTC)")
    if dry_run:
        from ..backup import validate_backup

        if chosen.location == "local":
            validate_backup(chosen.path, chosen.engine)
            summary.note("the archive is valid; a real run would save the current state first, then restore it")
        return summary
    before = _facts_before(settings, summary)
    safety = restore_backup(settings.db_uri, chosen, settings.backups_dir, now=settings.now(), s3=s3_target(settings))
    summary.count("restored", 1)
    if safety is not None:
        summary.note(f"the state before the restore was saved as {safety.path}")
    _roll_forward(settings, chosen, before, summary)
    return summary


def _facts_before(settings: Settings, summary: Summary) -> dict | None:
    """What the store about to be replaced knows (sent exports, the highest export id): the
    roll-forward checks the evidence against it.  None when that store cannot be read."""
    from ..store import open_store
    from .rollforward import capture

    try:
        store = open_store(settings.db_uri)
    except BursarError as exc:
        summary.note(f"the current store could not be read before the restore ({exc})")
        return None
    try:
        return capture(store)
    except BursarError as exc:
        summary.note(f"the current store could not be read before the restore ({exc})")
        return None
    finally:
        store.close()


def _roll_forward(settings: Settings, chosen: Backup, before: dict | None, summary: Summary) -> None:
    from ..store import open_store
    from . import rollforward
    from .context import JobContext

    now = settings.now()
    ctx = JobContext(settings=settings, store=open_store(settings.db_uri), now=now)
    try:
        rollforward.begin(ctx.store, backup=chosen.name, before=before, now=now)
        if rollforward.roll_forward(ctx, summary):
            summary.note(f"until the gap is closed, every command that bills or pays refuses to run "
                         f"(or add {rollforward.ACCEPT_FLAG} to accept the risk)")
    finally:
        ctx.close()
        ctx.store.close()


def restore_last(settings: Settings, *, dry_run: bool = False) -> Summary:
    found = choices(settings)
    if not found:
        raise BackupError(f"no backup to restore in {settings.backups_dir}"
                          + (" or S3" if s3_target(settings) else ""))
    return restore(settings, found[0], dry_run=dry_run)


def restore_choose(settings: Settings, *, pick: int | None, dry_run: bool = False,
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
        answer = answer.strip()
        # ASCII digits only: str.isdigit() also accepts '²' (int() then fails) and other
        # scripts' digits such as '١' (which int() reads as 1)
        if not (answer.isascii() and answer.isdigit()):
            raise UsageError(f"{answer!r} is not a number from the list; nothing was changed")
        pick = int(answer)
    if not 1 <= pick <= len(found):
        raise UsageError(f"{pick} is not in the list (1 to {len(found)}); nothing was changed")
    return restore(settings, found[pick - 1], dry_run=dry_run)

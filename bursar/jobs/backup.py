"""backupDB, restoreLast, restoreChoose: the store's backups as commands (rules in bursar.backup)."""

from __future__ import annotations

from collections.abc import Callable

from ..backup import Backup, BackupError, create_backup, list_backups, restore_backup
from ..errors import UsageError
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
    safety = restore_backup(settings.db_uri, chosen, settings.backups_dir, now=settings.now(), s3=s3_target(settings))
    summary.count("restored", 1)
    if safety is not None:
        summary.note(f"the state before the restore was saved as {safety.path}")
    return summary


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

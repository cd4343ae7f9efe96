"""The command line: parse argv, load settings, run one job, map the outcome to an exit code.

Thin on purpose: the work is in `bursar.jobs`.  One top-level handler turns every error into a
one-line message and an exit code (0 ok, 1 failed, 2 usage/settings, 3 needs attention); a
traceback appears only with --debug.  Commands that change anything run one at a time (a lock)
and send their summary to Slack when it is configured.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bursar import settings as settings_mod
from bursar.errors import EXIT_FAILED, EXIT_OK, BursarError, UsageError
from bursar.runtime import logs, progress
from bursar.runtime.summary import Summary

if TYPE_CHECKING:  # imported on use at run time: `help` needs none of them
    from bursar.dispatch import Dispatch
    from bursar.store import Store

log = logging.getLogger("bursar")
Settings = settings_mod.Settings
Runner = Callable[[argparse.Namespace, Any], "Summary | str"]  # read-only: Settings; mutating: Dispatch


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    example: str  # arguments after the command name, for the copy-paste line in `help`
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Runner
    mutates: bool = True  # accepts --dry-run, takes the run lock, notifies
    needs_settings: bool = True
    bills_or_pays: bool = False  # refused while a restore left a gap (accepts --accept-restore-gap)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see 'abs.py help')")


def _no_args(parser: argparse.ArgumentParser) -> None:
    return None


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", metavar="FILE", help="with --dry-run: preview this Bursar profile (a built-in "
                        "name or a TOML file) on the current ledger, invisible characters marked")


def _preview_profile(args: argparse.Namespace, settings: Settings) -> Settings:
    """exportBurs --dry-run --profile FILE: the run formats with FILE; nothing is changed."""
    if not getattr(args, "profile", None):
        return settings
    if not args.dry_run:
        raise UsageError("exportBurs: --profile previews a profile and needs --dry-run "
                         "(set BURSAR_PROFILE to export with it)")
    from dataclasses import replace

    from bursar.profile import load

    return replace(settings, profile=replace(load(args.profile), preview=True))


def _job(load: Callable[[], Callable[..., Summary]], **flags: str) -> Runner:
    """A runner for one job; `load` imports it on use (`help` needs none of the jobs)."""

    def run(args: argparse.Namespace, dispatch: Dispatch) -> Summary:
        with dispatch.context() as ctx:
            summary = load()(ctx, **{k: getattr(args, v) for k, v in flags.items()})
            summary.notes.extend(dispatch.effects.take_notes())
            return summary

    return run


def _import_fines() -> Callable[..., Summary]:
    from bursar.jobs import import_fines

    return import_fines.run


def _export() -> Callable[..., Summary]:
    from bursar.jobs import export

    return export.run


def _send() -> Callable[..., Summary]:
    from bursar.jobs import send

    return send.run


def _payments() -> Callable[..., Summary]:
    from bursar.jobs import payments

    return payments.run


def _chain(which: str) -> Runner:
    def run(args: argparse.Namespace, dispatch: Dispatch) -> Summary:
        from bursar.jobs import today

        with dispatch.context() as ctx:
            return today.run_chain(which, today.TODAY if which == "today" else today.PAY_FINES, ctx)

    return run


def _backup(args: argparse.Namespace, dispatch: Dispatch) -> Summary:
    from bursar.jobs import backup

    return _with_notes(dispatch, backup.backup(dispatch.settings, dispatch.effects, dispatch.now))


def _restore_last(args: argparse.Namespace, dispatch: Dispatch) -> Summary:
    from bursar.jobs import backup

    return _with_notes(dispatch, backup.restore_last(dispatch.settings, dispatch.effects, dispatch.now))


def _restore_choose(args: argparse.Namespace, dispatch: Dispatch) -> Summary:
    from bursar.jobs import backup

    return _with_notes(dispatch, backup.restore_choose(dispatch.settings, dispatch.effects, dispatch.now,
                                                       pick=args.pick))


def _with_notes(dispatch: Dispatch, summary: Summary) -> Summary:
    summary.notes.extend(dispatch.effects.take_notes())
    return summary


def _pick_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pick", type=int, metavar="N", help="restore backup N of the list without asking")


def _lookup_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--rootAlmaFineId", metavar="ID", help="Alma Fine Fee Id")
    group.add_argument("--almaLoanId", metavar="ID", help="Alma Item Loan Id")


def _read_only(render: Callable[..., str], *, with_settings: bool = False, **flags: str) -> Runner:
    def run(args: argparse.Namespace, settings: Settings) -> str:
        from bursar.store import find_store, no_store

        store = find_store(settings.db, money=settings.get("BURSAR_MONGO_MONEY") or "auto")
        if store is None:
            raise no_store(settings.db)
        try:
            extra: dict[str, object] = {"settings": settings} if with_settings else {}
            return render(store, **{k: getattr(args, v) for k, v in flags.items()}, **extra)
        finally:
            store.close()

    return run


def _lookup(store: Store, **kwargs: Any) -> str:
    from bursar.jobs.lookup import lookup_fine

    return lookup_fine(store, **kwargs)


def _last_export(store: Store) -> str:
    from bursar.jobs.lookup import last_export

    return last_export(store)


def _import_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="re-read everything since ALMA_IMPORT_SINCE")


def _positive_days(text: str) -> int:
    from bursar.sandbox.demo import MAX_DAYS

    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_DAYS}, got {text!r}")
    return int(text)


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default="demo", help="folder for the demo's database, files and logs")
    parser.add_argument("--days", type=_positive_days, default=3, help="simulated days to run (1 to 366)")


def _demo(args: argparse.Namespace, settings: Settings) -> str:
    from bursar.sandbox.demo import run_demo

    return run_demo(Path(args.dir), days=args.days)


def _help(args: argparse.Namespace, settings: Settings) -> str:
    return help_text()


def _migrate_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="URI",
                        help="the new, empty store: sqlite:///PATH or mongodb://HOST:PORT/DBNAME")


def _migrate(args: argparse.Namespace, dispatch: Dispatch) -> Summary:
    from bursar.store.migrate import run

    settings = dispatch.settings
    return run(settings.db, args.to, money=settings.get("BURSAR_MONGO_MONEY") or "auto",
               dry_run=dispatch.dry_run)


def _reconcile_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--live", action="store_true", help="confirm the fines that differ through the Alma fees API")


def _reconcile(args: argparse.Namespace, settings: Settings) -> Summary:
    from bursar.jobs import reconcile  # opens an existing store only: a read-only command never creates one

    return reconcile.run_command(settings, live=args.live)


def _doctor_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notify", action="store_true", help="also send a test message to each notification set up")


def _doctor(args: argparse.Namespace, settings: None) -> str:
    from bursar.jobs import doctor  # loads the settings itself: a bad one is a line of the checklist

    return doctor.run(notify=args.notify, quiet=args.quiet)


def _status_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the same content as JSON, for monitoring tools")


def _status(args: argparse.Namespace, settings: Settings) -> str:
    from bursar.jobs.status import status

    return status(settings, as_json=args.json)


def _sandbox_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default="sandbox", help="folder for the sandbox's .env, database and files")
    parser.add_argument("--force", action="store_true", help="replace an existing DIR/.env (the rest is kept)")
    parser.add_argument("--days", type=_positive_days, default=30, help="simulated days available (1 to 366)")
    parser.add_argument("--day", type=_positive_days, default=1, help="start at this simulated day")
    parser.add_argument("--next-day", action="store_true",
                        help="move a running sandbox in DIR to its next simulated day, then exit")


def _sandbox(args: argparse.Namespace, settings: None) -> str:
    from bursar.sandbox import serve

    if args.next_day:
        return serve.next_day(Path(args.dir))
    return serve.serve(Path(args.dir), force=args.force, days=args.days, start_day=args.day)


def _after_run(settings: Settings, command: str, started: object, *, exit_code: int,
               summary: Summary | None = None, error: str | None = None, ran: bool = True) -> None:
    """After a real (not dry) run: e-mail, the run's record for `status` (not for a run that
    never started: the lock was busy), and the dead-man's switch ping.  Each one only ever logs
    a warning: none of them can fail the run."""
    from datetime import datetime

    from bursar.clients import healthcheck, mail
    from bursar.jobs.status import record_run

    assert isinstance(started, datetime)
    mailed = mail.mail_run(settings, summary) if error is None and summary is not None else \
        mail.mail_failure(settings, command, error or "failed", summary)
    recorded = record_run(settings, command, started=started, finished=settings.now(), exit_code=exit_code,
                          error=error, summary=summary) if ran else None
    text = summary.render() if summary is not None else ""
    for warning in (*mailed, recorded,
                    healthcheck.ping(settings, healthcheck.event_for(exit_code), f"{error or ''}\n{text}")):
        if warning:
            log.warning("%s", warning)


def _ping_start(settings: Settings) -> None:
    from bursar.clients import healthcheck

    warning = healthcheck.ping(settings, "start")
    if warning:
        log.warning("%s", warning)


COMMANDS: list[Command] = [
    Command("help", "list every command with an example line", "", _no_args, _help,
            mutates=False, needs_settings=False),
    Command("today", "the M/W/F cron run: importAlmaFines, exportBurs, sftpToBurs, importAlmaPayments, backupDB",
            "", _no_args, _chain("today"), bills_or_pays=True),
    Command("payFines", "the Tu/Th cron run: importAlmaPayments, then backupDB", "", _no_args, _chain("payFines"),
            bills_or_pays=True),
    Command("importAlmaFines", "Direction 1, step 1: pull the Analytics reports, merge them into the ledger",
            "", _import_args, _job(_import_fines, full="full"), bills_or_pays=True),
    Command("exportBurs", "Direction 1, step 2: turn new Alma activity into the Bursar's .1/.2 files",
            "", _export_args, _job(_export), bills_or_pays=True),
    Command("sftpToBurs", "Direction 1, step 3: upload every written export, verify, archive, mark sent",
            "", _no_args, _job(_send), bills_or_pays=True),
    Command("importAlmaPayments", "Direction 2: fetch the Bursar's payment files, pay each new payment in Alma once",
            "", _no_args, _job(_payments), bills_or_pays=True),
    Command("backupDB", "compressed backup of the whole store to BACKUPS_DIR (and S3 when configured)",
            "", _no_args, _backup),
    Command("restoreLast", "restore the newest backup (validated first; the current state is saved aside)",
            "", _no_args, _restore_last),
    Command("restoreChoose", "list the 5 newest backups and ask which one to restore",
            "", _pick_args, _restore_choose),
    Command("lookupFine", "print a fine with its ledgers, parts, exports, payments and why it is (not) billed",
            "--rootAlmaFineId 7816239430003841", _lookup_args,
            _read_only(_lookup, with_settings=True, root_id="rootAlmaFineId", loan_id="almaLoanId"), mutates=False),
    Command("printLastExport", "print the newest export: id, files, lines, totals, sent time",
            "", _no_args, _read_only(_last_export), mutates=False),
    Command("doctor", "read-only preflight of every setting, report, server and folder: a checklist (exit 0 / 1)",
            "", _doctor_args, _doctor, mutates=False, needs_settings=False),
    Command("status", "last run of each command, staleness, unsent exports, pending payments, open attention items",
            "", _status_args, _status, mutates=False),
    Command("migrate", "copy the whole store into a new, empty one (SQLite or MongoDB), verified by counts and totals",
            "--to sqlite:///data/bursar-copy.sqlite3", _migrate_args, _migrate),
    Command("reconcile", "read-only three-way check of Alma, the ledger and the Bursar: CSV + HTML report in "
            "REPORTS_DIR, exit 3 on differences", "", _reconcile_args, _reconcile, mutates=False),
    Command("demo", "run today's jobs on the built-in sandbox (fake Alma + SFTP) into ./demo",
            "", _demo_args, _demo, mutates=False, needs_settings=False),
    Command("sandbox", "start the built-in sandbox Alma + SFTP servers (Ctrl-C stops them) and write their .env",
            "--dir sandbox", _sandbox_args, _sandbox, mutates=False, needs_settings=False),
]
_BY_NAME = {c.name: c for c in COMMANDS}


def _invocation() -> str:
    if Path(sys.argv[0]).name == "pybursar":  # the console script of `pip install .` / pipx
        return "pybursar"
    script = Path(__file__).resolve().parent.parent / "abs.py"
    try:
        shown = script.relative_to(Path.cwd())
    except ValueError:
        shown = script
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(shown))}"


def help_text() -> str:
    prefix = _invocation()
    lines = ["pyBursar: keeps library fines in step between Alma and the Bursar.",
             "Copy a line and paste it; add --dry-run to see what a command would do without changing anything.", ""]
    for command in COMMANDS:
        call = f"{prefix} {command.name}" + (f" {command.example}" if command.example else "")
        lines.append(f"  {command.summary}:")
        lines.append(f"    {call}")
    lines += ["", "Exit codes: 0 ok, 1 the run failed, 2 usage or settings error,",
              "3 finished but something needs attention."]
    return "\n".join(lines)


def _parse(command: Command, rest: list[str]) -> argparse.Namespace:
    example = f"{_invocation()} {command.name}" + (f" {command.example}" if command.example else "")
    parser = _Parser(prog=f"abs.py {command.name}", description=command.summary,  # -h/--help: usage, exit 0
                     epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
    command.add_arguments(parser)
    if command.mutates:
        parser.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
    if command.bills_or_pays:
        parser.add_argument("--accept-restore-gap", action="store_true",
                            help="go on although a restore left exports unaccounted for (they may be billed again)")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on the console (cron)")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    args = parser.parse_args(rest)
    args.dry_run = getattr(args, "dry_run", False)
    args.accept_restore_gap = getattr(args, "accept_restore_gap", False)
    return args


class Terminated(KeyboardInterrupt):
    """SIGTERM (a shutdown, `kill`, a systemd stop): handled exactly like Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the run is already stopping: once is enough
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code.  Every error, from the first line on (before
    the settings and the log exist) and inside this handler too, ends as one scrubbed line on
    stderr: logging is bootstrapped first, so no record ever reaches Python's last-resort
    handler (which printed messages twice and tracebacks with secrets in them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    previous_sigterm: object = None
    try:
        logs.bootstrap(debug=debug)
        logs.add_secrets(settings_mod.secret_values_in(os.environ))
        try:
            previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (an embedding program): leave signals alone
            pass
        return _main(argv)
    except SystemExit:
        raise  # argparse's --help: its own exit code
    except BaseException as exc:  # the one place an error becomes an exit code
        try:
            return _handle(exc, debug)
        except BaseException as again:  # the handler itself failed (a closed stderr, a second signal)
            if isinstance(again, SystemExit):
                raise
            _emergency(f"error: {type(exc).__name__} (and {type(again).__name__} while reporting it)")
            return exc.exit_code if isinstance(exc, BursarError) else EXIT_FAILED
    finally:
        if previous_sigterm is not None:
            try:
                signal.signal(signal.SIGTERM, previous_sigterm)  # type: ignore[arg-type]
            except (ValueError, TypeError):
                pass


def _handle(exc: BaseException, debug: bool) -> int:
    if isinstance(exc, BursarError):
        log.error("%s", exc, extra=logs.FILE_ONLY)
        summary = getattr(exc, "summary", None)
        if isinstance(summary, Summary):
            print(summary.render())
        _print_error(str(exc))
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        how = "stopped by SIGTERM" if isinstance(exc, Terminated) else "interrupted"
        log.error("%s before it finished", how, extra=logs.FILE_ONLY)
        _print_error(f"{how} before it finished; re-run the command to finish (every command is safe to re-run)")
        return EXIT_FAILED
    if isinstance(exc, BrokenPipeError):  # `abs.py ... | head`: the reader went away
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError, AttributeError):
            pass
        log.error("the output was closed before the command finished (broken pipe)", extra=logs.FILE_ONLY)
        _print_error("the output was closed before the command finished (broken pipe)")
        return EXIT_FAILED
    log.error("unexpected error: %r", exc, exc_info=exc, extra=logs.FILE_ONLY)  # scrubbed, file only
    if debug:
        _write_stderr(logs.scrub("".join(traceback.format_exception(exc))))
    hint = "" if debug else " (run again with --debug for the traceback)"
    _print_error(f"unexpected {type(exc).__name__}: {exc}{hint}")
    return EXIT_FAILED


def _failure_message(exc: BaseException) -> str | None:
    """What the failure notification says about an error, or None when it is not a failure of
    the run (a usage mistake at the prompt, a normal exit).  Every other error notifies, the
    unexpected ones too: a cron run that stopped must never go unnoticed."""
    from bursar.errors import SettingsError

    if isinstance(exc, UsageError) and not isinstance(exc, SettingsError):
        return None
    if isinstance(exc, BursarError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted before it finished; re-run the command to finish"
    if isinstance(exc, Exception):
        return f"unexpected {type(exc).__name__}: {exc}"
    return None


def _print_error(message: str) -> None:
    """One line on stderr, with every known secret scrubbed."""
    _write_stderr("error: " + " ".join(logs.scrub(str(message)).split()) + "\n")


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):  # no stderr left (a closed pipe): the exit code still tells
        pass


def _emergency(line: str) -> None:
    """The last word when reporting itself failed: straight to file descriptor 2."""
    try:
        os.write(2, (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _main(argv: list[str]) -> int:
    name = argv[0] if argv else "help"
    if name in ("-h", "--help"):
        name = "help"
    command = _BY_NAME.get(name)
    if command is None:
        raise UsageError(f"unknown command {name!r}; run 'abs.py help' to list the commands")
    args = _parse(command, argv[1:])
    if not command.needs_settings:
        result = command.run(args, None)
        print(result.render() if isinstance(result, Summary) else result)
        return EXIT_OK
    settings = settings_mod.load()
    logs.add_secrets(settings.secret_values())  # before anything can log or fail
    progress.enabled = not args.quiet
    try:
        _refuse_a_missing_store(command, args, settings)  # before a log folder or a lock file is made
    except BursarError:
        for early in settings.warnings:  # a too-open .env is worth saying even on a refused run
            log.warning("%s", early)
        raise
    # a dry run or a read-only command creates nothing, not even the log folder: it logs only
    # into one that exists
    creates_nothing = args.dry_run or not command.mutates
    log_dir = None if creates_nothing and not settings.log_dir.is_dir() else settings.log_dir
    warning = logs.setup(log_dir, keep_days=settings.log_keep_days,
                         secrets=settings.secret_values(), quiet=args.quiet, debug=args.debug)
    for text in (*settings.warnings, warning):
        if text:
            log.warning("%s", text)
    if not command.mutates:
        result = command.run(args, settings)
        if not isinstance(result, Summary):
            print(result)
            return EXIT_OK
        if not args.quiet or result.exit_code != EXIT_OK:  # a read-only run with a summary (reconcile)
            result.brief = args.quiet
            print(result.render())
        return result.exit_code
    return _run_mutating(command, args, settings)


# Commands that work on a store that must already exist (the others create it, need none, or,
# as a dry run, run on an empty one).
NEEDS_A_STORE = frozenset({"exportBurs", "sftpToBurs", "importAlmaPayments", "payFines", "backupDB", "migrate",
                           "lookupFine", "printLastExport", "status", "reconcile"})


def _refuse_a_missing_store(command: Command, args: argparse.Namespace, settings: Settings) -> None:
    """A missing SQLite store, or a file that is not one, is named before anything is created
    or changed (MongoDB is checked when the store is opened: that needs the server)."""
    from bursar.store import no_store

    path = settings.db.path
    if path is None:
        return
    if path.is_file() and path.stat().st_size > 0:
        from bursar.store.sqlite import refuse_foreign

        refuse_foreign(path)
    elif command.name in NEEDS_A_STORE and not args.dry_run:
        raise no_store(settings.db)


def _run_mutating(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    import socket
    from contextlib import nullcontext

    from bursar.clients.notify import notify_failure, notify_run
    from bursar.dispatch import Dispatch
    from bursar.runtime.lock import LockBusy, run_lock

    settings = _preview_profile(args, settings)
    dispatch = Dispatch.make(settings, command.name, dry_run=args.dry_run,
                             accept_restore_gap=args.accept_restore_gap)
    started, host = dispatch.now, socket.gethostname()
    log.info("%s started%s", command.name, " (dry run)" if args.dry_run else "")
    # a dry run changes nothing, so it needs no lock (and creates no lock file)
    lock = nullcontext() if args.dry_run else run_lock(settings.lock_file, command=command.name, now=started)
    try:
        with lock:
            if not args.dry_run:  # the dead-man's switch: after the lock, so a refused run never starts it
                _ping_start(settings)
            result = command.run(args, dispatch)
    except BaseException as exc:
        dispatch.close()
        summary = getattr(exc, "summary", None)
        if isinstance(summary, Summary):  # a chain that stopped: main prints what it did so far
            summary.stamp(host=host, started=started, failed=True)
            log.info("%s", summary.render(), extra=logs.FILE_ONLY)
            summary.brief = args.quiet
        message = _failure_message(exc)
        if message is not None and not args.dry_run:
            for warning in notify_failure(settings, command.name, message):
                log.warning("%s", warning)
            _after_run(settings, command.name, started, exit_code=getattr(exc, "exit_code", EXIT_FAILED),
                       summary=summary if isinstance(summary, Summary) else None, error=message,
                       ran=not isinstance(exc, LockBusy))
        raise
    dispatch.close()
    assert isinstance(result, Summary)
    if dispatch.notices and dispatch.dry_run and not args.quiet:  # a dry run's first line says so
        print(*dispatch.notices, sep="\n")
    result.notes[:0] = dispatch.notices
    result.stamp(host=host, started=started)
    text = result.render()
    log.info("%s", text, extra=logs.FILE_ONLY)  # the console shows it once, printed below
    if not args.quiet or result.exit_code != EXIT_OK:  # --quiet: silent when all is well
        result.brief = args.quiet
        print(result.render())
    if not args.dry_run:
        for warning in notify_run(settings, result):
            log.warning("%s", warning)
        _after_run(settings, command.name, started, exit_code=result.exit_code, summary=result)
    return result.exit_code

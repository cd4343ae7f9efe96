"""The command line: parse argv, load settings, run one job, map the outcome to an exit code.

Thin on purpose: the work is in `bursar.jobs`.  One top-level handler turns every error into a
one-line message and an exit code (0 ok, 1 failed, 2 usage/settings, 3 needs attention); a
traceback appears only with --debug.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import logs
from . import settings as settings_mod
from .errors import EXIT_FAILED, EXIT_OK, BursarError, UsageError
from .summary import Summary

log = logging.getLogger("bursar")


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    example: str  # arguments after the command name, for the copy-paste line in `help`
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, settings_mod.Settings], Summary | str]
    mutates: bool = True  # accepts --dry-run
    needs_settings: bool = True


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see 'abs.py help')")


def _no_args(parser: argparse.ArgumentParser) -> None:
    return None


def _job_context(args: argparse.Namespace, settings: settings_mod.Settings):  # type: ignore[no-untyped-def]
    from .jobs.context import JobContext
    from .store import open_store
    from .store.overlay import OverlayStore

    store = open_store(settings.db_uri)
    if getattr(args, "dry_run", False):
        store = OverlayStore(store)
    return JobContext(settings=settings, store=store, now=settings.now(), dry_run=getattr(args, "dry_run", False))


Runner = Callable[[argparse.Namespace, "settings_mod.Settings"], Summary]


def _run_job(job: Callable[..., Summary], **kwargs: object) -> Runner:
    def run(args: argparse.Namespace, settings: settings_mod.Settings) -> Summary:
        ctx = _job_context(args, settings)
        try:
            return job(ctx, **{k: getattr(args, k) for k in kwargs})
        finally:
            ctx.close()
            ctx.store.close()

    return run


def _import_fines(ctx, full: bool = False) -> Summary:  # type: ignore[no-untyped-def]
    from .jobs import import_fines

    return import_fines.run(ctx, full=full)


def _export(ctx) -> Summary:  # type: ignore[no-untyped-def]
    from .jobs import export

    return export.run(ctx)


def _send(ctx) -> Summary:  # type: ignore[no-untyped-def]
    from .jobs import send

    return send.run(ctx)


def _lookup_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--rootAlmaFineId", metavar="ID", help="Alma Fine Fee Id")
    group.add_argument("--almaLoanId", metavar="ID", help="Alma Item Loan Id")


def _lookup(args: argparse.Namespace, settings: settings_mod.Settings) -> str:
    from .jobs.lookup import lookup_fine
    from .store import open_store

    store = open_store(settings.db_uri)
    try:
        return lookup_fine(store, root_id=args.rootAlmaFineId, loan_id=args.almaLoanId)
    finally:
        store.close()


def _last_export(args: argparse.Namespace, settings: settings_mod.Settings) -> str:
    from .jobs.lookup import last_export
    from .store import open_store

    store = open_store(settings.db_uri)
    try:
        return last_export(store)
    finally:
        store.close()


def _import_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="re-read everything since ALMA_IMPORT_SINCE")


def _demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default="demo", help="folder for the demo's database, files and logs")
    parser.add_argument("--days", type=int, default=3, help="simulated days to run")


def _demo(args: argparse.Namespace, settings: settings_mod.Settings) -> str:
    from .sandbox.demo import run_demo

    return run_demo(Path(args.dir), days=args.days)


def _help(args: argparse.Namespace, settings: settings_mod.Settings) -> str:
    return help_text()


COMMANDS: list[Command] = [
    Command("help", "list every command with an example line", "", _no_args, _help,
            mutates=False, needs_settings=False),
    Command("importAlmaFines", "Direction 1, step 1: pull the Analytics reports, merge them into the ledger",
            "", _import_args, _run_job(_import_fines, full=True)),
    Command("exportBurs", "Direction 1, step 2: turn new Alma activity into the Bursar's .1/.2 files",
            "", _no_args, _run_job(_export)),
    Command("sftpToBurs", "Direction 1, step 3: upload every written export, verify, archive, mark sent",
            "", _no_args, _run_job(_send)),
    Command("lookupFine", "print a fine with its Alma and Bursar ledgers, parts and exports",
            "--rootAlmaFineId 7816239430003841", _lookup_args, _lookup, mutates=False),
    Command("printLastExport", "print the newest export: id, files, lines, totals, sent time",
            "", _no_args, _last_export, mutates=False),
    Command("demo", "run Direction 1 on the built-in sandbox (fake Alma + SFTP) into ./demo",
            "", _demo_args, _demo, mutates=False, needs_settings=False),
]
_BY_NAME = {c.name: c for c in COMMANDS}


def _invocation() -> str:
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
    parser = _Parser(prog=f"abs.py {command.name}", description=command.summary, add_help=False)
    command.add_arguments(parser)
    if command.mutates:
        parser.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on the console (cron)")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    return parser.parse_args(rest)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return _main(argv)
    except BursarError as exc:
        log.error("%s", exc, extra=logs.FILE_ONLY)
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted; re-run the command to finish (every command is safe to re-run)")
        return EXIT_FAILED
    except Exception as exc:  # the one place an unexpected error becomes an exit code
        log.error("unexpected error: %r", exc, exc_info=True, extra=logs.FILE_ONLY)
        if debug:
            traceback.print_exc()
        _print_error(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)")
        return EXIT_FAILED


def _print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _main(argv: list[str]) -> int:
    name = argv[0] if argv else "help"
    if name in ("-h", "--help"):
        name = "help"
    command = _BY_NAME.get(name)
    if command is None:
        raise UsageError(f"unknown command {name!r}; run 'abs.py help' to list the commands")
    args = _parse(command, argv[1:])
    settings = settings_mod.load() if command.needs_settings else None
    if settings is not None:
        warning = logs.setup(settings.log_dir, keep_days=settings.log_keep_days,
                             secrets=settings.secret_values(), quiet=args.quiet, debug=args.debug)
        if warning:
            log.warning("%s", warning)
        log.info("%s started%s", command.name, " (dry run)" if getattr(args, "dry_run", False) else "")
    result = command.run(args, settings)  # type: ignore[arg-type]
    if isinstance(result, Summary):
        text = result.render()
        print(text)
        log.info("%s finished:\n%s", command.name, text)
        return result.exit_code
    print(result)
    return EXIT_OK

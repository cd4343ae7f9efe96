"""Logging: a rotating file in LOG_DIR plus the console; secrets scrubbed from every record.

Two stages, because errors can happen before the settings (and so LOG_DIR) are known:
- `bootstrap()` runs first thing in `cli.main`: a one-line console handler on the root and the
  'bursar' loggers, so no record ever reaches Python's last-resort handler (which printed the
  message *and* its traceback, secrets included, and made every early error appear twice).
- `setup()` adds the rotating file once the settings are loaded.

Every handler formats through `_Formatter`, which scrubs every secret known so far from the whole
formatted text: the message, and the traceback and stack text too.  The console never shows a
traceback unless --debug.  Log files are created 0600 (they hold Emplids), umask or not, and a
rotated file keeps that mode.
"""

from __future__ import annotations

import copy
import io
import logging
import logging.handlers
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

FORMAT = "%(asctime)s -- %(levelname)s -- %(module)s/%(funcName)s -- %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"
FILE_ONLY = {"file_only": True}  # `extra` for records the console already shows another way
LOG_NAME = "bursar.log"
FILE_MODE = 0o600
_MIN_SECRET = 4  # shorter values would scrub ordinary words

_OURS = "pybursar"  # the name of the handlers we install (others' handlers are left alone)
_secrets: set[str] = set()


def add_secrets(values: Iterable[str | None]) -> None:
    """Remember secret values: from now on they are scrubbed from every log line and message."""
    _secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)


def scrub(text: str) -> str:
    """`text` with every known secret replaced by '***' (longest first, so a secret that
    contains another is replaced whole)."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class SecretFilter(logging.Filter):
    """Replaces any secret value that slipped into a message with '***' (before any handler
    sees it; the formatter scrubs the formatted text, tracebacks included, once more)."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        add_secrets(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: leave it to the handler (which ignores it)
                return True
            scrubbed = scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


class _Formatter(logging.Formatter):
    """Scrubs secrets from the whole formatted record; `tracebacks=False` drops exception and
    stack text (the console without --debug: one line per record)."""

    def __init__(self, fmt: str, datefmt: str | None = None, *, tracebacks: bool = True):
        super().__init__(fmt, datefmt)
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        if not self.tracebacks and (record.exc_info or record.exc_text or record.stack_info):
            record = copy.copy(record)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return scrub(super().format(record))


class PrivateRotatingFileHandler(logging.handlers.TimedRotatingFileHandler):
    """TimedRotatingFileHandler whose files are always mode 0600: a new file is created 0600
    whatever the umask (os.open with a mode), an existing one is tightened to 0600 when opened,
    and rotation (a rename, then a new file through `_open`) keeps both at 0600."""

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.baseFilename, flags, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:
            pass  # not our file: it is still used, as before
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


def _console(debug: bool) -> logging.Handler:
    console = logging.StreamHandler(sys.stderr)
    console.set_name(_OURS)
    console.setFormatter(_Formatter("%(levelname)s %(message)s", tracebacks=debug))
    console.addFilter(SecretFilter([]))
    console.addFilter(_not_file_only)
    return console


def bootstrap(*, debug: bool) -> None:
    """The logging every run starts with, before settings are read: warnings and errors on one
    console line each, no traceback without --debug, and never Python's last-resort handler."""
    logging.raiseExceptions = False  # a failing handler must not print a traceback of the record
    console = _console(debug)
    console.setLevel(logging.DEBUG if debug else logging.WARNING)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _OURS]:
        root.removeHandler(old)
    root.setLevel(logging.WARNING)
    root.addHandler(console)
    logger = logging.getLogger("bursar")
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    logger.addHandler(console)
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    threading.excepthook = _thread_exception
    sys.unraisablehook = _unraisable


def _thread_exception(args: threading.ExceptHookArgs) -> None:
    """An exception that ends a thread: one line on the console, the traceback in the log file
    only (scrubbed), instead of Python's traceback on stderr."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    logger = logging.getLogger("bursar")
    logger.error("unexpected %s in %s: %s", args.exc_type.__name__, name, args.exc_value)
    logger.error("traceback of the error in %s", name, exc_info=exc_info, extra=FILE_ONLY)  # type: ignore[arg-type]


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """An exception Python cannot raise (in __del__, at shutdown): log file only."""
    exc_info = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    logging.getLogger("bursar").warning("exception ignored in %r: %s", unraisable.object, unraisable.exc_value,
                                        exc_info=exc_info, extra=FILE_ONLY)  # type: ignore[arg-type]


def setup(log_dir: Path | None, *, keep_days: int, secrets: list[str], quiet: bool, debug: bool) -> str | None:
    """Configure the 'bursar' logger.  Returns a warning when the log folder is unusable (the run
    goes on with console logging only: a log folder problem must not stop the money moving)."""
    add_secrets(secrets)
    logger = logging.getLogger("bursar")
    root = logging.getLogger()
    for old in [*logger.handlers, *root.handlers]:
        if isinstance(old, PrivateRotatingFileHandler):
            root.removeHandler(old)
            old.close()
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    console = _console(debug)
    console.setLevel(logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO))
    logger.addHandler(console)
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    if log_dir is None:
        return None
    try:
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = PrivateRotatingFileHandler(
            log_dir / LOG_NAME, when="midnight", backupCount=keep_days, encoding="utf-8")
        handler.set_name(_OURS)
    except OSError as exc:
        return f"logging to the console only: LOG_DIR {log_dir} is not usable ({exc.strerror})"
    _tighten_rotated(log_dir)
    handler.setFormatter(_Formatter(FORMAT, DATEFMT))
    handler.setLevel(logging.DEBUG if debug else logging.INFO)
    handler.addFilter(SecretFilter([]))
    logger.addHandler(handler)
    root.addHandler(handler)  # other libraries' warnings go to the file too
    return None


def _tighten_rotated(log_dir: Path) -> None:
    """Rotated files an older version left 0644 are made 0600 too."""
    try:
        rotated = [p for p in log_dir.iterdir() if p.name.startswith(LOG_NAME + ".")]
    except OSError:
        return
    for path in rotated:
        try:
            if not path.is_symlink() and path.is_file() and path.stat().st_mode & 0o077:
                path.chmod(FILE_MODE)
        except OSError:
            pass

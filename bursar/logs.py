"""Logging: a rotating file in LOG_DIR plus the console; secrets scrubbed from every record."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s -- %(levelname)s -- %(module)s/%(funcName)s -- %(message)s"
DATEFMT = "%Y-%m-%dT%H:%M:%S"
FILE_ONLY = {"file_only": True}  # `extra` for records the console already shows another way


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, "file_only", False)


class SecretFilter(logging.Filter):
    """Replaces any secret value that slipped into a message with '***'."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for s in self.secrets:
                    message = message.replace(s, "***")
                record.msg, record.args = message, None
        return True


def setup(log_dir: Path | None, *, keep_days: int, secrets: list[str], quiet: bool, debug: bool) -> str | None:
    """Configure the 'bursar' logger.  Returns a warning when the log folder is unusable (the run
    goes on with console logging only: a log folder problem must not stop the money moving)."""
    logger = logging.getLogger("bursar")
    logger.handlers.clear()
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    scrub = SecretFilter(secrets)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if debug else (logging.WARNING if quiet else logging.INFO))
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    console.addFilter(scrub)
    console.addFilter(_not_file_only)
    logger.addHandler(console)
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    if log_dir is None:
        return None
    try:
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        handler = logging.handlers.TimedRotatingFileHandler(
            log_dir / "bursar.log", when="midnight", backupCount=keep_days, encoding="utf-8")
    except OSError as exc:
        return f"logging to the console only: LOG_DIR {log_dir} is not usable ({exc.strerror})"
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    handler.setLevel(logging.DEBUG if debug else logging.INFO)
    handler.addFilter(scrub)
    logger.addHandler(handler)
    return None

"""Settings: one `Settings` object, loaded once at the edge from the environment and `.env`.

The environment wins; a `.env` file in the current directory (or the file named by
BURSAR_ENV_FILE) fills in what the environment leaves unset.  Every value is validated here, so
the rest of the program can trust it.  Secrets are kept out of `repr`, logs and messages.

The `.env` file is read here and nowhere else, as bytes: a file that cannot be read, is not
UTF-8 or has a line that is not NAME=value is a SettingsError (exit 2) naming the file and the
line, never showing any of its text (any line may hold a secret).  A `.env` that group or others
can read gives a warning (`Settings.warnings`), as ssh does for keys.  A plain http://
ALMA_API_URL is refused unless its host is loopback: the API key would travel in clear.

`SETTINGS` below is the single list of every setting: the README table and `.env.example` are
checked against it by a test.
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
import shlex
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from bursar.errors import SettingsError
from bursar.profile import DEFAULT_PROFILE, Profile
from bursar.profile import builtin as builtin_profile
from bursar.profile import load as load_profile
from bursar.store.target import DbTarget, parse_db_uri, uri_secrets


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str
    secret: bool = False


SETTINGS: list[Setting] = [
    Setting("BURSAR_DB_URI", "sqlite:///data/bursar.sqlite3",
            "store: sqlite:///PATH (embedded default) or mongodb://HOST:PORT/DBNAME"),
    Setting("BURSAR_MONGO_MONEY", "auto", "MongoDB money: auto (doubles on a database the original pyBursar "
            "created, else Decimal128), double or decimal128"),
    Setting("ALMA_API_URL", "https://api-na.hosted.exlibrisgroup.com", "Alma API base (regional host)"),
    Setting("ALMA_API_KEY", None, "Alma API key (Analytics read; Users read/write for payments)", secret=True),
    Setting("ALMA_REPORT_FINES", None, "full Analytics path of the All Fines report"),
    Setting("ALMA_REPORT_TRANSACTIONS", None, "full Analytics path of the All Transactions report"),
    Setting("ALMA_REPORT_BALANCES", None, "full path of the All User Balances report; unset skips the balance sync"),
    Setting("ALMA_IMPORT_SINCE", "2017-01-01T00:00:00", "oldest date the import ever asks for"),
    Setting("ALMA_IMPORT_OVERLAP_DAYS", "7", "incremental imports re-read this many days before the last success"),
    Setting("ALMA_CALLS_PER_SECOND", "10", "Alma API budget for this tool (the institution shares 25/s)"),
    Setting("ALMA_RETRIES", "6", "retries of a failed Alma GET (429, 5xx, network) before the run fails"),
    Setting("ALMA_RETRY_BACKOFF_MS", "500", "first retry delay in milliseconds; doubles each retry (with jitter)"),
    Setting("ALMA_PAYMENT_METHOD", "ONLINE", "payment method sent with op=pay"),
    Setting("ALMA_ANALYTICS_ROW_LIMIT", "65000", "row count at which an Analytics report run counts as capped "
            "(the import then fetches in smaller date windows)"),
    Setting("ALMA_DAILY_RESERVE", "5000", "stop calling Alma before X-Exl-Api-Remaining falls below this"),
    Setting("BURSAR_SFTP_HOST", None, "Bursar upload server"),
    Setting("BURSAR_SFTP_PORT", "22", "Bursar upload server port"),
    Setting("BURSAR_SFTP_USER", None, "Bursar upload user"),
    Setting("BURSAR_SFTP_PASSWORD", None, "Bursar upload password (or use the key file)", secret=True),
    Setting("BURSAR_SFTP_KEY_FILE", None, "private key file for the Bursar upload (no passphrase)"),
    Setting("BURSAR_SFTP_DIR", None, "absolute remote directory for the .1/.2 files"),
    Setting("PAYMENTS_SFTP_HOST", None, "server where the Bursar's payment CSVs arrive"),
    Setting("PAYMENTS_SFTP_PORT", "22", "payments server port"),
    Setting("PAYMENTS_SFTP_USER", None, "payments server user"),
    Setting("PAYMENTS_SFTP_PASSWORD", None, "payments server password (or use the key file)", secret=True),
    Setting("PAYMENTS_SFTP_KEY_FILE", None, "private key file for the payments server (no passphrase)"),
    Setting("PAYMENTS_SFTP_DIR", None, "absolute remote directory of the payment CSVs"),
    Setting("PAYMENTS_FILE_PREFIX", "ASUSASF_LIBRARY_REPORT_DTRANGE", "payment file name prefix"),
    Setting("PAYMENTS_DIR", "payments", "local archive of the payment files fetched from the Bursar"),
    Setting("PAYMENTS_SETTLE_MINUTES", "60",
            "a payment file whose last line has no line end is taken only after it stayed unchanged this long"),
    Setting("SFTP_KNOWN_HOSTS", "~/.ssh/known_hosts", "known_hosts file; a host key not in it is refused"),
    Setting("EXPORTS_DIR", "exports", "where .1/.2 files are written (archived to EXPORTS_DIR/sent after upload)"),
    Setting("BACKUPS_DIR", "backups", "local backups"),
    Setting("BACKUPS_KEEP", "30", "local backups kept (the oldest beyond this are deleted)"),
    Setting("S3_BUCKET", None, "off-site backup bucket (off when unset; standard AWS_* credentials)"),
    Setting("S3_PREFIX", "", "key prefix inside the bucket"),
    Setting("S3_ENDPOINT_URL", None, "S3-compatible endpoint (unset: AWS)"),
    Setting("SLACK_WEBHOOK_URL", None, "Slack incoming webhook for run summaries (off when unset)", secret=True),
    Setting("SLACK_ERROR_WEBHOOK_URL", None, "Slack incoming webhook for failures (off when unset)", secret=True),
    Setting("SMTP_HOST", None, "mail server for run summaries and failures by e-mail (off when unset)"),
    Setting("SMTP_PORT", None, "mail server port (unset: 587 for starttls, 465 for tls, 25 for none)"),
    Setting("SMTP_SECURITY", "starttls", "starttls, tls (implicit TLS, often port 465) or none (no login then, "
            "unless the host is loopback)"),
    Setting("SMTP_USER", None, "mail server login (unset: no login)"),
    Setting("SMTP_PASSWORD", None, "mail server password (with SMTP_USER)", secret=True),
    Setting("MAIL_FROM", None, "sender of the e-mails, e.g. pyBursar <library-systems@example.edu>"),
    Setting("MAIL_TO", None, "run summaries go to these addresses (comma-separated)"),
    Setting("MAIL_ERRORS_TO", None, "failures and runs that need attention also go to these (default: MAIL_TO)"),
    Setting("HEALTHCHECK_URL", None, "dead-man's switch: pinged at URL/start, URL on success, URL/fail on failure "
            "(off when unset)", secret=True),
    Setting("STATUS_STALE_DAYS", "4", "status warns when today has not succeeded for this many days"),
    Setting("REPORTS_DIR", "reports", "where reconcile writes reconcile-YYYYMMDD.csv and .html (0700, files 0600)"),
    Setting("RECONCILE_ON", None, "days today also runs reconcile, after the backup: weekday names (mon,fri) "
            "or monthly (the month's first run); off when unset"),
    Setting("LOG_DIR", "logs", "rotating log files"),
    Setting("BURSAR_LOCK_FILE", "data/pybursar.lock", "lock file that keeps runs one at a time"),
    Setting("STAGING_DIR", "data/staging", "private folder (0700) where importAlmaFines stages the reports "
            "before merging; a killed run's files are removed by the next import"),
    Setting("LOG_KEEP_DAYS", "90", "days of rotated log files to keep"),
    Setting("BURSAR_TIMEZONE", None, "the institution's zone for dates in files and names (default: the machine's)"),
    Setting("BURSAR_ACCOUNT_LAW", "531000000005", "charge account for fines at law locations"),
    Setting("BURSAR_ACCOUNT_REPLACEMENT", "531000000001", "charge account for lost item replacement fees"),
    Setting("BURSAR_ACCOUNT_DEFAULT", "531000000002", "charge account for every other fine"),
    Setting("BURSAR_LAW_LOCATION_PATTERN", "(^law)|(_lw_)", "regular expression for law location codes"),
    Setting("BURSAR_DUE_DAY", "25", "day of the month charges fall due"),
    Setting("BURSAR_FILE_PREFIX", "LIB_charges.dat", "export file name prefix"),
    Setting("BURSAR_PROFILE", "pybursar", "the Bursar format, fee mapping and billing rules: a built-in name "
            "(pybursar, peoplesoft-csv) or a TOML file (docs/profiles.md)"),
    Setting("BURSAR_IGNORE_FILE", None, "file of Alma fine ids never imported (one per line, # comments)"),
    Setting("BURSAR_LEGACY_XREF_FILE", None, "legacy Sierra cross-reference JSON (sierra_fine_xref.json)"),
    Setting("BURSAR_NOW", None, "fixed clock for replays and tests (YYYY-MM-DDTHH:MM:SS, local time)"),
]
_BY_NAME = {s.name: s for s in SETTINGS}

_ACCOUNT_RE = re.compile(r"^\d{1,12}$")


@dataclass(frozen=True)
class SftpSettings:
    label: str
    host: str | None
    port: int
    user: str | None
    password: str | None = field(repr=False)
    key_file: Path | None
    directory: str | None


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, str | None] = field(repr=False)
    db: DbTarget  # BURSAR_DB_URI, parsed (its repr leaves out the URI, which may hold a password)
    alma_api_url: str
    import_since: datetime
    import_overlap_days: int
    alma_calls_per_second: int
    alma_retries: int
    alma_retry_backoff_ms: int
    timezone: tzinfo
    exports_dir: Path
    backups_dir: Path
    payments_dir: Path
    backups_keep: int
    lock_file: Path
    staging_dir: Path
    log_dir: Path
    log_keep_days: int
    known_hosts: Path
    account_law: str
    account_replacement: str
    account_default: str
    law_pattern: str
    due_day: int
    file_prefix: str
    payment_method: str
    payments_file_prefix: str
    payments_settle_minutes: int
    ignore_file: Path | None
    legacy_xref_file: Path | None
    fixed_now: datetime | None
    bursar_sftp: SftpSettings
    payments_sftp: SftpSettings
    status_stale_days: int = 4
    analytics_row_limit: int = 65000
    daily_reserve: int = 5000
    reports_dir: Path = Path("reports")
    reconcile_on: frozenset[str] = frozenset()  # "mon".."sun", "monthly"
    warnings: tuple[str, ...] = ()  # for the console and the log (a too-open .env file)
    profile: Profile = field(default_factory=lambda: builtin_profile(DEFAULT_PROFILE))  # BURSAR_PROFILE

    def get(self, name: str) -> str | None:
        """The raw value of a setting (None when unset or empty)."""
        if name not in _BY_NAME:
            raise KeyError(name)
        return self.values.get(name) or None

    def require(self, name: str, needed_by: str) -> str:
        value = self.get(name)
        if value is None:
            raise SettingsError(f"{name} is not set (needed by {needed_by}); see .env.example")
        return value

    def now(self) -> datetime:
        """The current time as an aware datetime in BURSAR_TIMEZONE (or the fixed clock)."""
        if self.fixed_now is not None:
            return self.fixed_now
        return datetime.now(UTC).astimezone(self.timezone)

    def today(self) -> date:
        return self.now().date()

    def redacted(self) -> dict[str, str | None]:
        """Every setting with its effective value, secrets replaced by '***'."""
        out: dict[str, str | None] = {}
        for s in SETTINGS:
            value = self.values.get(s.name)
            out[s.name] = "***" if (s.secret and value) else value
        return out

    def secret_values(self) -> list[str]:
        """The secrets in force (the database password included), for the filter that scrubs
        them from logs and messages."""
        return secret_values_in(self.values)


def secret_values_in(values: Mapping[str, str | None]) -> list[str]:
    """Every secret in a mapping of settings (or the process environment): the secret settings
    and the password in BURSAR_DB_URI (raw and decoded)."""
    found = [v for s in SETTINGS if s.secret and (v := values.get(s.name))]
    if values.get("BURSAR_DB_URI"):
        found += uri_secrets(str(values["BURSAR_DB_URI"]))
    return found


def load(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read the environment (and .env) once and validate every setting."""
    env = dict(os.environ if environ is None else environ)
    base = cwd or Path.cwd()
    env_file = env.get("BURSAR_ENV_FILE")
    path = Path(env_file).expanduser() if env_file else base / ".env"
    if not path.is_absolute():
        path = base / path
    file_values, warning = read_env_file(path, named=bool(env_file))
    raw: dict[str, str | None] = {}
    for s in SETTINGS:
        value = env.get(s.name)
        if value is None or value == "":
            value = file_values.get(s.name)
        if value is None or value == "":
            value = s.default
        raw[s.name] = value
    settings = _validate(raw, base)
    return replace(settings, warnings=(warning,)) if warning else settings


def read_env_file(path: Path, *, named: bool) -> tuple[dict[str, str], str | None]:
    """The NAME=value pairs of a settings file, and a warning when others can read it.

    A missing `.env` in the working folder is simply no file; one that BURSAR_ENV_FILE names
    must exist.  Every problem is a SettingsError naming the file (and the line), never quoting
    the file's text."""
    where = f"BURSAR_ENV_FILE names {path}" if named else f"the settings file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if named:
            raise SettingsError(f"{where}, which does not exist") from None
        return {}, None
    except PermissionError:
        raise SettingsError(f"cannot read {where}: permission denied") from None
    except OSError as exc:
        raise SettingsError(f"cannot read {where}: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
            if named:
                raise SettingsError(f"{where}, which is not a file")
            return {}, None  # a folder called .env is not a settings file
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    except OSError as exc:
        raise SettingsError(f"cannot read {where}: {_reason(exc)}") from None
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SettingsError(f"the settings file {path}: line {line} is not valid UTF-8 "
                            "(save the file as UTF-8)") from None
    text = text.removeprefix("\ufeff")
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise SettingsError(f"the settings file {path}: line {binding.original.line} is not a "
                                "NAME=value line (see .env.example)")
    values = {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}
    warning = None
    if info.st_mode & 0o044 and stat.S_ISREG(info.st_mode):
        who = "group and others" if info.st_mode & 0o044 == 0o044 else (
            "its group" if info.st_mode & 0o040 else "others")
        warning = (f"the settings file {path} is readable by {who} (mode {stat.S_IMODE(info.st_mode):04o}) "
                   f"and holds secrets: run chmod 600 {shlex.quote(str(path))}")
    return values, warning


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


_LOOPBACK_NAMES = ("localhost", "localhost.")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _validate(raw: dict[str, str | None], base: Path) -> Settings:
    def path(name: str) -> Path:
        p = Path(str(raw[name])).expanduser()
        return p if p.is_absolute() else base / p

    def optional_path(name: str) -> Path | None:
        return path(name) if raw[name] else None

    def integer(name: str, low: int, high: int) -> int:
        return _parse(name, raw[name], lambda v: _bounded_int(v, low, high), f"a whole number from {low} to {high}")

    tz = _parse("BURSAR_TIMEZONE", raw["BURSAR_TIMEZONE"], ZoneInfo, "an IANA zone name such as America/Phoenix") \
        if raw["BURSAR_TIMEZONE"] else _machine_zone()
    fixed_now = None
    if raw["BURSAR_NOW"]:
        fixed_now = _parse("BURSAR_NOW", raw["BURSAR_NOW"], datetime.fromisoformat, "YYYY-MM-DDTHH:MM:SS")
        fixed_now = fixed_now.replace(tzinfo=tz) if fixed_now.tzinfo is None else fixed_now.astimezone(tz)
    for name in ("BURSAR_ACCOUNT_LAW", "BURSAR_ACCOUNT_REPLACEMENT", "BURSAR_ACCOUNT_DEFAULT"):
        if not _ACCOUNT_RE.match(str(raw[name])):
            raise SettingsError(f"{name} must be an account number of at most 12 digits, got {raw[name]!r}")
    _parse("BURSAR_LAW_LOCATION_PATTERN", raw["BURSAR_LAW_LOCATION_PATTERN"], re.compile, "a regular expression")
    api_url = str(raw["ALMA_API_URL"]).rstrip("/")
    if not re.match(r"^https?://[^/\s]+", api_url):
        raise SettingsError(f"ALMA_API_URL must be an http(s) URL, got {api_url!r}")
    if api_url.lower().startswith("http://"):
        try:
            host = urlsplit(api_url).hostname or ""
        except ValueError:
            raise SettingsError(f"ALMA_API_URL is not a usable URL, got {api_url!r}") from None
        if not _is_loopback(host):
            raise SettingsError(f"ALMA_API_URL must use https:// (plain http:// would send the API key "
                                f"in clear; it is allowed only for a loopback host such as 127.0.0.1), "
                                f"got host {host!r}")
    since = _parse("ALMA_IMPORT_SINCE", raw["ALMA_IMPORT_SINCE"], datetime.fromisoformat, "YYYY-MM-DDTHH:MM:SS")
    if raw["BURSAR_SFTP_DIR"] and not str(raw["BURSAR_SFTP_DIR"]).startswith("/"):
        raise SettingsError("BURSAR_SFTP_DIR must be an absolute path on the server")
    if raw["PAYMENTS_SFTP_DIR"] and not str(raw["PAYMENTS_SFTP_DIR"]).startswith("/"):
        raise SettingsError("PAYMENTS_SFTP_DIR must be an absolute path on the server")
    _check_notifications(raw)
    return Settings(
        values=raw,
        db=parse_db_uri(str(raw["BURSAR_DB_URI"]), base=base),
        alma_api_url=api_url,
        import_since=since.replace(tzinfo=None),
        import_overlap_days=integer("ALMA_IMPORT_OVERLAP_DAYS", 0, 3650),
        alma_calls_per_second=integer("ALMA_CALLS_PER_SECOND", 1, 1000),
        alma_retries=integer("ALMA_RETRIES", 0, 20),
        alma_retry_backoff_ms=integer("ALMA_RETRY_BACKOFF_MS", 1, 60000),
        timezone=tz,
        exports_dir=path("EXPORTS_DIR"),
        backups_dir=path("BACKUPS_DIR"),
        payments_dir=path("PAYMENTS_DIR"),
        backups_keep=integer("BACKUPS_KEEP", 1, 100000),
        lock_file=path("BURSAR_LOCK_FILE"),
        staging_dir=path("STAGING_DIR"),
        log_dir=path("LOG_DIR"),
        log_keep_days=integer("LOG_KEEP_DAYS", 1, 3650),
        known_hosts=path("SFTP_KNOWN_HOSTS"),
        account_law=str(raw["BURSAR_ACCOUNT_LAW"]),
        account_replacement=str(raw["BURSAR_ACCOUNT_REPLACEMENT"]),
        account_default=str(raw["BURSAR_ACCOUNT_DEFAULT"]),
        law_pattern=str(raw["BURSAR_LAW_LOCATION_PATTERN"]),
        due_day=integer("BURSAR_DUE_DAY", 1, 28),
        file_prefix=str(raw["BURSAR_FILE_PREFIX"]),
        payment_method=str(raw["ALMA_PAYMENT_METHOD"]),
        payments_file_prefix=str(raw["PAYMENTS_FILE_PREFIX"]),
        payments_settle_minutes=integer("PAYMENTS_SETTLE_MINUTES", 0, 10080),
        ignore_file=optional_path("BURSAR_IGNORE_FILE"),
        legacy_xref_file=optional_path("BURSAR_LEGACY_XREF_FILE"),
        fixed_now=fixed_now,
        bursar_sftp=_sftp("BURSAR_SFTP", raw, path),
        payments_sftp=_sftp("PAYMENTS_SFTP", raw, path),
        status_stale_days=integer("STATUS_STALE_DAYS", 1, 3650),
        analytics_row_limit=integer("ALMA_ANALYTICS_ROW_LIMIT", 1, 10_000_000),
        daily_reserve=integer("ALMA_DAILY_RESERVE", 0, 100_000_000),
        reports_dir=path("REPORTS_DIR"),
        reconcile_on=reconcile_days(raw["RECONCILE_ON"]),
        profile=load_profile(str(raw["BURSAR_PROFILE"])),
    )


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def reconcile_days(value: str | None) -> frozenset[str]:
    """RECONCILE_ON: weekday names (mon or monday, any case) and/or `monthly`, comma-separated."""
    days: set[str] = set()
    for word in (value or "").replace(" ", ",").split(","):
        word = word.strip().lower()
        if not word:
            continue
        short = word[:3]
        if word == "monthly":
            days.add(word)
        elif short in WEEKDAYS and word in (short, {"tue": "tuesday", "wed": "wednesday", "thu": "thursday",
                                                    "sat": "saturday"}.get(short, short + "day")):
            days.add(short)
        else:
            raise SettingsError(f"RECONCILE_ON must be weekday names (mon,tue,wed,thu,fri,sat,sun) or monthly, "
                                f"separated by commas, got {value!r}")
    return frozenset(days)


SMTP_SECURITY = ("starttls", "tls", "none")


def _check_notifications(raw: dict[str, str | None]) -> None:
    """E-mail and the dead-man's switch: a half-configured mailer fails here (exit 2, naming the
    setting), not silently at the end of every run."""
    from email.utils import getaddresses

    security = str(raw["SMTP_SECURITY"] or "").lower()
    if security not in SMTP_SECURITY:
        raise SettingsError(f"SMTP_SECURITY must be starttls, tls or none, got {raw['SMTP_SECURITY']!r}")
    if raw["SMTP_PORT"]:
        _parse("SMTP_PORT", raw["SMTP_PORT"], lambda v: _bounded_int(v, 1, 65535), "a port number")
    host = raw["SMTP_HOST"]
    if host:
        for name in ("MAIL_FROM", "MAIL_TO"):
            if not raw[name]:
                raise SettingsError(f"SMTP_HOST is set but {name} is not (needed to send e-mail); see .env.example")
        for name in ("MAIL_FROM", "MAIL_TO", "MAIL_ERRORS_TO"):
            value = raw[name]
            if value and not all("@" in addr and " " not in addr for _, addr in getaddresses([value])):
                raise SettingsError(f"{name} must be e-mail addresses separated by commas, got {value!r}")
        if bool(raw["SMTP_USER"]) != bool(raw["SMTP_PASSWORD"]):
            raise SettingsError("SMTP_USER and SMTP_PASSWORD go together: set both to log in, or neither")
        if raw["SMTP_USER"] and security == "none" and not _is_loopback(host):
            raise SettingsError("SMTP_SECURITY=none would send SMTP_PASSWORD in clear; use starttls or tls "
                                "(none with a login is allowed only for a loopback host)")
    url = raw["HEALTHCHECK_URL"]
    if url and not re.match(r"^https?://[^/\s]+\S*$", url):
        raise SettingsError("HEALTHCHECK_URL must be an http(s) URL (its value is not shown: it works as a secret)")


def _sftp(prefix: str, raw: dict[str, str | None], path: Callable[[str], Path]) -> SftpSettings:
    port = _parse(f"{prefix}_PORT", raw[f"{prefix}_PORT"], lambda v: _bounded_int(v, 1, 65535), "a port number")
    return SftpSettings(
        label=prefix,
        host=raw[f"{prefix}_HOST"],
        port=port,
        user=raw[f"{prefix}_USER"],
        password=raw[f"{prefix}_PASSWORD"],
        key_file=path(f"{prefix}_KEY_FILE") if raw[f"{prefix}_KEY_FILE"] else None,
        directory=raw[f"{prefix}_DIR"],
    )


_T = TypeVar("_T")


def _bounded_int(value: str, low: int, high: int) -> int:
    number = int(value)
    if not low <= number <= high:
        raise ValueError(value)
    return number


def _parse(name: str, value: str | None, parse: Callable[[str], _T], expected: str) -> _T:
    try:
        return parse(str(value))
    except (ValueError, TypeError, ZoneInfoNotFoundError, re.error):
        shown = "***" if _BY_NAME[name].secret else repr(value)
        raise SettingsError(f"{name} must be {expected}, got {shown}") from None


def _machine_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC

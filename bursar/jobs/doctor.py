"""`doctor`: a read-only preflight of every setting, report, server and folder, as a checklist.

Why: before the first cron run a site needs to know that each setting works against the real
Alma and the real Bursar servers, and, when one does not, what exactly to change.  A wrong
Analytics report otherwise shows up only as Alma's "420033 No more rows to fetch" in the middle
of an import.  Each check prints one line with ✓ or ✗ (and `-` for something not configured,
which is not a failure); every ✗ is followed by one line of advice.  Exit 0 when every check
passed, 1 otherwise.

It changes nothing: no store is created (a missing one is a ✗), the run lock is looked at, not
taken, folders are not created, nothing is logged to LOG_DIR.  The only writes are two probes,
both removed at once: a small file under a temporary name in the Bursar's upload folder, and a
probe object in S3.  `--notify` also sends a test message to each notification configured.

Settings are loaded here rather than by the CLI so that a bad setting is reported as a ✗ line;
a bad BURSAR_TIMEZONE is reported and the other checks go on in UTC.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bursar import settings as settings_mod
from bursar.errors import AlmaError, BursarError, ReportError, SettingsError, SftpError, StoreError
from bursar.rules import columns as C
from bursar.runtime import logs

if TYPE_CHECKING:
    from bursar.clients.alma.http import AlmaHttp
    from bursar.clients.sftp import SftpSession

Settings = settings_mod.Settings

# The regional API gateways (Ex Libris Developer Network).  China is listed both ways: the
# OpenAPI files say .com, current client code says .com.cn.
REGIONS = {
    "api-na.hosted.exlibrisgroup.com": "North America",
    "api-eu.hosted.exlibrisgroup.com": "Europe",
    "api-ap.hosted.exlibrisgroup.com": "Asia Pacific",
    "api-aps.hosted.exlibrisgroup.com": "Asia Pacific (Australia)",
    "api-ca.hosted.exlibrisgroup.com": "Canada",
    "api-cn.hosted.exlibrisgroup.com.cn": "China",
    "api-cn.hosted.exlibrisgroup.com": "China",
}
KEY_TEST_PATH = "/almaws/v1/users/operation/test"  # a cheap call: Users access, no data
# (setting, report name, required headings, the column its date filter compares, or None)
REPORTS = [
    ("ALMA_REPORT_FINES", "All Fines", C.FINES_REQUIRED, C.FINES_FILTER_COLUMN),
    ("ALMA_REPORT_TRANSACTIONS", "All Transactions", C.TRANSACTIONS_REQUIRED, C.TRANSACTIONS_FILTER_COLUMN),
    ("ALMA_REPORT_BALANCES", "All User Balances", C.BALANCES_REQUIRED, None),
]
MIN_FREE = 200 * 1024 * 1024  # below this a folder's file system counts as full
TIMEOUT = 15.0
PROBE_PREFIX = ".pybursar-doctor-"


class DoctorFailed(BursarError):
    """Some checks failed (exit 1); the checklist above says which and what to do."""


@dataclass(frozen=True)
class Check:
    ok: bool | None  # None: not configured or not tried (neither a pass nor a failure)
    text: str
    advice: str | None = None


def run(*, notify: bool = False, quiet: bool = False, out: Callable[[str], None] | None = None,
        environ: dict[str, str] | None = None) -> str:
    """Run every check, printing each line as it is known; return the closing line when all
    passed, else raise DoctorFailed."""
    write = out or _print
    marks = _marks()
    total = failed = 0
    for check in checks(notify=notify, environ=environ):
        if check.ok is not None:
            total += 1
            failed += not check.ok
        if quiet and check.ok is not False:
            continue
        write(logs.scrub(f"{marks[check.ok]} {check.text}"))
        if check.advice and check.ok is False:
            write(logs.scrub(f"    {marks['advice']} {check.advice}"))
    if failed:
        raise DoctorFailed(f"doctor: {failed} of {total} checks failed; the line under each "
                           f"{marks[False]} says what to do")
    return f"doctor: all {total} checks passed"


def checks(*, notify: bool, environ: dict[str, str] | None = None) -> Iterator[Check]:
    env = dict(os.environ if environ is None else environ)
    settings, zone_check = yield from _settings(env)
    if settings is None:
        return
    yield from _alma(settings)
    yield from _sftp(settings, settings.bursar_sftp, upload=True)
    yield from _sftp(settings, settings.payments_sftp, upload=False)
    yield _s3(settings)
    yield from _notifications(settings, notify)
    yield _store(settings)
    yield _lock(settings)
    for setting, folder in (("EXPORTS_DIR", settings.exports_dir), ("BACKUPS_DIR", settings.backups_dir),
                            ("LOG_DIR", settings.log_dir)):
        yield _free_space(setting, folder)
    if zone_check is not None:
        yield zone_check


# -- settings and the time zone ------------------------------------------------------------------


_REQUIRED = ["ALMA_API_KEY", "ALMA_REPORT_FINES", "ALMA_REPORT_TRANSACTIONS",
             "BURSAR_SFTP_HOST", "BURSAR_SFTP_USER", "BURSAR_SFTP_DIR",
             "PAYMENTS_SFTP_HOST", "PAYMENTS_SFTP_USER", "PAYMENTS_SFTP_DIR"]


def _settings(env: dict[str, str]) -> Generator[Check, None, tuple[Settings | None, Check | None]]:
    """Yields the settings checks; returns (settings or None, the time-zone check)."""
    path = _env_path(env)
    where = f"{path}" if path.is_file() else f"the environment; there is no settings file at {path}"
    try:
        file_values, _ = settings_mod.read_env_file(path, named=bool(env.get("BURSAR_ENV_FILE")))
    except SettingsError as exc:
        yield Check(False, f"settings: {exc}", "fix the file (every setting is explained in .env.example)")
        return None, None
    zone_name = env.get("BURSAR_TIMEZONE") or file_values.get("BURSAR_TIMEZONE")
    zone_error = None
    if zone_name:
        try:
            ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone_error = zone_name
            env["BURSAR_TIMEZONE"] = "UTC"  # the environment wins over .env: go on in UTC
    try:
        settings = settings_mod.load(env)
    except SettingsError as exc:
        yield Check(False, f"settings: {exc}", f"fix it in {path} (every setting is explained in .env.example)")
        return None, None
    logs.add_secrets(settings.secret_values())
    missing = [name for name in _REQUIRED if not settings.get(name)]
    for conf in (settings.bursar_sftp, settings.payments_sftp):
        if not conf.password and conf.key_file is None:
            missing.append(f"{conf.label}_PASSWORD (or {conf.label}_KEY_FILE)")
    if missing:
        yield Check(False, f"settings: valid, but not set: {', '.join(missing)}",
                    f"set them in {path} (see .env.example; the README explains each)")
    else:
        yield Check(True, f"settings: every required setting is set and valid (from {where})")
    for warning in settings.warnings:
        yield Check(False, f"settings file: {warning.split(': run ')[0]}", f"run chmod 600 {path}")
    if zone_error is not None:
        zone = Check(False, f"time zone: BURSAR_TIMEZONE {zone_error!r} is not a time zone name "
                            "(the checks above used UTC)",
                     "use an IANA name such as America/Phoenix (timedatectl list-timezones lists them)")
    else:
        now = settings.now()
        name = zone_name or f"the machine's zone, {now:%Z} (BURSAR_TIMEZONE is not set)"
        fixed = f"; BURSAR_NOW fixes the clock at {settings.fixed_now:%Y-%m-%d %H:%M}" if settings.fixed_now else ""
        zone = Check(True, f"time zone: {name}; local time now {now:%Y-%m-%d %H:%M %Z} "
                           f"(UTC{now:%z}){fixed}")
    return settings, zone


def _env_path(env: dict[str, str]) -> Path:
    """The settings file `settings.load` reads (BURSAR_ENV_FILE, else .env in the cwd)."""
    named = env.get("BURSAR_ENV_FILE")
    path = Path(named).expanduser() if named else Path.cwd() / ".env"
    return path if path.is_absolute() else Path.cwd() / path


# -- Alma and the Analytics reports ----------------------------------------------------------


def _region(url: str) -> tuple[str, str]:
    host = (urlsplit(url).hostname or url).lower()
    region = REGIONS.get(host)
    if region:
        return host, region
    if host in ("127.0.0.1", "localhost", "::1"):
        return host, "a local server, such as the sandbox"
    return host, "not one of Ex Libris's regional hosts api-na, -eu, -ap, -ca, -cn"


def _alma(settings: Settings) -> Iterator[Check]:
    from bursar.clients.alma.http import AlmaHttp, AlmaHttpError

    host, region = _region(settings.alma_api_url)
    key = settings.get("ALMA_API_KEY")
    if not key:
        yield Check(None, "Alma: not tried (ALMA_API_KEY is not set)")
        return
    with AlmaHttp(settings.alma_api_url, key, calls_per_second=settings.alma_calls_per_second,
                  connect_timeout=TIMEOUT, read_timeout=60, max_retries=1, backoff_base=0.2) as http:
        try:
            response = http.get(KEY_TEST_PATH)
            remaining = response.headers.get("X-Exl-Api-Remaining")
            response.close()
        except AlmaHttpError as exc:
            yield Check(False, f"Alma: {host} ({region}) refused the API key: {exc}",
                        "check ALMA_API_KEY in the Developer Network (a production key with Users read/write "
                        "and Analytics read) and that ALMA_API_URL is your region's host")
            return
        except AlmaError as exc:
            yield Check(False, f"Alma: {exc}", "check ALMA_API_URL (your region's host, e.g. "
                        "https://api-na.hosted.exlibrisgroup.com) and this machine's network or proxy")
            return
        left = f"; {int(remaining):,} API calls left today" if remaining and remaining.isdigit() else ""
        yield Check(True, f"Alma: the API key works at {host} ({region}){left}")

        since = (settings.now() - timedelta(days=7)).replace(tzinfo=None)
        for setting, name, required, filter_column in REPORTS:
            path = settings.get(setting)
            if not path:
                if setting == "ALMA_REPORT_BALANCES":
                    yield Check(None, f"{name} report: not set ({setting}); the patron balance sync is off")
                else:
                    yield Check(False, f"{name} report: {setting} is not set",
                                "copy the report's full path from Alma Analytics (e.g. /shared/Your University/"
                                f"Reports/{name}) into {setting}")
                continue
            yield _report(http, setting, name, path, required, filter_column, since)


def _report(http: AlmaHttp, setting: str, name: str, path: str, required: list[str], filter_column: str | None,
            since: datetime) -> Check:
    """One `limit=25` call with the report's date filter: it exists, its columns have the
    required headings, and the filter is prompted (else Alma answers 420033)."""
    from bursar.clients.alma.analytics import date_filter, iter_report
    from bursar.clients.alma.http import AlmaHttpError

    what = f"{name} report ({setting})"
    heading = C.FILTER_COLUMN_HEADINGS.get(filter_column or "")
    stream = iter_report(http, path, filter_xml=date_filter(filter_column, since) if filter_column else None,
                         fallback_columns=None, limit=25, still_loading_retries=3, still_loading_wait=2.0,
                         setting=setting)
    try:
        columns = stream.read_columns()
    except ReportError as exc:
        if "is prompted" in str(exc):
            return Check(False, f"{what}: its date filter is not prompted: Alma answered 420033 "
                                f"'No more rows to fetch' to a filter on {filter_column}",
                         f"in Alma Analytics add a filter on {heading!r} with the operator 'is prompted' "
                         "to the report, and save it")
        return Check(False, f"{what}: {exc}", "open the report in Alma Analytics and give every column its "
                                               "heading (see the README's table of reports)")
    except AlmaHttpError as exc:
        if "path not found" in (exc.error_message or str(exc)).lower():
            return Check(False, f"{what}: no report at {path}",
                         f"copy the report's full path from Alma Analytics (its Properties) into {setting}")
        return Check(False, f"{what}: {exc}", "check the report's path and that the key has Analytics read")
    except AlmaError as exc:
        return Check(False, f"{what}: {exc}", "try again later; if it persists, check the report in Analytics")
    finally:
        stream.close()
    missing = [h for h in required if h not in columns]
    if missing:
        return Check(False, f"{what}: no column with the heading " + ", ".join(repr(h) for h in missing),
                     "add the column(s) to the report in Alma Analytics with exactly that heading "
                     "(Column Properties > Column Format > Custom Heading), and save it")
    prompted = f"; its date filter on {heading!r} is prompted" if heading else ""
    return Check(True, f"{what}: found, with all {len(required)} required columns by heading{prompted}")


# -- SFTP ----------------------------------------------------------------------------------------


def _sftp(settings: Settings, conf: settings_mod.SftpSettings, *, upload: bool) -> Iterator[Check]:
    import paramiko

    from bursar.clients import sftp

    label = conf.label
    missing = [f"{label}_{s}" for s, v in (("HOST", conf.host), ("USER", conf.user), ("DIR", conf.directory)) if not v]
    if not conf.password and conf.key_file is None:
        missing.append(f"{label}_PASSWORD")
    if missing:
        yield Check(None, f"{label}: not tried ({', '.join(missing)} not set)")
        return
    assert conf.host and conf.user and conf.directory
    where = f"[{conf.host}]:{conf.port}"
    try:
        sock = socket.create_connection((conf.host, conf.port), timeout=TIMEOUT)
    except OSError as exc:
        yield Check(False, f"{label}: cannot reach {where}: {_os_reason(exc)}",
                    f"check {label}_HOST and {label}_PORT, and that the firewall lets this machine through "
                    "(ask the Bursar's office which address they allow)")
        return
    yield Check(True, f"{label}: {where} is reachable")

    known_hosts = settings.known_hosts
    name = sftp.known_hosts_name(conf.host, conf.port)
    trusted = paramiko.HostKeys()
    known_error = None
    if known_hosts.is_file():
        try:
            for entry in sftp.read_known_hosts(known_hosts):
                for host_name in entry.hostnames:
                    trusted.add(host_name, entry.key.get_name(), entry.key)
        except Exception as exc:  # noqa: BLE001 - _BadKnownHosts: the message says which line
            known_error = f"cannot read SFTP_KNOWN_HOSTS {known_hosts}: {exc}"
    else:
        known_error = f"SFTP_KNOWN_HOSTS {known_hosts} does not exist"
    ours: dict[str, paramiko.PKey] = dict(trusted.lookup(name) or {})
    transport = paramiko.Transport(sock)
    try:
        if ours:  # ask for the key type we know, as ssh does, so a server with several keys matches
            options = transport.get_security_options()
            first = next(iter(ours.keys()))
            options.key_types = [first, *(t for t in options.key_types if t != first)]
        transport.start_client(timeout=TIMEOUT)
        offered = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        yield Check(False, f"{label}: {where} does not speak SSH: {_os_reason(exc)}",
                    f"check {label}_PORT: it must be the server's SFTP (SSH) port")
        return
    finally:
        transport.close()
    fingerprint = f"{offered.get_name()} {sftp.fingerprint(offered)}"
    line = sftp.known_hosts_line(conf.host, conf.port, offered)
    recorded = ours.get(offered.get_name())
    if recorded is None:
        why = known_error or f"{name} has no {offered.get_name()} key in SFTP_KNOWN_HOSTS ({known_hosts})"
        yield Check(False, f"{label}: host key not known ({why}); the server offers {fingerprint}",
                    f"check that fingerprint with the Bursar's office; once it matches add this line to "
                    f"{known_hosts}: {line}")
        yield Check(None, f"{label}: login and folder not tried until the host key is known")
        return
    if recorded.asbytes() != offered.asbytes():
        yield Check(False, f"{label}: host key CHANGED: the server now offers {fingerprint}, SFTP_KNOWN_HOSTS has "
                           f"{sftp.fingerprint(recorded)} (possible man-in-the-middle)",
                    f"ask the Bursar's office; only once they confirm the new fingerprint replace the line for "
                    f"{name} in {known_hosts} with: {line}")
        return
    yield Check(True, f"{label}: host key {fingerprint} is the one in SFTP_KNOWN_HOSTS")

    endpoint = sftp.SftpEndpoint(label=label, host=conf.host, port=conf.port, user=conf.user,
                                 password=conf.password, key_file=conf.key_file, directory=conf.directory,
                                 known_hosts=known_hosts)
    how = f"key file {conf.key_file}" if conf.key_file else "password"
    try:
        session = sftp.connect(endpoint, timeout=TIMEOUT)
    except SftpError as exc:
        yield Check(False, str(exc), f"check {label}_USER and {label}_PASSWORD (or {label}_KEY_FILE) "
                                     "with the Bursar's office")
        return
    yield Check(True, f"{label}: login as {conf.user!r} works ({how})")
    with session:
        yield _upload_probe(session, label, conf.directory) if upload else \
            _payments_folder(session, label, conf.directory, settings.payments_file_prefix)


def _upload_probe(session: SftpSession, label: str, directory: str) -> Check:
    name = f"{PROBE_PREFIX}{secrets.token_hex(4)}.tmp"
    with tempfile.TemporaryDirectory(prefix="pybursar-doctor-") as tmp:
        probe = Path(tmp) / name
        probe.write_bytes(b"pyBursar doctor: a test that this folder is writable; removed at once\n")
        try:
            session.upload_verified(probe, name)
        except SftpError as exc:
            return Check(False, f"{label}: upload folder {directory} is not writable: {exc}",
                         f"ask the Bursar's office to let the account write in {directory}, or fix {label}_DIR")
    try:
        session.remove(name)
    except SftpError as exc:
        return Check(False, f"{label}: the test file {directory}/{name} could not be removed: {exc}",
                     "remove it by hand, and ask the Bursar's office whether the account may delete its own files")
    return Check(True, f"{label}: upload folder {directory} is writable (a test file was uploaded under a "
                       "temporary name, verified and removed)")


def _payments_folder(session: SftpSession, label: str, directory: str, prefix: str) -> Check:
    try:
        files = session.listdir()
    except SftpError as exc:
        return Check(False, f"{label}: payments folder {directory} is not readable: {exc}",
                     f"check {label}_DIR with the Bursar's office")
    matching = [f.name for f in files if f.name.startswith(prefix)]
    if not matching and files:
        return Check(False, f"{label}: payments folder {directory} is readable, but none of its {len(files)} "
                            f"file(s) starts with PAYMENTS_FILE_PREFIX={prefix!r} (e.g. {files[0].name!r})",
                     "set PAYMENTS_FILE_PREFIX to the start of the Bursar's payment file names")
    newest = f", newest {matching[-1]}" if matching else " (none has arrived yet)"
    return Check(True, f"{label}: payments folder {directory} is readable: {len(matching)} file(s) start with "
                       f"PAYMENTS_FILE_PREFIX={prefix!r}{newest}")


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


# -- S3 and notifications -------------------------------------------------------------------


def _s3(settings: Settings) -> Check:
    from bursar.clients.s3 import delete, s3_target, upload_verified
    from bursar.errors import BackupError

    target = s3_target(settings)
    if target is None:
        return Check(None, "S3: off (S3_BUCKET is not set): backups stay on this machine only")
    name = f"{PROBE_PREFIX}{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="pybursar-doctor-") as tmp:
        probe = Path(tmp) / name
        probe.write_bytes(b"pyBursar doctor probe; removed at once\n")
        try:
            key = upload_verified(target, probe, name)
            delete(target, key)
        except BackupError as exc:
            return Check(False, f"S3: {exc}", "check S3_BUCKET, S3_PREFIX, S3_ENDPOINT_URL and the AWS credentials "
                                              "(AWS_* variables, ~/.aws or the instance role)")
    return Check(True, f"S3: {target.describe()} is reachable and writable (a probe object was written, "
                       "verified and removed)")


def _notifications(settings: Settings, notify: bool) -> Iterator[Check]:
    from bursar.clients import healthcheck, mail
    from bursar.clients.notify import send

    host = socket.gethostname()
    names = [n for n in ("SLACK_WEBHOOK_URL", "SLACK_ERROR_WEBHOOK_URL", "HEALTHCHECK_URL") if settings.get(n)]
    if settings.get("SMTP_HOST"):
        names.insert(0, "e-mail (SMTP_HOST)")
    if not notify:
        yield Check(None, f"notifications: {', '.join(names) or 'none configured'}"
                          + (" (add --notify to send each a test message)" if names else ""))
        return
    if not names:
        yield Check(None, "notifications: none configured (Slack, e-mail and HEALTHCHECK_URL are all off)")
        return
    if settings.get("SMTP_HOST"):
        for label, errors in (("MAIL_TO", False), ("MAIL_ERRORS_TO", True)):
            to = mail.recipients(settings, errors=errors, only_errors=errors)
            if errors and to == mail.recipients(settings, errors=False):
                continue  # no separate errors address: one test is enough
            msg = mail.probe_message(host=host, sender=str(settings.get("MAIL_FROM")), to=to)
            warning = mail.deliver(settings, msg, to)
            yield Check(warning is None, f"e-mail to {label} ({', '.join(to)}): "
                                         + ("test message accepted by the mail server" if warning is None else warning),
                        "check SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_USER/SMTP_PASSWORD with your mail admins")
    for setting in ("SLACK_WEBHOOK_URL", "SLACK_ERROR_WEBHOOK_URL"):
        url = settings.get(setting)
        if url:
            warning = send(url, {"text": f"pyBursar doctor on {host}: test message ({setting})"})
            yield Check(warning is None, f"{setting}: " + ("test message sent" if warning is None else warning),
                        f"check {setting} (Slack: Apps > Incoming Webhooks)")
    url = settings.get("HEALTHCHECK_URL")
    if url:
        warning = healthcheck.send(url, "log", f"pyBursar doctor on {host}: test")
        yield Check(warning is None, "HEALTHCHECK_URL: " + ("the monitor accepted a /log ping (counted as neither "
                                                           "success nor failure)" if warning is None else warning),
                    "check HEALTHCHECK_URL: it is the check's ping URL, without /start or /fail")


# -- the store, the lock, folders ------------------------------------------------------------


def _store(settings: Settings) -> Check:
    from bursar.store import find_store

    where = settings.db.location
    try:
        store = find_store(settings.db, money=settings.get("BURSAR_MONGO_MONEY") or "auto")
    except (SettingsError, StoreError) as exc:
        return Check(False, f"store: {exc}", "check BURSAR_DB_URI")
    if store is None:
        return Check(False, f"store: no pyBursar database at {where}",
                     "a new site: the first importAlmaFines (or today) creates it; otherwise check BURSAR_DB_URI "
                     "and the working directory (a relative path starts from where the command runs)")
    try:
        fines, exports = store.count("fines"), store.count("burs_exports")
        if store.engine == "sqlite":
            version = _sqlite_version(settings.db.sqlite_file)
            kind = f"SQLite, pyBursar layout version {version}"
        else:
            kind = f"MongoDB in the original's layout, money stored as {getattr(store, 'money_type', '?')}"
    except (StoreError, sqlite3.Error) as exc:
        return Check(False, f"store: {where} cannot be read: {exc}", "check BURSAR_DB_URI and the file's owner")
    finally:
        store.close()
    return Check(True, f"store: a pyBursar store at {where} ({kind}; {fines:,} fines, {exports:,} exports)")


def _sqlite_version(path: Path) -> int:
    con = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def _lock(settings: Settings) -> Check:
    from bursar.runtime.lock import lock_holder

    try:
        holder = lock_holder(settings.lock_file)
    except BursarError as exc:
        return Check(False, f"lock: {exc}", "check BURSAR_LOCK_FILE")
    if holder:
        return Check(False, f"lock: a run holds {settings.lock_file} ({holder})",
                     "wait for that run to finish (a killed run never holds the lock: the kernel frees it)")
    return Check(True, f"lock: free ({settings.lock_file})")


def _free_space(setting: str, folder: Path) -> Check:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing == folder and not folder.is_dir():
        return Check(False, f"{setting} {folder} is not a folder", f"point {setting} at a folder")
    later = "" if existing == folder else " (does not exist yet: made on first use)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return Check(False, f"{setting} {folder}{later}: {existing} is not writable by this user",
                     f"give the user that runs pyBursar write access to {existing}, or change {setting}")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE:
        return Check(False, f"{setting} {folder}: only {_size(free)} free", "free some space (BACKUPS_KEEP limits "
                                                                            "the local backups)")
    return Check(True, f"{setting} {folder}{later}: {_size(free)} free")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,} bytes"


# -- output ------------------------------------------------------------------------------------


def _marks() -> dict[object, str]:
    """✓ ✗ - and →, or plain ASCII where the console cannot show them."""
    try:
        "✓✗→".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return {True: "[ok]", False: "[FAIL]", None: "[--]", "advice": "->"}
    return {True: "✓", False: "✗", None: "-", "advice": "→"}


def _print(line: str) -> None:
    print(line, flush=True)

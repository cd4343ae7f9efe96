"""`abs.py demo`: the whole `today` run on the sandbox, on a fresh SQLite store in ./demo.

Starts the sandbox Alma server and SFTP server on loopback, generates a few days of realistic
Alma activity and the Bursar's cumulative payment files, and runs `today` (importAlmaFines ->
exportBurs -> sftpToBurs -> importAlmaPayments -> backupDB) once per simulated day with the clock
set to that day, exactly as cron would; then it shows a restore.  Everything it makes stays in
the demo folder.
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import datetime, time
from pathlib import Path

from bursar import settings as settings_mod
from bursar.effects import Effects
from bursar.jobs import backup as backup_job
from bursar.jobs import today
from bursar.jobs.context import JobContext
from bursar.sandbox.alma_server import SandboxAlma
from bursar.sandbox.generator import SANDBOX_REPORTS, generate_days
from bursar.sandbox.payments_gen import fold_payments, install_world_keeping_payments, payment_files
from bursar.sandbox.sftp_server import SandboxSftp
from bursar.store import open_store

MARKER = ".pybursar-demo"
UPLOAD_DIR = "/bursar/incoming"
PAYMENTS_DIR = "/bursar/outgoing"
TIMEZONE = "America/Phoenix"


def prepare_folder(folder: Path) -> Path:
    """A fresh demo folder; only a folder the demo made itself is ever emptied."""
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            from bursar.errors import UsageError

            raise UsageError(f"{folder} exists and was not made by the demo; choose another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    (folder / MARKER).write_text("made by 'abs.py demo'; safe to delete\n")
    return folder


def demo_environment(folder: Path, alma: SandboxAlma, sftp: SandboxSftp, password: str) -> dict[str, str]:
    if alma.url is None or sftp.port is None:
        raise RuntimeError("start the sandbox servers before building the demo environment")
    return {
        "BURSAR_DB_URI": f"sqlite:///{folder / 'data' / 'bursar.sqlite3'}",
        "ALMA_API_URL": alma.url,
        "ALMA_API_KEY": alma.api_key,
        "ALMA_REPORT_FINES": SANDBOX_REPORTS.fines,
        "ALMA_REPORT_TRANSACTIONS": SANDBOX_REPORTS.transactions,
        "ALMA_REPORT_BALANCES": SANDBOX_REPORTS.balances,
        "BURSAR_SFTP_HOST": "127.0.0.1",
        "BURSAR_SFTP_PORT": str(sftp.port),
        "BURSAR_SFTP_USER": "bursar",
        "BURSAR_SFTP_PASSWORD": password,
        "BURSAR_SFTP_DIR": UPLOAD_DIR,
        "PAYMENTS_SFTP_HOST": "127.0.0.1",
        "PAYMENTS_SFTP_PORT": str(sftp.port),
        "PAYMENTS_SFTP_USER": "bursar",
        "PAYMENTS_SFTP_PASSWORD": password,
        "PAYMENTS_SFTP_DIR": PAYMENTS_DIR,
        "PAYMENTS_DIR": str(folder / "payments"),
        "BURSAR_LOCK_FILE": str(folder / "data" / "pybursar.lock"),
        "SFTP_KNOWN_HOSTS": str(folder / "known_hosts"),
        "EXPORTS_DIR": str(folder / "exports"),
        "BACKUPS_DIR": str(folder / "backups"),
        "LOG_DIR": str(folder / "logs"),
        "BURSAR_TIMEZONE": TIMEZONE,
    }


MAX_DAYS = 366


def run_demo(folder: Path, *, days: int = 3) -> str:
    if not 1 <= days <= MAX_DAYS:
        from bursar.errors import UsageError

        raise UsageError(f"demo --days must be a whole number from 1 to {MAX_DAYS}, got {days}")
    folder = prepare_folder(folder)
    server_root = folder / "sftp-server"
    uploads = server_root / UPLOAD_DIR.strip("/")
    drops = server_root / PAYMENTS_DIR.strip("/")
    uploads.mkdir(parents=True)
    drops.mkdir(parents=True)
    password = secrets.token_urlsafe(12)
    out: list[str] = [f"pyBursar demo in {folder}", ""]
    worlds = generate_days(days=days)
    files = payment_files(worlds)
    with SandboxAlma() as alma, SandboxSftp(server_root, users={"bursar": password}) as sftp:
        sftp.write_known_hosts(folder / "known_hosts")
        env = demo_environment(folder, alma, sftp, password)
        env_file = folder / ".env"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 from the start: it holds secrets
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("".join(f"{k}={v}\n" for k, v in env.items()))
        env_file.chmod(0o600)
        paid: list[dict] = []
        for world, payments in zip(worlds, files):
            now = datetime.combine(world.day, time(18, 0))
            # the nightly Analytics refresh shows yesterday's Bursar payments as Alma payments
            install_world_keeping_payments(alma, fold_payments(world, paid, now=now))
            (drops / payments.name).write_bytes(payments.data)
            settings = settings_mod.load({**env, "BURSAR_NOW": now.isoformat()}, cwd=folder)
            out.append(f"== {world.day:%A %Y-%m-%d}: {len(world.fines)} fines in Alma so far; "
                       f"the Bursar's payments file is {payments.name} ==")
            out.append(_today(settings))
            out.append("")
            paid = [{**call, "time": call.get("time", now)} for call in paid + alma.pay_calls[len(paid):]]
        out.append("== restoreLast: the newest backup, validated, with the current state saved aside first ==")
        out.append(backup_job.restore_last(settings, Effects(), settings.now()).render())
    out.append("")
    out.append("Files the Bursar received (sandbox SFTP server):")
    out += [f"  {path}" for path in sorted(uploads.iterdir())] or ["  (none)"]
    out.append(f"Payments applied in the sandbox Alma: {len(alma.pay_calls)}")
    out += ["", f"Local archive of sent files: {folder / 'exports' / 'sent'}",
            f"Backups: {folder / 'backups'}",
            f"Database: {folder / 'data' / 'bursar.sqlite3'}",
            f"Look around: BURSAR_ENV_FILE={env_file} python abs.py printLastExport"]
    return "\n".join(out)


def _today(settings: settings_mod.Settings) -> str:
    try:
        with JobContext(settings=settings, store=open_store(settings.db), now=settings.now()) as ctx:
            return today.run_chain("today", today.TODAY, ctx).render()
    except today.ChainFailed as exc:
        return exc.summary.render() + f"\n  error: {exc}"

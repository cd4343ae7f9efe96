"""`abs.py demo`: Direction 1 end to end on the sandbox, on a fresh SQLite store in ./demo.

Starts the sandbox Alma server and SFTP server on loopback, generates a few days of realistic
Alma activity, and runs importAlmaFines -> exportBurs -> sftpToBurs once per simulated day with
the clock set to that day, exactly as cron would.  Everything it makes stays in the demo folder.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from .. import settings as settings_mod
from ..jobs import export, import_fines, send
from ..jobs.context import JobContext
from ..store import open_store
from ..summary import Summary
from .alma_server import SandboxAlma
from .generator import SANDBOX_REPORTS, generate_days, install_world
from .sftp_server import SandboxSftp

MARKER = ".pybursar-demo"
UPLOAD_DIR = "/bursar/incoming"
TIMEZONE = "America/Phoenix"


def prepare_folder(folder: Path) -> Path:
    """A fresh demo folder; only a folder the demo made itself is ever emptied."""
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            from ..errors import UsageError

            raise UsageError(f"{folder} exists and was not made by the demo; choose another --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    (folder / MARKER).write_text("made by 'abs.py demo'; safe to delete\n")
    return folder


def demo_environment(folder: Path, alma: SandboxAlma, sftp: SandboxSftp, password: str) -> dict[str, str]:
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
        "SFTP_KNOWN_HOSTS": str(folder / "known_hosts"),
        "EXPORTS_DIR": str(folder / "exports"),
        "BACKUPS_DIR": str(folder / "backups"),
        "LOG_DIR": str(folder / "logs"),
        "BURSAR_TIMEZONE": TIMEZONE,
    }


def run_demo(folder: Path, *, days: int = 3) -> str:
    folder = prepare_folder(folder)
    server_root = folder / "sftp-server"
    (server_root / UPLOAD_DIR.strip("/")).mkdir(parents=True)
    password = secrets.token_urlsafe(12)
    out: list[str] = [f"pyBursar demo in {folder}", ""]
    with SandboxAlma() as alma, SandboxSftp(server_root, users={"bursar": password}) as sftp:
        sftp.write_known_hosts(folder / "known_hosts")
        env = demo_environment(folder, alma, sftp, password)
        env_file = folder / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        env_file.chmod(0o600)
        for world in generate_days(days=days):
            install_world(alma, world)
            day_env = {**env, "BURSAR_NOW": f"{world.day.isoformat()}T18:00:00"}
            settings = settings_mod.load(day_env, cwd=folder)
            out.append(f"== {world.day:%A %Y-%m-%d}: {len(world.fines)} fines in Alma so far ==")
            for step in (import_fines.run, export.run, send.run):
                out.append(_run_step(step, settings))
            out.append("")
    sent = sorted(p.name for p in (server_root / UPLOAD_DIR.strip("/")).iterdir())
    out.append("Files the Bursar received (sandbox SFTP server):")
    out += [f"  {server_root / UPLOAD_DIR.strip('/') / name}" for name in sent] or ["  (none)"]
    out += ["", f"Local archive of sent files: {folder / 'exports' / 'sent'}",
            f"Database: {folder / 'data' / 'bursar.sqlite3'}",
            f"Look around: BURSAR_ENV_FILE={env_file} python abs.py printLastExport"]
    return "\n".join(out)


def _run_step(step, settings: settings_mod.Settings) -> str:  # type: ignore[no-untyped-def]
    store = open_store(settings.db_uri)
    ctx = JobContext(settings=settings, store=store, now=settings.now())
    try:
        summary: Summary = step(ctx)
    finally:
        ctx.close()
        store.close()
    return summary.render()

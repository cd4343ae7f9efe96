"""End-to-end fixtures: the sandbox servers in this process, `abs.py` as a real subprocess.

`sandbox` starts the sandbox Alma (HTTP) and SFTP servers on loopback and knows how to run
`python abs.py <command>` against them with the clock set to a simulated day.
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from bursar.sandbox.alma_server import SandboxAlma
from bursar.sandbox.generator import SANDBOX_REPORTS, World, generate_days, install_world
from bursar.sandbox.sftp_server import SandboxSftp
from bursar.store import open_store

ROOT = Path(__file__).resolve().parents[2]
ABS = ROOT / "abs.py"
UPLOAD_DIR = "/bursar/incoming"
PAYMENTS_DIR = "/bursar/outgoing"
LEDGER = ("patrons", "fines", "item_details", "trans_alma", "trans_burs", "fine_mds",
          "burs_exports", "burs_export_trans", "burs_payments", "burs_payment_files")


@dataclass
class Sandbox:
    work: Path
    alma: SandboxAlma
    sftp: SandboxSftp
    sftp_root: Path
    env: dict[str, str]
    worlds: list[World] = field(default_factory=list)

    @property
    def upload_dir(self) -> Path:
        return self.sftp_root / UPLOAD_DIR.strip("/")

    @property
    def payments_dir(self) -> Path:
        """Where the Bursar drops its payment files on the sandbox SFTP server."""
        return self.sftp_root / PAYMENTS_DIR.strip("/")

    def drop_payment_file(self, name: str, data: bytes, mtime: float | None = None) -> Path:
        path = self.payments_dir / name
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    @property
    def exports_dir(self) -> Path:
        return self.work / "exports"

    def run(self, command: str, *args: str, day: date, extra_env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, "BURSAR_NOW": f"{day.isoformat()}T18:00:00", **(extra_env or {})}
        return subprocess.run([sys.executable, str(ABS), command, *args], cwd=self.work, env=env,
                              capture_output=True, text=True, timeout=120, input=stdin)

    def install(self, day_index: int, *, user_groups: bool = False) -> World:
        world = self.worlds[day_index]
        install_world(self.alma, world, user_groups=user_groups)
        return world

    def ledger(self) -> dict[str, list[dict]]:
        """Every ledger collection, for before/after comparisons (jobs/meta excluded)."""
        store = open_store(self.env["BURSAR_DB_URI"])
        try:
            return {name: list(store.find(name)) for name in LEDGER}
        finally:
            store.close()

    def uploaded(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.upload_dir.iterdir()) if not p.name.startswith(".")}


@pytest.fixture(scope="session")
def worlds() -> list[World]:
    return generate_days(days=3)


@contextmanager
def make_sandbox(base: Path, worlds: list[World]):
    """A complete sandbox (servers, settings, working folder) under `base`."""
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)
    tmp_path = base
    sftp_root = tmp_path / "sftp-server"
    (sftp_root / UPLOAD_DIR.strip("/")).mkdir(parents=True)
    (sftp_root / PAYMENTS_DIR.strip("/")).mkdir(parents=True)
    with SandboxAlma() as alma, SandboxSftp(sftp_root, users={"bursar": "sandbox-password"}) as sftp:
        known_hosts = tmp_path / "known_hosts"
        sftp.write_known_hosts(known_hosts)
        env = {
            "BURSAR_DB_URI": f"sqlite:///{work / 'data' / 'bursar.sqlite3'}",
            "ALMA_API_URL": alma.url,
            "ALMA_API_KEY": alma.api_key,
            "ALMA_REPORT_FINES": SANDBOX_REPORTS.fines,
            "ALMA_REPORT_TRANSACTIONS": SANDBOX_REPORTS.transactions,
            "ALMA_REPORT_BALANCES": SANDBOX_REPORTS.balances,
            "ALMA_RETRIES": "3",
            "ALMA_CALLS_PER_SECOND": "50",
            "ALMA_RETRY_BACKOFF_MS": "10",
            "BURSAR_SFTP_HOST": "127.0.0.1",
            "BURSAR_SFTP_PORT": str(sftp.port),
            "BURSAR_SFTP_USER": "bursar",
            "BURSAR_SFTP_PASSWORD": "sandbox-password",
            "BURSAR_SFTP_DIR": UPLOAD_DIR,
            "PAYMENTS_SFTP_HOST": "127.0.0.1",
            "PAYMENTS_SFTP_PORT": str(sftp.port),
            "PAYMENTS_SFTP_USER": "bursar",
            "PAYMENTS_SFTP_PASSWORD": "sandbox-password",
            "PAYMENTS_SFTP_DIR": PAYMENTS_DIR,
            "SFTP_KNOWN_HOSTS": str(known_hosts),
            "BURSAR_TIMEZONE": "America/Phoenix",
        }
        yield Sandbox(work=work, alma=alma, sftp=sftp, sftp_root=sftp_root, env=env, worlds=worlds)


@pytest.fixture
def sandbox(tmp_path, worlds):
    with make_sandbox(tmp_path / "sandbox", worlds) as box:
        yield box

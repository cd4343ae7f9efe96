"""`abs.py sandbox`: the sandbox Alma and SFTP servers in the foreground, to practise on.

Why: a site should be able to try every command, or a change of settings, without touching its
real Alma or the Bursar's real server.  This starts the same servers the tests and the demo use,
on free loopback ports, seeded with a few weeks of realistic fines and the Bursar's cumulative
payment files, writes the `.env` to use with them (mode 0600: it holds the sandbox's password),
and waits.  Another terminal then runs any command with `BURSAR_ENV_FILE=DIR/.env`.

The world moves one simulated day at a time, when the person says so: `abs.py sandbox --dir DIR
--next-day` (or `touch DIR/next-day`, or `kill -USR1 PID`).  The next day brings that day's Alma
activity (with the payments pyBursar made in the sandbox Alma folded in, as Analytics would show
them the next morning) and the Bursar's payments file of that day, and moves BURSAR_NOW in the
.env to 18:00 of that day (only that line is rewritten, so edits to the other settings stay).

Ctrl-C or SIGTERM stops the servers and exits 0.  Everything stays in DIR; a restart (with
`--force`, which rewrites the .env for the new ports) keeps the store and the files, and
`--day N` starts at simulated day N.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

from bursar.errors import UsageError
from bursar.sandbox.alma_server import SandboxAlma
from bursar.sandbox.demo import PAYMENTS_DIR, UPLOAD_DIR, demo_environment
from bursar.sandbox.generator import World, generate_days
from bursar.sandbox.payments_gen import PaymentFile, fold_payments, install_world_keeping_payments, payment_files
from bursar.sandbox.sftp_server import _LOG_CHANNEL as SFTP_LOG
from bursar.sandbox.sftp_server import SandboxSftp

MARKER = ".pybursar-sandbox"
NEXT_DAY = "next-day"  # create this file in the folder to move to the next simulated day
ENV_FILE = ".env"
DEFAULT_DAYS = 30
POLL = 0.2  # seconds between looks for the next-day file


class Sandbox:
    """The running servers and the simulated calendar."""

    def __init__(self, folder: Path, *, days: int, start_day: int, seed: int | None):
        self.folder = folder
        self.worlds: list[World] = generate_days(days=days) if seed is None else generate_days(days=days, seed=seed)
        self.files: list[PaymentFile] = payment_files(self.worlds)
        self.index = start_day - 1
        self.paid: list[dict[str, Any]] = []
        self.password = secrets.token_urlsafe(18)
        self.alma = SandboxAlma(api_key=secrets.token_urlsafe(24))
        root = folder / "sftp-server"
        for remote in (UPLOAD_DIR, PAYMENTS_DIR):  # the Bursar's side holds patron data too: 0700
            (root / remote.strip("/")).mkdir(parents=True, exist_ok=True, mode=0o700)
        for path in (root, *root.rglob("*")):
            if path.is_dir():
                path.chmod(0o700)
        self.payments_dir = root / PAYMENTS_DIR.strip("/")
        self.sftp = SandboxSftp(root, users={"bursar": self.password})
        self._lock = threading.Lock()

    @property
    def day(self) -> World:
        return self.worlds[self.index]

    def start(self) -> None:
        self.alma.start()
        self.sftp.start()

    def stop(self) -> None:
        self.sftp.stop()
        self.alma.stop()

    def now(self) -> datetime:
        return datetime.combine(self.day.day, clock(18, 0))

    def install(self) -> None:
        """Show Alma as it is at the end of the current day, and drop that day's payments file."""
        with self._lock:
            now = self.now()
            self.paid = [{**call, "time": call.get("time", now)}
                         for call in self.paid + self.alma.pay_calls[len(self.paid):]]
            # with the optional User Group column, to try a profile that selects by user group
            install_world_keeping_payments(self.alma, fold_payments(self.day, self.paid, now=now), user_groups=True)
            payments = self.files[self.index]
            target = self.payments_dir / payments.name
            target.write_bytes(payments.data)
            target.chmod(0o600)

    def next_day(self) -> bool:
        """Move to the next simulated day; False when the last one has been reached."""
        if self.index + 1 >= len(self.worlds):
            return False
        self.index += 1
        self.install()
        return True

    def environment(self) -> dict[str, str]:
        env = demo_environment(self.folder, self.alma, self.sftp, self.password)
        env["ALMA_CALLS_PER_SECOND"] = "50"  # a local server: no institution budget to share
        env["BURSAR_NOW"] = self.now().isoformat()
        return env


def serve(folder: Path, *, force: bool = False, days: int = DEFAULT_DAYS, start_day: int = 1,
          seed: int | None = None, out: Callable[[str], None] | None = None) -> str:
    """Run the sandbox until Ctrl-C / SIGTERM; returns the closing line."""
    write = out or (lambda line: print(line, flush=True))
    if not 1 <= start_day <= days:
        raise UsageError(f"sandbox --day must be from 1 to --days ({days}), got {start_day}")
    folder = prepare(folder, force=force)
    box = Sandbox(folder, days=days, start_day=start_day, seed=seed)
    wake = threading.Event()
    previous = _on_usr1(wake)
    # Ctrl-C must work even when the shell started us with SIGINT ignored (`cmd &`)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    # the server's connection chatter (a client that hung up) is not news on this console
    logging.getLogger(SFTP_LOG).propagate = False
    box.start()
    try:
        _write_known_hosts(box)
        box.install()
        env_file = folder / ENV_FILE
        write_env(env_file, box.environment())
        for line in instructions(box, env_file):
            write(line)
        trigger = folder / NEXT_DAY
        trigger.unlink(missing_ok=True)
        while True:
            if wake.wait(POLL) or trigger.exists():
                wake.clear()
                if box.next_day():
                    set_now(env_file, box.now())
                    write(f"== simulated day {box.index + 1} of {len(box.worlds)}: {box.day.day:%A %Y-%m-%d} "
                          f"({len(box.day.fines)} fines in Alma; payments file {box.files[box.index].name}) ==")
                else:
                    write(f"already at the last simulated day ({box.day.day:%Y-%m-%d}); restart with a larger "
                          "--days to go on")
                trigger.unlink(missing_ok=True)  # after the .env: --next-day waits for this
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the CLI turns it into the same)
        pass
    finally:
        box.stop()
        if previous is not None:
            signal.signal(signal.SIGUSR1, previous)
        signal.signal(signal.SIGINT, previous_int)
        (folder / NEXT_DAY).unlink(missing_ok=True)
    return f"sandbox stopped at simulated day {box.index + 1} ({box.day.day:%Y-%m-%d}); its files stay in {folder}"


def next_day(folder: Path, *, timeout: float = 30.0) -> str:
    """Ask a running sandbox in `folder` for the next simulated day and wait until it has moved."""
    folder = folder.resolve()
    env_file = folder / ENV_FILE
    if not (folder / MARKER).exists() or not env_file.exists():
        raise UsageError(f"no sandbox in {folder} (start one with: abs.py sandbox --dir {folder})")
    before = read_now(env_file)
    trigger = folder / NEXT_DAY
    trigger.touch()
    deadline = time.monotonic() + timeout
    while trigger.exists():
        if time.monotonic() > deadline:
            trigger.unlink(missing_ok=True)
            raise UsageError(f"the sandbox in {folder} did not answer within {timeout:g} s; is it running?")
        time.sleep(0.05)
    after = read_now(env_file)
    if after == before:
        return f"the sandbox is already at its last simulated day ({after})"
    return f"the sandbox moved to the next simulated day: BURSAR_NOW={after}"


def prepare(folder: Path, *, force: bool) -> Path:
    folder = folder.resolve()
    env_file = folder / ENV_FILE
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise UsageError(f"{folder} exists and was not made by 'abs.py sandbox'; choose another --dir")
    if env_file.exists() and not force:
        raise UsageError(f"{env_file} already exists; add --force to replace it (the store and files in "
                         f"{folder} are kept) or choose another --dir")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / MARKER).write_text("made by 'abs.py sandbox'; safe to delete when it is not running\n")
    return folder


def write_env(path: Path, env: dict[str, str]) -> None:
    """The settings file, 0600 from its first byte, replaced atomically."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# made by 'abs.py sandbox': settings for its local Alma and SFTP servers\n")
        fh.write("".join(f"{k}={v}\n" for k, v in env.items()))
    os.replace(temp, path)


def set_now(path: Path, now: datetime) -> None:
    """Move BURSAR_NOW in the .env, keeping every other line as the person left it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if not line.startswith("BURSAR_NOW=")]
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join([*kept, f"BURSAR_NOW={now.isoformat()}"]) + "\n")
    os.replace(temp, path)


def read_now(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("BURSAR_NOW="):
            return line.split("=", 1)[1].strip()
    return None


def instructions(box: Sandbox, env_file: Path) -> list[str]:
    try:
        shown = env_file.relative_to(Path.cwd())
    except ValueError:
        shown = env_file
    folder = box.folder
    try:
        folder_shown = folder.relative_to(Path.cwd())
    except ValueError:
        folder_shown = folder
    return [
        f"pyBursar sandbox in {box.folder} (pid {os.getpid()})",
        f"  simulated day {box.index + 1} of {len(box.worlds)}: {box.day.day:%A %Y-%m-%d}, "
        f"{len(box.day.fines)} fines in Alma",
        f"  Alma (sandbox):  {box.alma.url}",
        f"  SFTP (sandbox):  127.0.0.1:{box.sftp.port}  upload {UPLOAD_DIR}, payments {PAYMENTS_DIR}",
        f"  settings:        {shown}  (mode 0600; BURSAR_NOW follows the simulated day)",
        "",
        "In another terminal, in this folder:",
        f"  BURSAR_ENV_FILE={shown} python abs.py doctor",
        f"  BURSAR_ENV_FILE={shown} python abs.py today",
        f"  BURSAR_ENV_FILE={shown} python abs.py status",
        "The next simulated day (new Alma activity, the Bursar's next payments file):",
        f"  python abs.py sandbox --dir {folder_shown} --next-day",
        "Ctrl-C stops the sandbox.",
    ]


def _write_known_hosts(box: Sandbox) -> None:
    path = box.folder / "known_hosts"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(box.sftp.known_hosts_line() + "\n")


def _on_usr1(wake: threading.Event) -> Any:
    try:
        return signal.signal(signal.SIGUSR1, lambda signum, frame: wake.set())
    except (ValueError, AttributeError):  # not the main thread, or no SIGUSR1 on this system
        return None

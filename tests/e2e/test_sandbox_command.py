"""`abs.py sandbox` as a real foreground process: start it, use its .env, move a day, stop it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

from bursar.sandbox.payments_gen import PAYMENTS_PREFIX

from .conftest import ABS


class Running:
    def __init__(self, folder: Path, *args: str):
        self.folder = folder
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, str(ABS), "sandbox", "--dir", str(folder), *args],
                                     cwd=folder.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.proc.poll() is None or any(text in line for line in self.lines), "\n".join(self.lines)
            assert time.monotonic() < deadline, f"no {text!r} in:\n" + "\n".join(self.lines)
            time.sleep(0.05)

    def stop(self, how: int = signal.SIGINT) -> int:
        self.proc.send_signal(how)
        code = self.proc.wait(timeout=30)
        self._reader.join(5)
        return code


def abs_py(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BURSAR_ENV_FILE": str(folder / ".env")}
    return subprocess.run([sys.executable, str(ABS), *args], cwd=folder.parent, env=env, capture_output=True,
                          text=True, timeout=120)


def test_start_use_next_day_and_stop_cleanly(tmp_path):
    folder = tmp_path / "practice"
    box = Running(folder)
    try:
        box.wait_for("Ctrl-C stops the sandbox.")
        env_file = folder / ".env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        assert settings["ALMA_API_URL"].startswith("http://127.0.0.1:")
        assert settings["BURSAR_NOW"] == "2026-03-02T18:00:00"
        output = "\n".join(box.lines)
        assert settings["BURSAR_SFTP_PASSWORD"] not in output and settings["ALMA_API_KEY"] not in output
        assert "simulated day 1 of 30: Monday 2026-03-02" in output
        assert f"BURSAR_ENV_FILE={env_file.relative_to(tmp_path)} python abs.py today" in output
        assert "python abs.py sandbox --dir practice --next-day" in output

        imported = abs_py(folder, "importAlmaFines")
        assert imported.returncode == 0, imported.stdout + imported.stderr
        first = abs_py(folder, "today")
        assert first.returncode in (0, 3), first.stdout + first.stderr
        assert "LIB_charges.dat.20260302.1.1" in first.stdout
        assert abs_py(folder, "doctor").returncode == 0

        moved = subprocess.run([sys.executable, str(ABS), "sandbox", "--dir", str(folder), "--next-day"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "BURSAR_NOW=2026-03-03T18:00:00" in moved.stdout
        box.wait_for("simulated day 2 of 30: Tuesday 2026-03-03")
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        payments = sorted(p.name for p in (folder / "sftp-server" / "bursar" / "outgoing").iterdir())
        assert len(payments) == 2 and all(p.startswith(PAYMENTS_PREFIX) for p in payments)
        second = abs_py(folder, "today")
        assert second.returncode in (0, 3), second.stdout + second.stderr
        assert "LIB_charges.dat.20260303.2." in second.stdout
        status = abs_py(folder, "status")
        assert "today               2026-03-03 18:00" in status.stdout

        # another sandbox in the same folder is refused while the .env exists
        again = subprocess.run([sys.executable, str(ABS), "sandbox", "--dir", str(folder)], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "already exists; add --force" in again.stderr
    finally:
        started = time.monotonic()
        code = box.stop(signal.SIGINT)
    assert code == 0, "\n".join(box.lines)
    assert time.monotonic() - started < 10
    assert box.lines[-1].startswith("sandbox stopped at simulated day 2 (2026-03-03)")
    assert "Traceback" not in "\n".join(box.lines)
    assert not (folder / "next-day").exists()


def test_force_restarts_on_a_given_day_and_sigterm_stops_it(tmp_path):
    folder = tmp_path / "sb"
    first = Running(folder)
    first.wait_for("Ctrl-C stops the sandbox.")
    assert first.stop(signal.SIGTERM) == 0
    box = Running(folder, "--force", "--day", "3")
    try:
        box.wait_for("Ctrl-C stops the sandbox.")
        assert "simulated day 3 of 30: Wednesday 2026-03-04" in "\n".join(box.lines)
        assert "BURSAR_NOW=2026-03-04T18:00:00" in (folder / ".env").read_text()
    finally:
        assert box.stop(signal.SIGTERM) == 0


def test_a_folder_it_did_not_make_is_refused(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = subprocess.run([sys.executable, str(ABS), "sandbox", "--dir", str(folder)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "was not made by 'abs.py sandbox'" in result.stderr
    nothing = subprocess.run([sys.executable, str(ABS), "sandbox", "--dir", str(tmp_path / "none"), "--next-day"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert nothing.returncode == 2 and "no sandbox in" in nothing.stderr

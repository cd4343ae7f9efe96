"""No secret ever echoed: a bad settings file, an early error or a traceback never shows a value.

Through `abs.py` as a subprocess (where it is about the CLI), in a folder of its own, with an
environment that holds none of our settings: what a command sees comes from the `.env` it is
given.  Every test scans everything the run printed and every file it left (the logs included)
for each secret value it set.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bursar import settings as settings_mod
from bursar.errors import SettingsError
from bursar.runtime import logs
from bursar.store import open_store

ROOT = Path(__file__).resolve().parents[2]
ABS = ROOT / "abs.py"

SECRETS = {
    "ALMA_API_KEY": "l8xxTOPSECRETapikey0123456789",
    "BURSAR_SFTP_PASSWORD": "hunter2-sftp-Pass",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/sEcReTwEbHoOk",
    "PAYMENTS_SFTP_PASSWORD": "pay-Ments-secret-99",
}
DB_PASSWORD = "db-Pass-w0rd"


def clean_env(**extra: str) -> dict[str, str]:
    """The test runner's environment without any pyBursar setting, plus `extra`."""
    ours = {s.name for s in settings_mod.SETTINGS} | {"BURSAR_ENV_FILE", "BURSAR_CRASH_AT"}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(extra)
    return env


def env_text(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def run_abs(folder: Path, *args: str, env: dict[str, str] | None = None,
            preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ABS), *args], cwd=folder, env=env or clean_env(),
                          capture_output=True, text=True, errors="replace", timeout=60, preexec_fn=preexec_fn)


def assert_no_secret(result: subprocess.CompletedProcess, folder: Path, secrets, *, skip: tuple[Path, ...] = ()):
    """No secret in stdout, stderr, or any file under `folder` (logs included) but `skip`."""
    for secret in secrets:
        assert secret not in result.stdout, secret
        assert secret not in result.stderr, secret
        for path in folder.rglob("*"):
            if path.is_file() and path not in skip:
                assert secret.encode() not in path.read_bytes(), f"{secret} in {path}"


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """stderr is exactly one line, an error, and there is no traceback anywhere."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


# ---- a settings file that cannot be used ---------------------------------------------------


@pytest.fixture
def work(tmp_path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("args", [
    ["printLastExport"], ["importAlmaFines"], ["today", "--quiet"], ["today", "--debug"], ["backupDB", "--dry-run"],
])
def test_a_non_utf8_env_file_names_the_file_and_line_and_shows_no_value(work, args):
    env_file = work / ".env"
    body = env_text({"ALMA_API_KEY": SECRETS["ALMA_API_KEY"], "BURSAR_SFTP_PASSWORD": SECRETS["BURSAR_SFTP_PASSWORD"],
                     "SLACK_WEBHOOK_URL": SECRETS["SLACK_WEBHOOK_URL"]}).encode()
    body += b"PAYMENTS_SFTP_PASSWORD=caf\xe9-" + SECRETS["PAYMENTS_SFTP_PASSWORD"].encode() + b"\n"
    body += f"BURSAR_DB_URI=mongodb://bursar:{DB_PASSWORD}@127.0.0.1:9/x\n".encode()
    env_file.write_bytes(body)
    env_file.chmod(0o600)
    result = run_abs(work, *args)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert str(env_file) in line and "line 4" in line and "UTF-8" in line
    assert result.stdout == ""
    assert_no_secret(result, work, [*SECRETS.values(), DB_PASSWORD, "caf"], skip=(env_file,))


def test_bursar_env_file_is_named_when_it_is_the_bad_one(work, tmp_path):
    site = tmp_path / "site.env"
    site.write_bytes(b"# site settings\n\nALMA_API_KEY=" + SECRETS["ALMA_API_KEY"].encode() + b"\xff\xfe\n")
    site.chmod(0o600)
    result = run_abs(work, "printLastExport", env=clean_env(BURSAR_ENV_FILE=str(site)))
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(site) in line and "line 3" in line
    assert_no_secret(result, work, [SECRETS["ALMA_API_KEY"]])


def test_a_line_that_is_not_name_value_is_named_without_its_text(work):
    env_file = work / ".env"
    env_file.write_text(f"ALMA_API_KEY={SECRETS['ALMA_API_KEY']}\n"
                        f"BURSAR_SFTP_PASSWORD='{SECRETS['BURSAR_SFTP_PASSWORD']}\n")  # unclosed quote
    env_file.chmod(0o600)
    result = run_abs(work, "importAlmaFines")
    assert result.returncode == 2
    line = one_error_line(result)
    assert str(env_file) in line and "line 2" in line and "NAME=value" in line
    assert_no_secret(result, work, SECRETS.values(), skip=(env_file,))


_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_file_override() -> None:
    """preexec_fn for root: drop the capabilities that let root read any file, so the child
    (still uid 0, still able to run the Python under /root) meets ordinary file permissions.
    Running as `nobody` does not work here: the interpreter lives in a folder only root can
    enter."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _unreadable_runner(env_file: Path):
    """A preexec_fn under which `env_file` (mode 000) cannot be read, or a pytest skip."""
    env_file.chmod(0o000)
    preexec = _drop_file_override if os.geteuid() == 0 else None
    try:
        probe = subprocess.run([sys.executable, "-c", f"open({str(env_file)!r}).read()"],
                               capture_output=True, text=True, timeout=30, preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot arrange an unreadable file for the child process ({exc})")
    if "PermissionError" not in probe.stderr:
        pytest.skip("this account can read a mode-000 file (root with CAP_DAC_OVERRIDE that cannot be dropped)")
    return preexec


@pytest.mark.parametrize("args", [["printLastExport"], ["today", "--quiet"]])
def test_an_unreadable_env_file_says_permission_denied_and_nothing_else(work, args):
    env_file = work / ".env"
    env_file.write_text(env_text(SECRETS))
    preexec = _unreadable_runner(env_file)
    try:
        result = run_abs(work, *args, preexec_fn=preexec)
    finally:
        env_file.chmod(0o600)
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert str(env_file) in line and "permission denied" in line
    assert_no_secret(result, work, SECRETS.values(), skip=(env_file,))


# ---- every message once, never a traceback -------------------------------------------------


@pytest.mark.parametrize("args, env, expected", [
    (["bogus"], {}, "unknown command 'bogus'"),
    (["importAlmaFines", "--bogus"], {}, "unrecognized arguments: --bogus"),
    (["printLastExport", "--quiet"], {"BURSAR_DUE_DAY": "31"}, "BURSAR_DUE_DAY must be"),
    (["printLastExport"], {"ALMA_API_URL": "ftp://example"}, "ALMA_API_URL must be"),
    (["demo", "--days", "0"], {}, "--days: must be a whole number from 1 to 366, got '0'"),
    (["demo", "--days", "x"], {}, "--days: must be a whole number"),
    (["importAlmaFines", "--quiet"], {"ALMA_API_KEY": SECRETS["ALMA_API_KEY"]}, "ALMA_REPORT_FINES is not set"),
])
def test_usage_and_settings_errors_are_printed_once_with_exit_2(work, args, env, expected):
    result = run_abs(work, *args, env=clean_env(**env, LOG_DIR=str(work / "logs")))
    assert result.returncode == 2, result.stderr
    line = one_error_line(result)
    assert expected in line and result.stderr.count(expected) == 1
    assert result.stdout == ""
    assert_no_secret(result, work, [SECRETS["ALMA_API_KEY"]])


# ---- the .env file's own permissions -------------------------------------------------------


@pytest.mark.parametrize("mode, who", [(0o644, "group and others"), (0o640, "its group"), (0o604, "others")])
def test_a_group_or_world_readable_env_file_gives_one_warning(work, mode, who):
    env_file = work / ".env"
    env_file.write_text(env_text({"ALMA_API_KEY": SECRETS["ALMA_API_KEY"], "LOG_DIR": "logs"}))
    env_file.chmod(mode)
    # a site that has run before: a store, and a log folder (read-only commands create neither)
    open_store(f"sqlite:///{work / 'data' / 'bursar.sqlite3'}").close()
    (work / "logs").mkdir()
    for args in (["printLastExport"], ["printLastExport", "--quiet"]):
        result = run_abs(work, *args)
        warnings = [line for line in result.stderr.splitlines() if "readable by" in line]
        assert warnings == [f"WARNING the settings file {env_file} is readable by {who} (mode {mode:04o}) "
                            f"and holds secrets: run chmod 600 {env_file}"], result.stderr
        assert "Traceback" not in result.stderr
        assert_no_secret(result, work, [SECRETS["ALMA_API_KEY"]], skip=(env_file,))
    assert "readable by" in (work / "logs" / "bursar.log").read_text()  # the log has it too


def test_a_private_env_file_gives_no_warning(work):
    env_file = work / ".env"
    env_file.write_text(env_text({"ALMA_API_KEY": SECRETS["ALMA_API_KEY"]}))
    env_file.chmod(0o600)
    result = run_abs(work, "printLastExport")
    assert "readable by" not in result.stderr


# ---- http:// only on loopback --------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://api-na.hosted.exlibrisgroup.com", "http://alma.example.edu:8080/", "http://10.0.0.5",
    "http://127.0.0.1.example.com", "http://localhost.example.com", "http://[::2]:80",
])
def test_plain_http_to_a_real_host_is_refused(tmp_path, url):
    with pytest.raises(SettingsError, match=r"^ALMA_API_URL must use https://"):
        settings_mod.load({"ALMA_API_URL": url}, cwd=tmp_path)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080", "http://127.3.4.5", "http://[::1]:9000/", "http://localhost:1234",
    "http://LOCALHOST", "https://api-eu.hosted.exlibrisgroup.com", "https://10.0.0.5",
])
def test_https_and_loopback_http_are_accepted(tmp_path, url):
    assert settings_mod.load({"ALMA_API_URL": url}, cwd=tmp_path).alma_api_url == url.rstrip("/")


def test_the_cli_refuses_plain_http_naming_the_setting(work):
    env = clean_env(ALMA_API_URL="http://alma.example.edu", ALMA_API_KEY=SECRETS["ALMA_API_KEY"])
    result = run_abs(work, "importAlmaFines", env=env)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "ALMA_API_URL must use https://" in line and "'alma.example.edu'" in line
    assert_no_secret(result, work, [SECRETS["ALMA_API_KEY"]])


# ---- the log scrubs tracebacks too ---------------------------------------------------------


@pytest.fixture
def restore_logging():
    """logs.setup/bootstrap change process-wide logging: put it back after the test."""
    bursar_log, root = logging.getLogger("bursar"), logging.getLogger()
    saved = (list(bursar_log.handlers), bursar_log.level, bursar_log.propagate, list(root.handlers), root.level,
             threading.excepthook, sys.unraisablehook, logging.raiseExceptions)
    yield
    for handler in {*bursar_log.handlers, *root.handlers} - {*saved[0], *saved[3]}:
        handler.close()
    bursar_log.handlers[:], bursar_log.level, bursar_log.propagate = saved[0], saved[1], saved[2]
    root.handlers[:], root.level = saved[3], saved[4]
    threading.excepthook, sys.unraisablehook, logging.raiseExceptions = saved[5], saved[6], saved[7]


def test_secrets_are_scrubbed_from_tracebacks_written_to_the_log(tmp_path, restore_logging, capfd):
    secret = "l8xxTRACEBACKsecret42"
    logs.bootstrap(debug=False)
    assert logs.setup(tmp_path / "logs", keep_days=1, secrets=[secret], quiet=False, debug=False) is None
    log = logging.getLogger("bursar")
    try:
        raise ValueError(f"Alma refused key {secret}")
    except ValueError:
        log.error("the call failed", exc_info=True)
        log.exception("again, with the key in the message: %s", secret)
    try:
        {"key": secret}["missing"]
    except KeyError as exc:
        log.error("lookup failed", exc_info=exc, stack_info=True)
    for handler in log.handlers:
        handler.flush()
    text = (tmp_path / "logs" / "bursar.log").read_text()
    assert secret not in text
    assert "Traceback (most recent call last)" in text and "ValueError: Alma refused key ***" in text
    assert "again, with the key in the message: ***" in text
    console = capfd.readouterr().err
    assert secret not in console and "Traceback" not in console  # the console: one line per record


def test_a_thread_that_dies_gives_one_scrubbed_line(tmp_path, restore_logging, capfd):
    secret = "thread-Secret-77"
    logs.bootstrap(debug=False)
    logs.setup(tmp_path / "logs", keep_days=1, secrets=[secret], quiet=False, debug=False)

    def boom() -> None:
        raise RuntimeError(f"worker saw {secret}")

    worker = threading.Thread(target=boom, name="worker-1")
    worker.start()
    worker.join()
    console = capfd.readouterr().err
    assert console.strip().splitlines() == ["ERROR unexpected RuntimeError in worker-1: worker saw ***"]
    text = (tmp_path / "logs" / "bursar.log").read_text()
    assert secret not in text and "Traceback" in text

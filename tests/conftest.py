"""Autouse isolation: no test can see the developer's settings, files or real hosts.

Every test runs in its own empty working directory with every pyBursar setting removed from the
environment, HOME pointed at a temporary folder (so ~/.ssh/known_hosts is never the real one),
and dummy AWS credentials.
"""

from __future__ import annotations

import pytest

from bursar.settings import SETTINGS


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    monkeypatch.delenv("BURSAR_ENV_FILE", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("BURSAR_TIMEZONE", "America/Phoenix")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield

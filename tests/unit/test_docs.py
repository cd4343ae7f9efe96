"""The docs are part of the interface: README, .env.example and the code stay in step."""

from __future__ import annotations

import re
from pathlib import Path

from bursar.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_exactly_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert README.index("```sh") < README.index("\n## ")


def test_readme_settings_table_matches_the_code():
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| (.*?) \|", README, flags=re.M)
    assert [name for name, _ in rows] == [s.name for s in SETTINGS]
    for (name, default), setting in zip(rows, SETTINGS):
        assert default == (f"`{setting.default}`" if setting.default else "—"), name


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_no_float_for_money_in_the_package():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "bursar").rglob("*.py")
                 if re.search(r"\bfloat\(", p.read_text())]
    assert offenders == []

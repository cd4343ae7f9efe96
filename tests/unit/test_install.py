"""The production install: `make install` (runtime requirements only), the `pybursar` console
script of pyproject.toml (the same program as `python abs.py`), and the README's cron lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pins(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines()
            if line.split("#")[0].strip() and not line.startswith("-r")]


def test_pyproject_declares_the_console_script_and_the_same_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"pybursar": "bursar.cli:main"}
    assert project["dependencies"] == _pins(ROOT / "requirements.txt")
    assert project["requires-python"] == ">=3.11"


def test_make_install_is_the_runtime_requirements_only():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^install:.*?\n((?:\t.*\n)+)", makefile, flags=re.M)
    assert recipe is not None
    lines = recipe.group(1)
    assert "-r requirements.txt" in lines and "requirements-dev" not in lines


def test_the_console_script_is_abs_py(tmp_path):
    # what pip writes for [project.scripts]: import the entry point and exit with its result
    script = tmp_path / "bin" / "pybursar"
    script.parent.mkdir()
    script.write_text("import sys\nfrom bursar.cli import main\nsys.exit(main())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    console = subprocess.run([sys.executable, str(script), "help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    direct = subprocess.run([sys.executable, str(ROOT / "abs.py"), "help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert console.returncode == direct.returncode == 0
    prefix = direct.stdout.splitlines()[4].split(" help")[0].strip()  # "<python> <path>/abs.py"
    assert "    pybursar today" in console.stdout
    assert console.stdout == direct.stdout.replace(prefix, "pybursar")
    missing = subprocess.run([sys.executable, str(script), "nosuch"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2  # the same exit codes


def test_readme_runs_from_the_install_venv_and_keeps_env_private():
    readme = (ROOT / "README.md").read_text()
    cron = [line for line in readme.splitlines() if re.match(r"^\d+\s+\d+\s+\*", line)]
    assert cron and all("cd /opt/pybursar && .venv/bin/python abs.py" in line for line in cron)
    assert "ExecStart=/opt/pybursar/.venv/bin/python abs.py today --quiet" in readme
    assert "make install" in readme and "chmod 600 .env" in readme

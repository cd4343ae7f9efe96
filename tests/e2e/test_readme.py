"""Every `python abs.py ...` example in the README runs as written (against the sandbox)."""

from __future__ import annotations

import re
import shlex

from .conftest import ROOT
from .test_direction2 import PREFIX, csv


def readme_examples() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    lines = [line.split("  #")[0].strip() for line in text.splitlines() if line.startswith("python abs.py")]
    return [shlex.split(line)[2:] for line in lines]


def test_every_readme_example_runs(sandbox):
    examples = readme_examples()
    assert len(examples) >= 12
    world = sandbox.install(0)
    sandbox.drop_payment_file(f"{PREFIX}_empty.csv", csv([]))
    for argv in examples:
        result = sandbox.run(*argv, day=world.day)
        assert result.returncode in (0, 3), f"{argv}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
    assert re.search(r"Export 1 \((written|sent)\)", sandbox.run("printLastExport", day=world.day).stdout)

"""The README's guide for a real site stays in step with the code: the Analytics reports table
names every required heading and the prompted filter of columns.py, and the regional hosts are
the ones doctor knows."""

from __future__ import annotations

import re
from pathlib import Path

from bursar.jobs.doctor import REGIONS, REPORTS
from bursar.rules import columns as C

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _row(setting: str) -> str:
    found = re.search(rf"^\| [^|]+ \| `{setting}` \|(.*)$", README, flags=re.M)
    assert found, setting
    return found.group(1)


def test_reports_table_has_every_required_heading_and_the_prompted_filter():
    for setting, _name, required, filter_column in REPORTS:
        row = _row(setting)
        columns, prompt = row.rsplit("|", 2)[0], row.rsplit("|", 2)[1]
        for heading in required:
            assert f"`{heading}`" in columns.split(";")[0], (setting, heading)
        if filter_column:
            heading = C.FILTER_COLUMN_HEADINGS[filter_column]
            assert f"`{heading}` **is prompted**" in prompt and filter_column in prompt
        else:
            assert prompt.strip() == "none"
    assert "`Fine FeeTransaction Type`" in _row("ALMA_REPORT_TRANSACTIONS")  # sic, as Analytics spells it


def test_regional_hosts_are_the_ones_doctor_names():
    hosts = re.findall(r"^\| [A-Z][A-Za-z ]+ \| `https://([a-z.-]+)`", README, flags=re.M)
    assert hosts == ["api-na.hosted.exlibrisgroup.com", "api-eu.hosted.exlibrisgroup.com",
                     "api-ap.hosted.exlibrisgroup.com", "api-ca.hosted.exlibrisgroup.com",
                     "api-cn.hosted.exlibrisgroup.com.cn"]
    assert all(host in REGIONS for host in hosts)


def test_the_host_key_is_checked_before_it_is_added():
    block = README[README.index("ssh-keyscan -p 22"):]
    assert block.index("ssh-keygen -lf") < block.index(">> /opt/pybursar/known_hosts")
    assert "ssh-keyscan -p PORT HOST >>" not in README  # never append before comparing

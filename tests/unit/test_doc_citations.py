"""Code comments cite the docs in the repository, and every citation resolves.

A citation has the form "docs/<page>.md §<n>" (continuations such as "§3-§5", "§3, §4" or
"§33 and §34" count too); it must name a file under docs/ that has a heading numbered <n>
("## <n>." or "### <n>." and so on).  The documents the original project was described in are
not in the repository, so the package must not cite them, nor cite a section ("§N") or a
"defect N" without saying which docs/ page it is in.
"""

from __future__ import annotations

import io
import re
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
THIS = Path(__file__).resolve()

_PAGE = r"docs/(?P<page>[\w./-]+?\.md)"
_MORE = r"(?:\s*(?:,|and|or|-|–|to)\s*§\s*\d+)*"
CITATION = re.compile(_PAGE + r"\s+§\s*(?P<first>\d+)(?P<more>" + _MORE + r")")
CONTINUATION = re.compile(r"\s*(,|and|or|-|–|to)\s*§\s*(\d+)")
BARE_SECTION = re.compile(r"§")
BARE_DEFECT = re.compile(r"\bdefects?\s+\d+", re.IGNORECASE)
ABSENT_DOCUMENTS = re.compile(r"pybursar-behavior\.md|alma-api\.md|SPEC\.md|\breference\s+§", re.IGNORECASE)


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if p.resolve() != THIS)


def _comment_text(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and string literal (docstrings included) in a file."""
    out: list[tuple[int, str]] = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    for tok in tokens:
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            out.append((tok.start[0], tok.string))
        elif getattr(tokenize, "FSTRING_MIDDLE", None) == tok.type:
            out.append((tok.start[0], tok.string))
    return out


@cache
def _headings(page: str) -> frozenset[int]:
    """The section numbers of a docs page: "## 3. Title", "### 8.1 Title" (counts as 8)."""
    path = DOCS / page
    if not path.is_file():
        return frozenset()
    numbers = re.findall(r"^#{1,6}\s+(\d+)[.\s]", path.read_text(encoding="utf-8"), flags=re.M)
    return frozenset(int(n) for n in numbers)


def _citations(text: str) -> list[tuple[str, int]]:
    """(page, section) of every citation in a text; a range "§3-§5" stands for 3, 4 and 5."""
    found = []
    for m in CITATION.finditer(text):
        numbers = [int(m.group("first"))]
        for sep, n in CONTINUATION.findall(m.group("more")):
            if sep in ("-", "–", "to"):
                numbers += range(numbers[-1] + 1, int(n) + 1)
            else:
                numbers.append(int(n))
        found += [(m.group("page"), n) for n in numbers]
    return found


def _all_citations() -> list[tuple[str, int, str, int]]:
    """(file, line, page, section) of every citation in bursar/ and tests/."""
    out = []
    for path in _python_files("bursar", "tests"):
        for line, text in _comment_text(path):
            for page, number in _citations(text):
                out.append((str(path.relative_to(ROOT)), line, page, number))
    return out


def test_the_checker_reads_citations():
    text = "see docs/ledger.md §4 and docs/original-defects.md §33 and §34, docs/allocation.md §2-§4"
    assert _citations(text) == [("ledger.md", 4), ("original-defects.md", 33), ("original-defects.md", 34),
                                ("allocation.md", 2), ("allocation.md", 3), ("allocation.md", 4)]
    assert CITATION.sub("", "(docs/ledger.md §4)") == "()"


def test_the_package_cites_the_docs():
    assert any(f.startswith("bursar/") for f, *_ in _all_citations()), "no docs citation found in bursar/"


def test_every_citation_names_a_page_and_a_section_that_exist():
    broken = []
    for file, line, page, number in _all_citations():
        if not (DOCS / page).is_file():
            broken.append(f"{file}:{line}: docs/{page} does not exist")
        elif number not in _headings(page):
            broken.append(f"{file}:{line}: docs/{page} has no section {number}")
    assert broken == []


def test_every_section_cited_in_the_docs_themselves_exists():
    """Links between the pages ("[ledger.md §9](ledger.md)") resolve as well."""
    broken = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"\[(?P<page>[\w.-]+\.md) §(?P<n>\d+)\]\((?P<target>[\w.-]+\.md)\)", text):
            if m.group("page") != m.group("target") or int(m.group("n")) not in _headings(m.group("page")):
                broken.append(f"docs/{doc.name}: {m.group(0)}")
        for m in re.finditer(r"\]\((?P<target>[\w.-]+\.md)(?:#[\w-]*)?\)", text):
            if not (DOCS / m.group("target")).is_file():
                broken.append(f"docs/{doc.name}: link to a missing page {m.group('target')}")
    assert broken == []


@pytest.mark.parametrize("folder", ["bursar"])
def test_no_comment_cites_a_document_that_is_not_in_the_repository(folder):
    offenders = []
    for path in _python_files(folder):
        for line, text in _comment_text(path):
            rest = CITATION.sub("", text)
            where = f"{path.relative_to(ROOT)}:{line}"
            if ABSENT_DOCUMENTS.search(text):
                offenders.append(f"{where}: cites {ABSENT_DOCUMENTS.search(text).group(0)!r}")
            elif BARE_SECTION.search(rest):
                offenders.append(f"{where}: a section sign without a docs/ page: {text.strip()[:80]!r}")
            elif BARE_DEFECT.search(rest):
                offenders.append(f"{where}: {BARE_DEFECT.search(rest).group(0)!r} without docs/original-defects.md")
    assert offenders == []


def test_docs_index_links_every_page():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "README.md" and f"]({p.name})" not in index]
    assert missing == []


def test_original_defects_has_a_section_for_each_of_the_42():
    assert _headings("original-defects.md") >= frozenset(range(1, 43))

"""What a user reads is self-contained: no pointers outside the repository, and every local link resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
USER_FACING = ("*.py", "*.md", "*.yaml")
NOT_SHIPPED = {"tests", "bench", ".venv", "build", "dist"}


def _user_facing_files() -> list[Path]:
    return [
        path
        for pattern in USER_FACING
        for path in ROOT.rglob(pattern)
        if not NOT_SHIPPED & set(path.relative_to(ROOT).parts) and ".egg-info" not in str(path)
    ]


def test_nothing_a_user_reads_points_outside_the_repository() -> None:
    files = _user_facing_files()
    assert ROOT / "README.md" in files and ROOT / "docs" / "method.md" in files
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in files
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if "shared/" in line
    ]
    assert offenders == []


def test_every_relative_markdown_link_resolves() -> None:
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_docs_cover_every_method_section_the_code_cites() -> None:
    method = (ROOT / "docs" / "method.md").read_text()
    headings = set(re.findall(r"^#+ (\d+(?:\.\d+)?)[. ]", method, flags=re.MULTILINE))
    cited = set()
    for path in _user_facing_files():
        for refs in re.findall(r"method\.md ((?:§[\d.\-]+(?:, | and )?)+)", path.read_text()):
            cited.update(n.rstrip(".") for n in re.findall(r"§(\d+(?:\.\d+)?)", refs))
    assert cited and cited <= headings, sorted(cited - headings)

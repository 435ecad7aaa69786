"""What a user reads is self-contained: no pointers outside the repository, and every local link resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

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


def test_docs_cover_every_method_section_the_code_cites() -> None:
    method = (ROOT / "docs" / "method.md").read_text()
    headings = set(re.findall(r"^#+ (\d+(?:\.\d+)?)[. ]", method, flags=re.MULTILINE))
    cited = set()
    for path in _user_facing_files():
        for refs in re.findall(r"method\.md ((?:§[\d.\-]+(?:, | and )?)+)", path.read_text()):
            cited.update(n.rstrip(".") for n in re.findall(r"§(\d+(?:\.\d+)?)", refs))
    assert cited and cited <= headings, sorted(cited - headings)


# --------------------------------------------------------------------------- the README a newcomer reads

README = ROOT / "README.md"
README_MAX_LINES = 250
PICTURE_MAX_BYTES = 150 * 1024
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s#]*)(?:#([^)\s]*))?\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)


def _without_code(text: str) -> str:
    return FENCE.sub("", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2… for repeats."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#+ (.+?)\s*$", _without_code(page.read_text()), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _bash_lines(page: Path) -> list[str]:
    """Every command line of the page's ```bash blocks, comments stripped."""
    lines = []
    for lang, body in FENCE.findall(page.read_text()):
        if lang == "bash":
            lines += [c for line in body.splitlines() if (c := line.split(" #")[0].strip()) and not c.startswith("#")]
    return lines


def test_readme_is_short() -> None:
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move details into docs/"


def test_readme_first_commands_are_the_two_setup_commands() -> None:
    """.ci/run runs `make test`; a newcomer's first two commands are `make demo` and `make test`."""
    assert _bash_lines(README)[:2] == ["make demo", "make test"]
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    assert {"demo", "test"} <= targets
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_picture_exists_and_is_small() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", README.read_text())
    assert pictures, "README.md shows no picture"
    for target in pictures:
        path = ROOT / target
        assert path.is_file(), target
        head = path.read_bytes()[:8]
        assert head.startswith(b"\xff\xd8\xff") or head == b"\x89PNG\r\n\x1a\n", f"{target} is not a JPEG or PNG"
        assert path.stat().st_size <= PICTURE_MAX_BYTES, f"{target}: {path.stat().st_size} bytes"
    assert (ROOT / "docs" / "make_figure.py").is_file()  # the picture can be made again


def test_every_relative_markdown_link_resolves() -> None:
    """Files and folders exist; a #anchor into a markdown page (or the page itself) names one of its headings."""
    broken = []
    for page in PAGES:
        for target, anchor in LINK.findall(_without_code(page.read_text())):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.relative_to(ROOT)} -> {target}#{anchor}")
    assert broken == []


def test_readme_commands_name_real_subcommands_configs_and_presets() -> None:
    """Each `mulde-vad …` line of the README parses with the real CLI; a run's config is a shipped one (or
    a file) and validates with the line's --set fields; a fit's YAML exists; a preset exists."""
    from mulde_vad.features.config import PRESETS
    from mulde_vad.flows.cli import build_parser
    from mulde_vad.flows.config import load_config

    commands = [c for c in _bash_lines(README) if c.startswith("mulde-vad ")]
    parser = build_parser()
    used = set()
    for command in commands:
        try:
            args = parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"README: {command!r} is not a valid mulde-vad command line")
        used.add(args.command)
        if getattr(args, "config", None):
            overrides = dict(item.split("=", 1) for item in args.set)
            load_config(args.config, overrides)  # ConfigError: no such config, or an unknown/invalid field
        if args.command == "fit" and str(args.source).endswith(".yaml"):
            assert (ROOT / args.source).is_file(), command
        if getattr(args, "preset", None):
            assert args.preset in PRESETS, command
    assert {"run", "fit", "predict"} <= used


def test_nothing_a_user_reads_points_to_an_issue() -> None:
    offenders = [
        f"{page.relative_to(ROOT)}:{i}"
        for page in PAGES
        for i, line in enumerate(page.read_text().splitlines(), 1)
        if re.search(r"\bissues?\s*#?\d+|/issues/\d+|/pull/\d+", line, flags=re.IGNORECASE)
    ]
    assert offenders == []

"""The documentation: the generated CLI reference covers every subcommand and option, the Python API
page every public name, and the README keeps its promises (the two commands first, short, links that
resolve, nothing that points at the developers' material)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from tests.helpers.files import import_file

ROOT = Path(__file__).resolve().parents[1]
cli_reference = import_file(ROOT / "scripts" / "cli_reference.py", "cli_reference_under_test")
mkdocs_hooks = import_file(ROOT / "scripts" / "mkdocs_hooks.py", "mkdocs_hooks_under_test")


def _walk(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand, found independently of the renderer (through parse-time choices)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                found.append((full, sub))
                found += _walk(sub, f"{full} ")
    return found


def _sections(page: str) -> dict[str, str]:
    """The rendered page cut at its headings: {'models info': text, ...}."""
    parts = re.split(r"^#{2,} painterly (.+)$", page, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_cli_reference_covers_every_subcommand_and_option():
    parser = cli_reference.build_parser()
    commands = _walk(parser)
    names = {name for name, _ in commands}
    # The nested actions are there: a renderer that stopped at the first level would miss them.
    assert {"transfer", "demo", "stylize", "serve", "models info", "weights download"} <= names
    sections = _sections(cli_reference.render())
    assert set(sections) == names
    for name, sub in commands:
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.help is argparse.SUPPRESS:
                continue
            flags = action.option_strings or [str(action.metavar or action.dest.upper())]
            for flag in flags:
                assert f"`{flag}" in sections[name], f"painterly {name}: {flag} is not in the reference"


def test_cli_reference_shows_defaults_and_usage():
    sections = _sections(cli_reference.render())
    serve = sections["serve"]
    assert "usage: painterly serve" in serve
    assert re.search(r"\| `--port PORT` \| 8000 \|", serve)
    transfer = sections["transfer"]
    # transfer's defaults live in painterly.settings' help text "(default: X)": moved to the column.
    assert re.search(r"\| `--size PX` \| 512 \| long side", transfer)
    assert "(default:" not in transfer


def test_cli_reference_escapes_table_cells():
    assert cli_reference._cell("a | b\n  c <x>") == "a \\| b c &lt;x&gt;"


def test_python_api_page_lists_every_public_name():
    import painterly

    paths = mkdocs_hooks.public_api()
    public = [name for name in painterly.__all__ if name != "__version__"]
    assert [path.rsplit(".", 1)[-1] for path in paths] == public
    for path in paths:  # each is where the object is defined, so mkdocstrings can read it statically
        module, _, name = path.rpartition(".")
        assert module.startswith("painterly.") and name
    page = mkdocs_hooks.on_page_markdown("x\n<!-- painterly:python-api -->\n", None, None, None)
    assert page.count("::: painterly.") == len(public)


def test_readme_is_short_and_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = readme.splitlines()
    assert len(lines) <= 220
    commands = [line for line in lines if line.startswith(("python3 ", "painterly ", "pip "))]
    assert commands[0].startswith("python3 tasks.py demo    # ")
    assert commands[1].startswith("python3 tasks.py test    # ")
    assert "tasks.py docs" in readme


def test_readme_links_resolve_and_never_point_at_the_shared_material():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "../shared" not in readme and "/work/" not in readme
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert len(targets) > 10
    for target in targets:
        assert not target.startswith(("http:", "https:")), target  # the site is offline too
        assert (ROOT / target).exists(), f"README links to a missing {target}"

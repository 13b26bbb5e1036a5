"""The CLI reference page, rendered from the argparse parsers themselves (``painterly.cli``).

The options of every ``painterly`` subcommand are declared once, in ``src/painterly/cli/`` (and, for
``transfer``, in ``painterly.settings``). This script builds that parser and renders every
subcommand, nested ones included (``models info``, ``weights download``), as Markdown: usage, then
one table per argument group with each option's flags, default and help. The documentation site
calls it from its build hook (``scripts/mkdocs_hooks.py``), so the reference cannot drift from the
code. Run it alone to print the page: ``PYTHONPATH=src python scripts/cli_reference.py``.
"""

from __future__ import annotations

import argparse
import html
import re
from collections.abc import Iterator

#: Width at which the usage lines wrap (argparse's own wrapping, as ``--help`` shows them).
USAGE_WIDTH = 100
#: A help text's trailing ``(default: X)``, as ``painterly.settings`` writes it, goes to its own column.
DEFAULT_IN_HELP = re.compile(r"\s*\(default:? ([^()]*(?:\([^()]*\)[^()]*)*)\)$")


def build_parser() -> argparse.ArgumentParser:
    from painterly.cli import build_parser as painterly_parser

    return painterly_parser()


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Every subcommand below ``parser``, depth first in declaration order: (name, help, parser)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            yield name, helps.get(name, ""), sub
            for child, child_help, child_parser in subcommands(sub):
                yield f"{name} {child}", child_help, child_parser


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: HTML escaped, pipes escaped, one line."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest.upper()}`"
    metavar = ""
    if action.nargs != 0:
        formatter = argparse.HelpFormatter("painterly")
        default_metavar = action.dest.upper()
        metavar = " " + formatter._format_args(action, default_metavar)
    return ", ".join(f"`{flag}{metavar}`" for flag in action.option_strings)


def _default(action: argparse.Action) -> str:
    stated = DEFAULT_IN_HELP.search(action.help or "")
    if stated:
        return _cell(stated.group(1))
    if not action.option_strings or action.default in (None, argparse.SUPPRESS, False):
        return ""
    if action.nargs == 0 and action.default is True:
        return "on"
    if isinstance(action.default, list | tuple):
        return _cell(", ".join(str(value) for value in action.default))
    return f"`{_cell(str(action.default))}`"


def _help(action: argparse.Action, prog: str) -> str:
    text = DEFAULT_IN_HELP.sub("", action.help or "")
    if "%" in text:
        params = {**vars(action), "prog": prog}
        params = {k: getattr(v, "__name__", v) for k, v in params.items() if v is not argparse.SUPPRESS}
        if params.get("choices") is not None:
            params["choices"] = ", ".join(str(c) for c in params["choices"])
        text = text % params
    if action.choices is not None and action.metavar is not None:
        choices = ", ".join(f"`{c}`" for c in action.choices)
        text = f"{_cell(text)} (one of {choices})" if text else f"one of {choices}"
        return text
    return _cell(text)


def _visible(action: argparse.Action) -> bool:
    return action.help is not argparse.SUPPRESS and not isinstance(
        action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction
    )


def render_parser(name: str, summary: str, parser: argparse.ArgumentParser, level: int = 2) -> str:
    """One subcommand: heading, summary, usage and a table per argument group."""
    lines = [f"{'#' * level} painterly {name}", ""]
    description = parser.description or summary
    if description:
        lines += [_cell(description).replace("\\|", "|"), ""]
    formatter = parser.formatter_class(prog=parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    usage = formatter.format_help().strip()
    lines += ["```text", usage, "```", ""]
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if _visible(a)]
        if not actions:
            continue
        title = group.title or "options"
        lines += [f"**{title}**", "", "| option | default | |", "|---|---|---|"]
        lines += [f"| {_flags(a)} | {_default(a)} | {_help(a, parser.prog)} |" for a in actions]
        lines.append("")
    nested = [child for child, _, _ in subcommands(parser) if " " not in child]
    if nested:
        lines += ["Actions: " + ", ".join(f"`{name} {child}`" for child in nested) + ".", ""]
    return "\n".join(lines)


def render() -> str:
    """The whole reference: the top-level command, then every subcommand (nested ones included)."""
    parser = build_parser()
    parts = []
    for name, summary, sub in subcommands(parser):
        parts.append(render_parser(name, summary, sub, level=2 + name.count(" ")))
    return "\n".join(parts)


if __name__ == "__main__":
    print(render())

"""MkDocs build hook (``hooks:`` in mkdocs.yml): the pages generated from the code.

- ``<!-- painterly:cli-reference -->`` becomes every subcommand's options, rendered from the argparse
  parsers by ``scripts/cli_reference.py``;
- ``<!-- painterly:python-api -->`` becomes one mkdocstrings block per public name of
  ``painterly/__init__.py`` (its ``__all__`` and the module each name is loaded from), so a name
  added to the public API appears in the reference with its docstring.

The source tree's ``src`` comes first on ``sys.path``: the site documents this checkout.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI_MARKER = "<!-- painterly:cli-reference -->"
API_MARKER = "<!-- painterly:python-api -->"


def _load_cli_reference() -> Any:
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    spec = importlib.util.spec_from_file_location(
        "painterly_cli_reference", ROOT / "scripts" / "cli_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_api() -> list[str]:
    """The dotted path where each public name of ``painterly`` is defined, in ``__all__``'s order.

    The names load lazily (through ``painterly.__getattr__`` and the subpackages' own lazy tables),
    which a static reader cannot follow: each is imported, and documented where it is defined."""
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    import painterly

    paths = []
    for name in painterly.__all__:
        if name == "__version__":
            continue
        obj = getattr(painterly, name)
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str):
            paths.append(f"{module}.{qualname}")
        else:  # a constant (PRESETS): documented in the module that declares it
            paths.append(f"{painterly._LAZY[name]}.{name}")
    return paths


def python_api() -> str:
    """One mkdocstrings block per public name."""
    return "\n".join(f"::: {path}\n    options:\n      heading_level: 2\n" for path in public_api())


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, _load_cli_reference().render())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, python_api())
    return markdown

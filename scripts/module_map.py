"""Write docs/modules.md: every module of the tfxattr package with the first sentence of its docstring, one per
line, grouped by subpackage. ``tests/test_readme.py`` checks that the committed page is what this script
writes, so the map in the docs follows the tree.

    python scripts/module_map.py            # rewrite docs/modules.md
"""
from __future__ import annotations

import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "modules.md")
HEADER = """# Module map

Every module of the package, with the first sentence of its docstring (written by `python scripts/module_map.py`;
a test fails when this page and the tree disagree). Where a change goes: [Contributing](contributing.md).
"""


def first_sentence(path: str) -> str:
    """The docstring's first sentence (its first paragraph up to ". "), reST roles and literals as Markdown."""
    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    end = text.find(". ")
    text = text if end < 0 else text[:end + 1]
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")
    return text.replace("|", "/")


def module_map(root: str = ROOT) -> str:
    """The page's Markdown: one table per package directory, one row per module."""
    parts = [HEADER]
    package = os.path.join(root, "tfxattr")
    for folder, dirs, files in sorted(os.walk(package)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        modules = sorted(f for f in files if f.endswith(".py"))
        if not modules:
            continue
        name = os.path.relpath(folder, root).replace(os.sep, "/")
        parts += [f"## `{name}/`", "", "| module | what it holds |", "|---|---|"]
        parts += [f"| `{m}` | {first_sentence(os.path.join(folder, m))} |" for m in modules]
        parts.append("")
    return "\n".join(parts)


def main() -> int:
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(module_map())
    print(PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Architecture checks: no import cycle among the modules of ``tfxattr/`` and ``keras_apps/``.

Imports inside functions count (a cycle hidden by a deferred import is still a cycle in the design);
imports under ``if TYPE_CHECKING:`` do not (they never run).

What is an edge ``A -> B`` ("running A needs B"):

* ``import a.b.c`` / ``from a.b.c import x``: ``a.b.c`` and the packages above it (their ``__init__``
  runs first), except A's own ancestor packages: Python imports those before A, so that implicit import
  asks nothing of them (otherwise every package ``__init__`` that imports a submodule would be a cycle).
* ``from P import x``: to the submodule ``P.x`` if it is one, else to ``P``'s ``__init__``, even when P is
  A's own package: ``from . import name`` in ``pkg/foo.py`` needs ``pkg/__init__.py`` to have defined
  ``name``, a real cycle when ``pkg/__init__.py`` imports ``foo``. Likewise ``import pkg`` in ``pkg/foo.py``
  (the code means to use ``pkg``'s attributes).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tfxattr", "keras_apps")


# -- the import graph -------------------------------------------------------------------------------
def module_files(root: Path, packages) -> dict:
    """Dotted module name -> file, for every ``.py`` file below ``root/<package>``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _ancestors(name: str) -> list:
    """``"a.b.c"`` -> ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_type_checking(test) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree):
    """``(node, in_function)`` for every import that can run (module level or in a function): not those
    under ``if TYPE_CHECKING:``."""
    stack = [(tree, False)]
    while stack:
        node, in_function = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = node.orelse
        else:
            children = list(ast.iter_child_nodes(node))
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inside) for child in children)


def import_edges(root: Path, packages) -> dict:
    """``{(importer, imported): [place, ...]}`` among the modules of ``packages`` below ``root``."""
    modules = module_files(root, packages)
    edges = defaultdict(dict)  # an ordered set of places per edge
    for name, path in modules.items():
        own_package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        before = set(_ancestors(name)) | {name}  # imported before ``name`` runs: importing them asks nothing
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node, in_function in _imports(tree):
            place = f"{path.relative_to(root)}:{node.lineno} ({'in a function' if in_function else 'module level'})"
            for target, explicit in _targets(node, own_package, modules):
                if target in modules and target != name and (explicit or target not in before):
                    edges[(name, target)][place] = None
    return {edge: list(places) for edge, places in edges.items()}


def _targets(node, own_package: str, modules):
    """``(module, explicit)`` pairs an import statement runs; ``explicit``: a name is taken from its code."""
    if isinstance(node, ast.Import):
        for alias in node.names:  # ``import a.b``: the code names a.b (explicit), a's __init__ runs first
            yield from [(target, False) for target in _ancestors(alias.name)] + [(alias.name, True)]
        return
    if node.level:
        base = own_package.split(".")
        source = ".".join(base[:len(base) - (node.level - 1)] + ([node.module] if node.module else []))
    else:
        source = node.module
    yield from ((target, False) for target in _ancestors(source) + [source])
    for alias in node.names:
        sub = f"{source}.{alias.name}"
        yield (sub, False) if sub in modules else (source, True)


def strongly_connected(nodes, edges) -> list:
    """Tarjan's strongly connected components (iterative), as sorted lists; only those of 2+ nodes."""
    graph = defaultdict(list)
    for a, b in edges:
        graph[a].append(b)
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def import_cycles(root: Path, packages):
    """``(cycles, edges)``: the modules of every import cycle, and the import edges with their places."""
    edges = import_edges(root, packages)
    return strongly_connected(module_files(root, packages), edges), edges


def describe(cycles, edges) -> str:
    lines = []
    for members in cycles:
        lines.append("cycle: " + ", ".join(members))
        inside = set(members)
        for (a, b), places in sorted(edges.items()):
            if a in inside and b in inside:
                lines.append(f"    {a} -> {b}: {'; '.join(places)}")
    return "\n".join(lines)


# -- the real package -----------------------------------------------------------------------------
def test_no_import_cycles():
    modules = module_files(ROOT, PACKAGES)
    assert "tfxattr" in modules and "keras_apps" in modules  # the walk found the packages
    cycles, edges = import_cycles(ROOT, PACKAGES)
    assert len(edges) > len(PACKAGES)  # and their imports
    assert not cycles, "import cycles (imports inside functions count):\n" + describe(cycles, edges)


# -- the cycle finder on tiny fake packages --------------------------------------------------------
def _write(root: Path, files: dict):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


BASE = {"pkg/__init__.py": "from .a import f\n",
        "pkg/a.py": "from .b import g\n\ndef f():\n    return g()\n"}

CASES = {
    "function-level import closes a cycle": (
        {**BASE, "pkg/b.py": "def g():\n    from .a import f\n    return f\n"}, [["pkg.a", "pkg.b"]]),
    "no import back": ({**BASE, "pkg/b.py": "def g():\n    return 1\n"}, []),
    "TYPE_CHECKING-only import back": (
        {**BASE, "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n"
                             "def g():\n    return 1\n"}, []),
    "a name from the own package __init__, which imports the module": (
        {"pkg/__init__.py": "VALUE = 1\nfrom .a import f\n", "pkg/a.py": "from . import VALUE\n\ndef f():\n"
                                                                         "    return VALUE\n"},
        [["pkg", "pkg.a"]]),
    "the own package imported for its attributes": (
        {"pkg/__init__.py": "from .a import f\n\ndef helper():\n    return 1\n",
         "pkg/a.py": "def f():\n    import pkg\n    return pkg.helper()\n"}, [["pkg", "pkg.a"]]),
    "a sibling submodule through the own package": (
        {"pkg/__init__.py": "from .a import f\n", "pkg/a.py": "from . import b\n\ndef f():\n    return b.g()\n",
         "pkg/b.py": "def g():\n    return 1\n"}, []),
    "a deep import runs a foreign package __init__": (
        {"pkg/__init__.py": "", "pkg/a.py": "import pkg.sub.c\n", "pkg/sub/__init__.py": "from ..a import *\n",
         "pkg/sub/c.py": ""}, [["pkg.a", "pkg.sub"]]),
    "a submodule's own ancestors are not imported by it": (
        {"pkg/__init__.py": "from .sub.c import h\n", "pkg/sub/__init__.py": "from .c import h\n",
         "pkg/sub/c.py": "from ..a import f\n\ndef h():\n    return f\n", "pkg/a.py": "def f():\n    return 1\n"}, []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cycle_finder(tmp_path, case):
    files, expected = CASES[case]
    _write(tmp_path, files)
    cycles, edges = import_cycles(tmp_path, ["pkg"])
    assert cycles == expected, describe(cycles, edges)
    if expected:
        assert str(Path("pkg") / "a.py") in describe(cycles, edges)  # the message points at the import


def test_cycle_finder_edges_and_components(tmp_path):
    _write(tmp_path, CASES["function-level import closes a cycle"][0])
    edges = import_edges(tmp_path, ["pkg"])
    assert set(edges) == {("pkg", "pkg.a"), ("pkg.a", "pkg.b"), ("pkg.b", "pkg.a")}
    assert edges[("pkg.b", "pkg.a")] == [f"{Path('pkg') / 'b.py'}:2 (in a function)"]
    ring = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "f")]
    assert strongly_connected("abcdef", ring) == [["a", "b", "c"], ["d", "e"]]

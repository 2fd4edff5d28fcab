"""The package's architecture, checked on its source: no import cycles, and every room keeps its rule.

The import graph is read from the source (`ast`), with every import a module
makes at run time: at its top level and inside functions (a function-local
import that would close a cycle is a cycle). Imports under
``if TYPE_CHECKING:`` are annotations only and are left out. An import of a
package is an edge to its ``__init__``; ``from pkg import name`` is an edge to
``pkg.name`` when that is a module.

Rules (docs/architecture.md):
- no import cycle anywhere in ``src/entrolab``;
- ``entrolab.stats`` is a leaf: it imports nothing of entrolab;
- ``entrolab.report`` and each study kind's ``report`` module are built from
  tables only: nothing they import, directly or not, is in ``entrolab.agents``
  or ``entrolab.envs``;
- ``entrolab.measures`` and ``entrolab.stats`` never import ``entrolab.study``
  or ``entrolab.studies`` (measures are pure; studies call them);
- the engine (``entrolab.study``) never imports a study kind (``entrolab.studies``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "entrolab"


def _module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The entrolab modules that `module` imports at run time."""
    out: set[str] = set()

    def resolve(base: str, level: int) -> str:
        if not level:
            return base
        parent = module.split(".") if is_package else module.split(".")[:-1]
        parent = parent[: len(parent) - (level - 1)]
        return ".".join(parent + ([base] if base else []))

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = resolve(child.module or "", child.level)
                for a in child.names:
                    out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
            visit(child)

    visit(tree)
    return {m for m in out if m == PACKAGE or m.startswith(PACKAGE + ".")}


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    files = sorted((src / PACKAGE).rglob("*.py"))
    modules = {_module_name(p, src) for p in files}
    graph = {}
    for p in files:
        name = _module_name(p, src)
        edges = _imports(ast.parse(p.read_text(), str(p)), name, p.name == "__init__.py", modules)
        # importing a submodule runs the __init__ of each package above it too (except the
        # importer's own packages, which Python has already initialised before the importer ran)
        implied = {".".join(m.split(".")[:i]) for m in edges for i in range(1, m.count(".") + 1)}
        implied = {m for m in implied if not name.startswith(m + ".")}
        graph[name] = {m for m in edges | implied if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module `start` imports, directly or not, each with the module that imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen and nxt != start:
                seen[nxt] = node
                todo.append(nxt)
    return seen


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


GRAPH = import_graph()


def test_graph_is_read_from_the_source():
    # a sanity check of the reader itself: known edges are present
    assert "entrolab.envs.core" in GRAPH["entrolab.envs.lorenz"]
    assert "entrolab.study.kinds" in GRAPH["entrolab.study.config"]
    assert len(GRAPH) > 60


def test_no_import_cycles():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_stats_is_a_leaf():
    assert GRAPH["entrolab.stats"] == set()


def _report_modules() -> list[str]:
    return sorted(m for m in GRAPH if _within(m, "entrolab.report") or
                  (_within(m, "entrolab.studies") and m.endswith(".report")))


@pytest.mark.parametrize("module", _report_modules())
def test_reports_never_reach_agents_or_envs(module):
    via = reachable(GRAPH, module)
    bad = sorted(m for m in via if _within(m, "entrolab.agents") or _within(m, "entrolab.envs"))
    assert not bad, f"{module} reaches {bad[0]} (through {via[bad[0]]})"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _within(m, "entrolab.measures")) + ["entrolab.stats"])
def test_measures_and_stats_never_import_studies(module):
    bad = sorted(m for m in GRAPH[module] if _within(m, "entrolab.study") or _within(m, "entrolab.studies"))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _within(m, "entrolab.study")))
def test_engine_never_imports_a_kind(module):
    bad = sorted(m for m in reachable(GRAPH, module) if _within(m, "entrolab.studies"))
    assert not bad, f"the engine module {module} reaches the study kind {bad[0]}"


def test_the_checker_finds_what_it_must(tmp_path):
    """The reader and the cycle finder on a small fake package: a cycle through a function-local
    import is found, a TYPE_CHECKING import is not an edge, relative imports resolve."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from entrolab import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from entrolab import a\n")
    (pkg / "sub" / "d.py").write_text("from ..c import x\nfrom .e import y\n")
    (pkg / "sub" / "e.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["entrolab.a"] == {"entrolab.b"}
    assert graph["entrolab.b"] == {"entrolab.c"}
    assert graph["entrolab.c"] == set()
    assert graph["entrolab.sub.d"] == {"entrolab.c", "entrolab.sub.e"}
    assert find_cycle(graph) is None
    (pkg / "c.py").write_text("def g():\n    import entrolab.a\n")
    cycle = find_cycle(import_graph(tmp_path))
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"entrolab.a", "entrolab.b", "entrolab.c"}

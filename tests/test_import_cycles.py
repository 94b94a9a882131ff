"""No import cycles among napari_dcmix modules, read off the source (AST), not by importing it.

A cycle at module level breaks imports outright (a partly initialised module); one closed by an
import inside a function is hidden: it works until someone moves that import to the top. Both are
counted, separately: module-level imports must have no cycle at all; module- and function-level
imports together only the known exceptions below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

def _modules(src: Path, package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return isinstance(test, (ast.Name, ast.Attribute)) and getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING"


def import_graphs(src: Path, package: str = "napari_dcmix") -> dict[str, dict[str, set[str]]]:
    """{"module": graph, "function": graph}: module -> the package's modules it imports at that level.

    ``from pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg`` (its __init__);
    imports in a class body run at import time, so they count as module level.
    """
    modules = _modules(src, package)
    graphs: dict[str, dict[str, set[str]]] = {"module": {m: set() for m in modules},
                                              "function": {m: set() for m in modules}}
    for name, path in modules.items():
        here = (name if path.name == "__init__.py" else name.rpartition(".")[0]).split(".")

        def visit(node: ast.AST, level: str) -> None:
            for child in ast.iter_child_nodes(node):
                if _type_checking_only(child):
                    continue
                inner = "function" if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) else level
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = ".".join(here[:len(here) - child.level + 1]) if child.level else ""
                    base = ".".join(p for p in (base, child.module) if p)
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in child.names]
                graphs[level][name].update(t for t in targets if t in modules and t != name)
                visit(child, inner)

        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "module")
    return graphs


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan), each a set of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def _combined(graphs: dict[str, dict[str, set[str]]]) -> dict[str, set[str]]:
    return {m: graphs["module"][m] | graphs["function"][m] for m in graphs["module"]}


@pytest.fixture(scope="module")
def graphs():
    found = import_graphs(SRC)
    assert len(found["module"]) > 50 and "napari_dcmix.training.exports" in found["module"]  # read the real tree
    assert "napari_dcmix.training.predictor" in found["module"]["napari_dcmix.training.exports"]
    return found


def test_no_cycle_among_module_level_imports(graphs):
    assert cycles(graphs["module"]) == [], "module-level import cycle: make one side import the other, not both"


def test_no_hidden_cycle_closed_by_a_function_level_import(graphs):
    hidden = cycles(_combined(graphs))
    assert hidden == [], ("import cycle closed by an import inside a function: move the shared code to a "
                          "module both can import at the top")


def test_the_graph_tells_module_from_function_level_imports(tmp_path):
    pkg = tmp_path / "napari_dcmix"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import A\n")
    (pkg / "sub" / "a.py").write_text("from . import b\nA = 1\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .a import A\n    return A\n")
    (pkg / "sub" / "c.py").write_text("from ..sub import d\n")
    (pkg / "sub" / "d.py").write_text("import napari_dcmix.sub.c\nfrom typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from .a import A\n")
    found = import_graphs(tmp_path)
    assert found["module"]["napari_dcmix.sub.a"] == {"napari_dcmix.sub.b"}
    assert found["function"]["napari_dcmix.sub.b"] == {"napari_dcmix.sub.a"}
    assert found["module"]["napari_dcmix.sub.d"] == {"napari_dcmix.sub.c"}  # not the TYPE_CHECKING import
    assert cycles(found["module"]) == [{"napari_dcmix.sub.c", "napari_dcmix.sub.d"}]
    assert sorted(map(sorted, cycles(_combined(found)))) == [["napari_dcmix.sub.a", "napari_dcmix.sub.b"],
                                                              ["napari_dcmix.sub.c", "napari_dcmix.sub.d"]]

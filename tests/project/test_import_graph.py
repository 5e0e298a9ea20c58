"""The package's import graph: no module imports one that imports it back, and each study module imports alone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import auglens

SRC = Path(auglens.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the auglens modules it imports anywhere (also inside functions), by name as written.

    ``from auglens.x import y`` counts as importing ``auglens.x.y`` when that is a module, else ``auglens.x``;
    the parent package a submodule import runs implicitly is not counted (every package would be a cycle).
    """
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                assert node.level == 0, f"{name}: relative import; the package uses absolute imports"
                edges |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                          for alias in node.names}
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles():
    graph = import_graph()
    assert {"auglens.study.jobs", "auglens.study.backends.ray"} <= set(graph)  # the walk sees the package
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_compare_and_distortion_import_study_modules_not_the_package():
    graph = import_graph()
    users = [name for name in graph if name == "auglens.compare" or name.startswith("auglens.distortion")]
    assert [name for name in users if "auglens.study" in graph[name]] == []


def test_every_study_module_imports_first_in_a_fresh_interpreter():
    modules = sorted(name for name in _modules() if name.startswith("auglens.study"))
    # One interpreter (torch loads once); auglens's modules are dropped before each import, so each is imported
    # first, as a user's ``from auglens.study.X import ...`` would.
    script = "\n".join([
        "import importlib, sys, torch",
        f"for name in {modules!r}:",
        "    for loaded in [m for m in sys.modules if m == 'auglens' or m.startswith('auglens.')]:",
        "        del sys.modules[loaded]",
        "    importlib.import_module(name)",
    ])
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(SRC.parent)})
    assert result.returncode == 0, result.stderr

"""The package's layering, read from its source: no import circle between modules or between
subpackages (imports inside functions count: deferring an import hides a circle, it does not
remove it), and ``index/`` imports nothing above it."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "patchpilot"
#: What ``index/`` may import: the layers below it (the package root only for its version).
BELOW_INDEX = {"audio", "cluster", "constants", "embed", "errors", "index", "library", "paths", "synths", "patchpilot"}


def _module(path: Path) -> str:
    parts = ["patchpilot", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module -> the patchpilot modules it imports (not under ``if TYPE_CHECKING``)."""
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)

    def visit(module: str, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                graph[module].update(a.name for a in child.names if a.name.startswith("patchpilot"))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("patchpilot"):
                for alias in child.names:  # "from patchpilot.x import y" imports the module x.y when there is one
                    candidate = f"{child.module}.{alias.name}"
                    graph[module].add(candidate if candidate in modules else child.module)
            visit(module, child)

    for path in PACKAGE.rglob("*.py"):
        visit(_module(path), ast.parse(path.read_text(encoding="utf-8")))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def _subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_module_imports_itself_around_a_circle() -> None:
    graph = _imports()
    # a package's __init__ re-exporting its modules is not a circle with them
    edges = {m: {n for n in targets if n != m and not m.startswith(n + ".")} for m, targets in graph.items()}
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_no_subpackage_imports_itself_around_a_circle() -> None:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in _imports().items():
        for target in targets:
            if _subpackage(target) not in (_subpackage(module), "patchpilot"):
                packages[_subpackage(module)].add(_subpackage(target))
    assert _cycle(packages) is None, " -> ".join(_cycle(packages) or [])


def test_the_index_imports_only_from_below() -> None:
    upward = sorted(f"{module} imports {target}" for module, targets in _imports().items()
                    if _subpackage(module) == "index" for target in targets if _subpackage(target) not in BELOW_INDEX)
    assert not upward, upward


#: The map of docs/ARCHITECTURE.md: each module or subpackage and its layer, from the bottom.
LAYERS = {
    "patchpilot": 0, "constants": 0, "errors": 0, "confidence": 0,
    "audio": 1, "paths": 1, "plugins": 1,
    "distance": 2, "metrics": 2, "synths": 2,
    "embed": 3, "fx": 3, "library": 3, "cluster": 3, "proposal": 3, "plots": 3,
    "index": 4, "export": 4,
    "corpus": 5, "describe": 5,
    "matching": 6,
    "refine": 7,
    "tweak": 8,
    "report": 9,
    "api": 10,
    "serve": 11,
    "cli": 12, "__main__": 13,
}


def test_every_import_goes_down_the_map_of_the_architecture() -> None:
    graph = _imports()
    unmapped = sorted({_subpackage(m) for m in graph} - set(LAYERS))
    assert not unmapped, f"add these to LAYERS and to docs/ARCHITECTURE.md's map: {unmapped}"
    upward = sorted(f"{module} imports {target}" for module, targets in graph.items() for target in targets
                    if _subpackage(target) != _subpackage(module)
                    and LAYERS[_subpackage(target)] >= LAYERS[_subpackage(module)])
    assert not upward, upward


def test_the_checks_see_a_circle_when_there_is_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None

"""Dependencies point one way: cli -> orchestrate / cluster -> stages (prepare, train, evaluate,
analysis) -> sample / models / data / metrics -> storage -> config / runtime. Every import is
read from the source (function-level ones too) and checked against the layers, and neither
modules nor units (the layer table's entries) may import each other in a cycle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

LAYERS = {
    # The registries are data (the size family, the sampler table): they live in config, which
    # validates names against them, so that config imports nothing above it.
    "ldmscale.errors": 0,
    "ldmscale.runtime": 0,
    "ldmscale.provenance": 0,
    "ldmscale.config": 0,
    "ldmscale.storage": 1,
    "ldmscale.data": 2,
    "ldmscale.models": 2,
    "ldmscale.sample": 2,
    "ldmscale.metrics": 2,
    "ldmscale.prepare": 3,
    "ldmscale.train": 3,
    "ldmscale.evaluate": 3,
    "ldmscale.analysis": 3,
    "ldmscale.orchestrate": 4,
    "ldmscale.cluster": 4,
    "ldmscale.cli": 5,
    "ldmscale.__main__": 6,
    # The root package only holds the version.
    "ldmscale": 0,
}


def unit(module: str) -> str:
    """The most specific entry of LAYERS that `module` belongs to."""
    return max((key for key in LAYERS if module == key or module.startswith(key + ".")), key=len)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The package modules `path` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports a.b, or a.b.c when c is a module.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def package_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports; a module's own parent packages (which Python
    imports before any of their modules) are left out."""
    paths = {module_name(p): p for p in (SRC / "ldmscale").rglob("*.py")}
    modules = set(paths)
    return {
        name: {m for m in imports(path, modules) if m != name and not name.startswith(m + ".")}
        for name, path in paths.items()
    }


def upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if LAYERS[unit(target)] > LAYERS[unit(source)]
    )


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` (as a path) or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def unit_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = defaultdict(set)
    for source, targets in graph.items():
        for target in targets:
            if unit(source) != unit(target):
                units[unit(source)].add(unit(target))
    return units


def test_every_module_belongs_to_a_layer() -> None:
    assert all(unit(name) in LAYERS for name in package_graph())


def test_no_import_points_up_the_layers() -> None:
    assert upward(package_graph()) == []


def test_no_module_or_package_imports_itself_through_others() -> None:
    """Units are the packages (config, storage, data, ...): no package-level circle either."""
    graph = package_graph()
    assert cycle(graph) == []
    assert cycle(unit_graph(graph)) == []


def test_the_checks_find_what_they_guard_against() -> None:
    graph = package_graph()
    # A stage importing a lower layer's module back: prepare -> evaluate -> prepare.
    graph["ldmscale.prepare.domain"] = graph["ldmscale.prepare.domain"] | {
        "ldmscale.evaluate.shard"
    }
    graph["ldmscale.evaluate.shard"] = graph["ldmscale.evaluate.shard"] | {
        "ldmscale.prepare.domain"
    }
    assert cycle(graph) != []
    assert cycle(unit_graph(graph)) != []
    graph = package_graph()
    graph["ldmscale.storage.fs"] = graph["ldmscale.storage.fs"] | {"ldmscale.train.trainer"}
    assert upward(graph) == ["ldmscale.storage.fs imports ldmscale.train.trainer"]

"""The package's layers, checked from its imports: no module imports a higher floor, and no two import each other.

The floors are the ones docs/ARCHITECTURE.md names. Function-local imports count too: a lazy import
is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bert_tasks"

#: floor, from the bottom: every module of the package sits on exactly one
FLOORS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "version", "threads", "hardware", "io", "bundled", "hub", "metrics")),
    ("model, protocol, settings", ("model", "pooling", "protocol", "config")),
    ("heads and what reads them", ("heads", "families", "keymap", "compiled", "modelcard", "attention", "plots")),
    ("checkpoints", ("checkpoint",)),
    ("training loop", ("train", "sharding")),
    ("tasks", ("tasks",)),
    ("run template", ("runner",)),
    ("command line and package API", ("cli", "__main__", "__init__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def floor_of(module: str) -> int:
    for level, (_, prefixes) in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"bert_tasks.{module} sits on no floor; add it to FLOORS and docs/ARCHITECTURE.md")


def imports_of(path: Path) -> set[str]:
    """The package modules ``path`` imports (relative or absolute, at any depth of the file)."""
    here = list(path.relative_to(PACKAGE).with_suffix("").parts)
    package = here[:-1]  # the package a relative import starts from (for an __init__.py, its own)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.startswith("bert_tasks"):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import x`: x is a module, or a name of the package itself
                candidate = ".".join([*target, alias.name])
                found.add(candidate if _exists(candidate) else ".".join(target) or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("bert_tasks."):
                    found.add(alias.name.split(".", 1)[1])
    return {m for m in found if m and m != module_name(path)}


def _exists(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py") if "recipes" not in p.parts}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return [f"{module} ({FLOORS[floor_of(module)][0]}) -> {target} ({FLOORS[floor_of(target)][0]})"
            for module, targets in edges.items() for target in targets if floor_of(target) > floor_of(module)]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    def owner(target: str) -> str:  # `from .task import X` names the module, a symbol import its module
        return target if target in edges else next((m for m in edges if target.startswith(m + ".")), target)

    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in map(owner, edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt in edges and nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for module in edges:
        if module not in state:
            visit(module, [module])
    return found


def test_every_module_sits_on_a_floor_and_imports_only_downward():
    edges = graph()
    assert {"tasks", "train", "checkpoint"} <= edges["runner"]  # the graph is read: the template uses all three
    assert not upward_imports(edges)


def test_no_import_cycles():
    assert not cycles(graph())


def test_the_checks_can_fail():
    assert upward_imports({"train": {"tasks.glue.task"}}) == ["train (training loop) -> tasks.glue.task (tasks)"]
    assert cycles({"tasks.glue.config": {"tasks.glue.data"}, "tasks.glue.data": {"tasks.glue.config"}}) == [
        ["tasks.glue.config", "tasks.glue.data", "tasks.glue.config"]]

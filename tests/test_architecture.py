"""The package's layers, checked from its layout and imports: floors as docs/ARCHITECTURE.md's table names them.

The floors are read from that table (one place: the document and this test cannot drift), and every folder and
flat module of ``bert_tasks/`` must sit in exactly one row, every row name something on disk. Then: no module
imports a higher floor, no two import each other (function-local imports count too: a lazy import is still a
dependency), no module is over 450 lines, at most six modules stay flat, and no function is over 80 lines
unless its docstring says why.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bert_tasks"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
#: flat modules every package has; the rest of the flat ones are counted
EXEMPT_FLAT = {"__init__", "__main__", "version", "errors"}
MAX_FLAT, MAX_LINES, MAX_FUNCTION = 6, 450, 80
#: the offline metric scripts are evaluate modules shipped as they are
NOT_COUNTED = ("metrics",)


def read_floors(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The floors table of docs/ARCHITECTURE.md, bottom floor first: (name, entries) per row, an entry being a
    folder (``model/``) or a flat module (``io.py``) of the package."""
    rows = re.findall(r"^\| (\d+)\. ([^|]+?) \| ([^|]+?) \|", text, flags=re.M)
    floors = sorted((int(n), name.strip(), tuple(re.findall(r"`([^`]+)`", entries))) for n, name, entries in rows)
    assert [n for n, _, _ in floors] == list(range(1, len(floors) + 1)), "floors are numbered 1, 2, ... once each"
    return [(name, tuple(e.removesuffix("/").removesuffix(".py") for e in entries)) for _, name, entries in floors]


FLOORS = read_floors(DOC.read_text(encoding="utf-8"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def floor_of(module: str) -> int:
    for level, (_, prefixes) in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"bert_tasks.{module} sits on no floor; add it to the floors table of docs/ARCHITECTURE.md")


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


def sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "recipes" not in p.relative_to(PACKAGE).parts]


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sources()}


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


def layout_entries() -> set[str]:
    """What ``bert_tasks/`` holds at its top: its folders (packages) and flat modules."""
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and p.name != "recipes"}
    return folders | {p.stem for p in PACKAGE.glob("*.py")}


def long_functions(source: str, module: str) -> list[str]:
    """Functions over MAX_FUNCTION lines whose docstring does not say why they are long ("Long because ...")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION and "Long because" not in (ast.get_docstring(node) or ""):
                found.append(f"{module}.{node.name} ({length} lines)")
    return found


def test_every_module_sits_on_a_floor_and_imports_only_downward():
    edges = graph()
    assert {"training.loop", "checkpoint.load"} <= edges["runner.template"] and "tasks" in edges["runner.sweeps"]
    assert not upward_imports(edges)


def test_the_floors_table_is_the_layout():
    listed = [entry for _, entries in FLOORS for entry in entries]
    assert len(listed) == len(set(listed)), "an entry sits on two floors"
    assert set(listed) == layout_entries()


def test_no_import_cycles():
    assert not cycles(graph())


def test_modules_are_small_and_few_stay_flat():
    counted = [p for p in sources() if p.relative_to(PACKAGE).parts[0] not in NOT_COUNTED]
    assert not [f"{module_name(p)} ({n})" for p in counted if (n := len(p.read_text().splitlines())) > MAX_LINES]
    flat = {p.stem for p in PACKAGE.glob("*.py")} - EXEMPT_FLAT
    assert len(flat) <= MAX_FLAT, sorted(flat)
    assert not [name for p in counted for name in long_functions(p.read_text(), module_name(p))]


def test_the_checks_can_fail():
    assert upward_imports({"training.loop": {"tasks.glue.task"}}) == [
        "training.loop (training loop) -> tasks.glue.task (tasks)"]
    assert cycles({"tasks.glue.config": {"tasks.glue.data"}, "tasks.glue.data": {"tasks.glue.config"}}) == [
        ["tasks.glue.config", "tasks.glue.data", "tasks.glue.config"]]
    assert read_floors("| 2. up | `b/` | x |\n| 1. down | `a.py`, `c/` | y |") == [("down", ("a", "c")), ("up", ("b",))]
    body = "    x = 1\n" * MAX_FUNCTION
    assert long_functions("def f():\n" + body, "m") == [f"m.f ({MAX_FUNCTION + 1} lines)"]
    assert long_functions('def f():\n    """Long because it must be."""\n' + body, "m") == []

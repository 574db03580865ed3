"""The benchmark suite: ``python -m benchmarks [NAME ...] [--quick] [--list]``.

A benchmark is any ``benchmarks/*.py`` whose name does not start with ``_`` and
that defines ``main(argv: list[str] | None) -> None``; adding such a file is all
it takes to join the suite. With no names, every benchmark runs. Arguments after
``--`` go to each benchmark named, and ``--quick`` is passed on to all of them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
import time
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def discover() -> dict[str, str]:
    """name -> first docstring line, for each module that follows the convention.

    Modules are parsed, not imported, so listing is instant and one broken
    benchmark cannot hide the others.
    """
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            print(f"skipping benchmarks/{path.name}: {exc}", file=sys.stderr)
            continue
        if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
            doc = (ast.get_docstring(tree) or "").strip()
            found[path.stem] = doc.splitlines()[0] if doc else ""
    return found


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="ask each benchmark for its short version")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)

    benchmarks = discover()
    if args.list:
        width = max(map(len, benchmarks), default=0)
        for name, doc in benchmarks.items():
            print(f"{name:<{width}}  {doc}")
        return
    unknown = [n for n in args.names if n not in benchmarks]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(benchmarks)}")
    for name in args.names or list(benchmarks):
        print(f"\n### {name}", flush=True)
        start = time.perf_counter()
        module = importlib.import_module(f"{__package__ or 'benchmarks'}.{name}")
        module.main(extra + (["--quick"] if args.quick else []))
        print(f"### {name} done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

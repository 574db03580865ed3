"""Ours against the transformers ``Trainer`` over seeds, each run in a fresh process, seeds interleaved.

A benchmark module gives ``run_one(args, name, seed, work) -> {"metrics": {...}, "seconds": s, "train_seconds": t}``
and calls :func:`interleaved`; this module runs every (seed, configuration) in its own process, seed by seed with
the configurations in turn (a change in the machine's load touches all alike), and summarises median and spread.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def start(argv: list[str] | None, parse_args: Callable[[list[str]], Any]) -> tuple[list[str], Any]:
    """(argv, parsed args) of a side-by-side benchmark: transformers' warnings quieted, ``--threads`` applied, and
    ``args.threads`` the count every run then uses (passed on to each child through argv)."""
    import logging

    import torch

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()
    return argv, args


def run_apart(module: str, argv: list[str], name: str, seed: int, work: Path) -> dict:
    """One run in a fresh process (Accelerate fixes the precision once per process; no run inherits another's
    allocator or thread state); the child prints its result as the last line of its output."""
    child = subprocess.run([sys.executable, "-m", module, *argv, "--one", f"{name},{seed},{work}"],
                           stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
    return json.loads(child.stdout.strip().splitlines()[-1])


def interleaved(module: str, argv: list[str], names: list[str], seeds: list[int], work: Path,
                show: Callable[[dict], str]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for seed in seeds:
        for name in names:
            print(f"== {name} seed {seed}", flush=True)
            run = run_apart(module, argv, name, seed, work)
            print(f"   {show(run)}  wall {run['seconds']:.1f} s", flush=True)
            runs[name].append({"seed": seed, **run})
    return runs


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def cell(values: list[float], scale: float = 100.0) -> str:
    """'median (min-max; std)' of values, scaled (points by default)."""
    s = spread(values)
    return (f"{scale * s['median']:.2f} ({scale * s['min']:.2f}-{scale * s['max']:.2f}; "
            f"{scale * s['std']:.2f})")


def wall(runs: list[dict]) -> float:
    return statistics.median(r["seconds"] for r in runs)


def every_run(runs: dict[str, list[dict]], metrics: tuple[str, ...]) -> str:
    rows = ["Every run:", "", f"| run | seed | {' | '.join(metrics)} | wall (s) | training (s) |",
            "| --- | ---: |" + " ---: |" * (len(metrics) + 2)]
    for name, items in runs.items():
        rows += [f"| {name} | {r['seed']} | " + " | ".join(f"{100 * r['metrics'][m]:.2f}" for m in metrics)
                 + f" | {r['seconds']:.1f} | {r['train_seconds']:.1f} |" for r in items]
    return "\n".join(rows)

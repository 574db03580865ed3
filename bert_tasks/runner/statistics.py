"""Summaries over runs: every metric's median and spread over seeds, and the tables of seeds and grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ..checkpoint.modelcard import is_score


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric metrics, nested ones (``{task: metrics}``) as ``task/metric``."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flat_metrics(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[prefix + key] = float(value)
    return flat


def statistics(values: list[float]) -> dict[str, Any]:
    """values, median, mean, sample standard deviation (0 for one value), min and max."""
    array = np.asarray(values, dtype=np.float64)
    return {"values": [float(v) for v in array], "median": float(np.median(array)), "mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0, "min": float(array.min()),
            "max": float(array.max())}


def seed_summary(results: dict[int, dict[str, Any]], failures: dict[int, str], root: Path) -> dict[str, Any]:
    """Every metric over the seeds that finished; which folder holds which seed; which seeds failed and why.

    No seed is promoted: the best one is not copied anywhere, the table shows the spread.
    """
    per_seed = {seed: flat_metrics(metrics) for seed, metrics in results.items()}
    names = sorted({name for metrics in per_seed.values() for name in metrics})
    metrics = {}
    for name in names:
        seeds = [seed for seed in per_seed if name in per_seed[seed]]
        metrics[name] = {"seeds": seeds, **statistics([per_seed[seed][name] for seed in seeds])}
    return {"seeds": {str(seed): str(root / f"seed-{seed}") for seed in sorted([*results, *failures])},
            "metrics": metrics, "failed": {str(seed): why for seed, why in failures.items()}}


def print_table(title: str, summary: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left")
    for column, justify in (("metric", "left"), ("median", "right"), ("mean ± std", "right"), ("min", "right"),
                            ("max", "right"), ("n", "right")):
        table.add_column(column, justify=justify)
    for name, stats in summary["metrics"].items():
        if not is_score(name.rsplit("/", 1)[-1]):
            continue
        table.add_row(name, f"{stats['median']:.4g}", f"{stats['mean']:.4g} ± {stats['std']:.2g}",
                      f"{stats['min']:.4g}", f"{stats['max']:.4g}", str(len(stats["values"])))
    Console(stderr=False).print(table)
    for seed, why in summary["failed"].items():
        print(f"seed {seed} failed: {why}", flush=True)


def print_grid(task: str, summary: dict[str, Any], root: Path) -> None:
    table = Table(title=f"{task}: grid over {len(summary['points'])} points x {len(summary['seeds'])} seeds ({root})",
                  title_justify="left")
    for column in ("point", f"{summary['main_metric']} (median)", "chosen"):
        table.add_column(column)
    for row in summary["points"]:
        score = row["main_metric_median"]
        table.add_row(row["point"], "failed" if score is None else f"{score:.4g}",
                      "best" if row is summary["best"] or row == summary["best"] else "")
    Console().print(table)
    best = summary["best"]
    if best is not None:
        print(f"chosen on the dev set: {best['point']} ({best['folder']}); its dev score is optimistic, "
              "confirm it on held-out data", flush=True)
    against = summary.get("best_vs_runner_up")
    if against:
        print(f"against the runner-up {against['runner_up']} (A: chosen, B: runner-up): {against['verdict']}", flush=True)

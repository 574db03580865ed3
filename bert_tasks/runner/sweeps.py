"""Runs of runs: a recipe that expands (GLUE's ``task: all``), one run per seed, and a grid of settings times seeds.

:func:`train` is what every ``finetune`` and ``pretrain`` command calls; a plain recipe is one run of the template
(:func:`bert_tasks.runner.template.train_one`).
"""

from __future__ import annotations

import copy
import functools
import itertools
import sys
from pathlib import Path
from typing import Any

from ..config import Recipe, with_settings
from ..errors import BertTasksError
from ..io import write_json
from ..tasks import family_of, get_task
from ..checkpoint.files import weights_file
from ..training.checkpoints import checkpoint_dirs
from ..training.precision import resolve_precision
from . import template
from .compare import against_runner_up
from .outputs import current
from .statistics import print_grid, print_table, seed_summary
from .template import claim_run_folder, print_plan, read_results, root_of, run_is_main

SEEDS_SUMMARY = "seeds_summary.json"
GRID_SUMMARY = "grid_summary.json"


def train(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None, dry_run: bool = False,
          seeds: list[int] | None = None, grid: dict[str, list[Any]] | None = None,
          search: dict[str, Any] | None = None) -> dict:
    """Fine-tune or pretrain as ``recipe`` says; returns the final metrics ({name: metrics} for several runs).

    ``seeds`` runs the recipe once per seed into ``OUTPUT/seed-N`` and summarises every metric over them;
    ``grid`` (recipe key -> values) runs every combination, each into its own folder (times every seed), and
    picks the best by the task's main dev metric.
    """
    switches = {"overwrite": overwrite, "resume_from": resume_from, "dry_run": dry_run}
    if search:
        if grid or _expands(recipe):
            raise BertTasksError("--search picks settings for one task by its own trials: drop "
                                 + ("--grid" if grid else "task all"))
        return _search(recipe, search, seeds, **switches)
    if grid:
        return _train_grid(recipe, grid, seeds, **switches)
    if seeds:
        return _train_seeds(recipe, seeds, **switches)
    return _train_recipe(recipe, **switches)


def _search(recipe: Recipe, search: dict[str, Any], seeds: list[int] | None, *, overwrite: bool,
            resume_from: str | None, dry_run: bool) -> dict:
    """The optuna search (:mod:`.search`; optuna is imported only by a search), then, with ``seeds``, its best point
    trained again once per seed into ``OUTPUT/best/seed-N``: a trial is one seed, a lucky one at best, so the
    summary reports the median over the seeds (``best_over_seeds``) beside the trial's own score."""
    from .search import SEARCH_SUMMARY, parse_space, search as run_search

    summary = run_search(recipe, parse_space(search["space"]), search["trials"], overwrite=overwrite,
                         resume_from=resume_from, dry_run=dry_run)
    root = root_of(recipe)
    if dry_run and seeds:
        print(f"# then the best trial's point once per seed ({', '.join(map(str, seeds))}) into {root}/best/seed-<N>")
    if dry_run or not seeds:
        return summary
    best = with_settings(recipe, summary["best"]["params"], origin="the search's best trial")
    best.output_dir = str(root / "best")
    best.train.select_best = best.train.select_best or "main"  # each seed keeps its best state, as a trial does
    print(f"== the best trial ({summary['best']['trial']}) over seeds {', '.join(map(str, seeds))}", flush=True)
    over = _train_seeds(best, seeds, overwrite=False, resume_from=resume_from, dry_run=False)
    summary["best_over_seeds"] = {"folder": best.output_dir, "seeds": seeds, "metrics": over["metrics"]}
    if run_is_main():
        write_json(root / SEARCH_SUMMARY, summary)
        stats = over["metrics"].get("best_metric")  # each seed's kept score, as a trial's value is
        if stats:
            print(f"the best trial's point over {len(seeds)} seeds: {summary['metric']} median {stats['median']:.4g} "
                  f"(min {stats['min']:.4g}, max {stats['max']:.4g}); the trial itself scored "
                  f"{summary['best']['value']:.4g}", flush=True)
    return summary


def _expands(recipe: Recipe) -> bool:
    """A recipe whose task is its family's own name stands for several runs (GLUE's ``task: all``)."""
    family = family_of(recipe.task)
    return recipe.task == family.name and family.expand is not None


def _train_recipe(recipe: Recipe, *, overwrite: bool, resume_from: str | None, dry_run: bool) -> dict:
    if not _expands(recipe):
        return template.train_one(get_task(recipe.task), recipe, overwrite=overwrite, resume_from=resume_from, dry_run=dry_run)
    family = family_of(recipe.task)
    root = root_of(recipe)
    if dry_run:
        try:  # a plan, not a run: data that is not there yet is worth showing, not an error
            found = ", ".join(family.expand(recipe))
        except BertTasksError as exc:
            found = f"each task found (now: {exc.reason})"
        print_plan(recipe, f"{found} into {root}/<task>")
        return {}
    results, _ = _run_each(recipe, family.expand(recipe), overwrite=overwrite, resume_from=resume_from)
    if family.report is not None:
        family.report(results, root)
    return results


def _run_each(recipe: Recipe, runs: dict[str, Recipe], *, overwrite: bool, resume_from: str | None,
              keep_going: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Several runs under one root folder, each into its own: (results, failures) by name.

    Resuming the whole: a finished run stays (its results are read back), a run with a checkpoint
    continues, one that never reached a checkpoint starts over. With ``keep_going`` a failed run is
    recorded, in one line, and the others still run (Ctrl-C still stops everything).
    """
    claim_run_folder(recipe, overwrite=overwrite, resume=resume_from is not None)
    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for name, sub in runs.items():
        print(f"== {name}", flush=True)
        folder = Path(sub.output_dir)
        sub_resume, sub_overwrite = resume_from, False
        if resume_from is not None and not _expands(sub):
            if (folder / "train_results.json").is_file() and weights_file(folder).is_file():
                results[name] = read_results(folder / "eval_results.json")
                print(f"already trained in {folder}", flush=True)
                continue
            if str(resume_from) == "latest" and not checkpoint_dirs(folder):
                sub_resume, sub_overwrite = None, True  # stopped before its first checkpoint: start it over
        trainings = current().trainings_started
        try:
            results[name] = _train_recipe(sub, overwrite=sub_overwrite, resume_from=sub_resume, dry_run=False)
        except template.RUN_FAILURES as exc:
            why = template.run_failure(exc, trainings) if keep_going else None
            if why is None:
                raise  # it failed before training began: bad input, which every other run would meet too
            failures[name] = why
            print(f"{name} failed: {failures[name]}", file=sys.stderr, flush=True)
        template.release_memory()
    return results, failures


# --------------------------------------------------------------------------- seeds and grids


def _with_seed(recipe: Recipe, seed: int, folder: Path) -> Recipe:
    sub = copy.deepcopy(recipe)
    sub.train.seed, sub.output_dir = seed, str(folder)
    return sub


def _train_seeds(recipe: Recipe, seeds: list[int], *, overwrite: bool, resume_from: str | None, dry_run: bool) -> dict:
    """One complete run per seed into ``OUTPUT/seed-N``, then ``seeds_summary.json`` and a table of every metric."""
    root = root_of(recipe)
    if dry_run:
        print_plan(recipe, f"task '{recipe.task}' once per seed ({', '.join(map(str, seeds))}) into {root}/seed-<N>")
        return {}
    runs = {f"seed-{seed}": _with_seed(recipe, seed, root / f"seed-{seed}") for seed in seeds}
    results, failures = _run_each(recipe, runs, overwrite=overwrite, resume_from=resume_from, keep_going=True)
    summary = seed_summary({int(name[5:]): metrics for name, metrics in results.items()},
                           {int(name[5:]): why for name, why in failures.items()}, root)
    if run_is_main():
        write_json(root / SEEDS_SUMMARY, summary)
        print_table(f"{recipe.task} over seeds {', '.join(map(str, seeds))} ({root})", summary)
    if failures:
        raise BertTasksError(f"{len(failures)} of {len(seeds)} seeds failed ({', '.join(failures)}); the others' "
                             f"results are in {root / SEEDS_SUMMARY}", file=root)
    return summary


SEEDS_SUMMARY = "seeds_summary.json"
GRID_SUMMARY = "grid_summary.json"


def grid_points(recipe: Recipe, grid: dict[str, list[Any]]) -> dict[str, tuple[dict[str, Any], Recipe]]:
    """Every combination of the grid's values: name -> (its settings, the recipe with them, into OUTPUT/<name>)."""
    root = root_of(recipe)
    points = {}
    for values in itertools.product(*grid.values()):
        sub = with_settings(recipe, dict(zip(grid, values)), origin="--grid")
        resolved = sub.to_dict()
        settings = {key: functools.reduce(lambda node, part: node[part], key.split("."), resolved) for key in grid}
        name = ",".join(f"{key.rsplit('.', 1)[-1]}={_shown(value)}" for key, value in settings.items())
        sub.output_dir = str(root / name)
        points[name] = (settings, sub)
    precisions = {resolve_precision(sub.train.mixed_precision)[0] for _, sub in points.values()}
    if len(precisions) > 1:
        raise BertTasksError("--grid over train.mixed_precision: Accelerate fixes the precision once per process; run "
                             "each precision as its own command (e.g. --set train.mixed_precision=bf16 --seeds 1,2,3)")
    return points


def _against_runner_up(best: dict[str, Any] | None, scored: list[dict[str, Any]]) -> dict[str, Any] | None:
    others = sorted((row for row in scored if row is not best), key=lambda row: row["main_metric_median"], reverse=True)
    if best is None or not others:
        return None
    return against_runner_up(Path(best["folder"]), Path(others[0]["folder"]), others[0]["point"])


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _train_grid(recipe: Recipe, grid: dict[str, list[Any]], seeds: list[int] | None, *, overwrite: bool,
                resume_from: str | None, dry_run: bool) -> dict:
    """Every combination of the grid's values, each over the seeds into ``OUTPUT/<point>/seed-N``; the best point
    by the median of the task's main metric on the dev set, which the summary says plainly."""
    if _expands(recipe):
        raise BertTasksError("--grid picks settings for one task by its dev score; run it per task, not with task all")
    root = root_of(recipe)
    points = grid_points(recipe, grid)
    seeds = seeds or [recipe.train.seed]
    if dry_run:
        print_plan(recipe, f"task '{recipe.task}' at {len(points)} grid points x {len(seeds)} seeds into {root}/<point>")
        return {}
    claim_run_folder(recipe, overwrite=overwrite, resume=resume_from is not None)
    task = get_task(recipe.task)
    rows = []
    for name, (settings, sub) in points.items():
        print(f"== grid point {name}", flush=True)
        try:
            summary = _train_seeds(sub, seeds, overwrite=False, resume_from=resume_from, dry_run=False)
        except BertTasksError:  # some seeds failed: the summary written says which; the others still count
            summary = read_results(Path(sub.output_dir) / SEEDS_SUMMARY) or {"metrics": {}}
        medians = {key: stats["median"] for key, stats in summary["metrics"].items()}
        score = task.main_metric(medians) if medians else None
        rows.append({"point": name, "settings": settings, "folder": sub.output_dir, "median_metrics": medians,
                     "main_metric_median": score})
    scored = [row for row in rows if row["main_metric_median"] is not None]
    best = max(scored, key=lambda row: row["main_metric_median"]) if scored else None
    summary = {"chosen_on": "the dev set: the evaluation data of these runs, so its score is optimistic; "
                            "confirm the choice on held-out data",
               "main_metric": task.main_metric_name, "seeds": seeds, "best": best, "points": rows,
               "best_vs_runner_up": _against_runner_up(best, scored)}
    if run_is_main():
        write_json(root / GRID_SUMMARY, summary)
        print_grid(recipe.task, summary, root)
    if best is None:
        raise BertTasksError("no grid point finished with a score", file=root / GRID_SUMMARY)
    return summary



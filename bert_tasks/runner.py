"""The run template: what every training and evaluation command does, written once.

:func:`train` runs any registered task from a resolved recipe; the task supplies only its hooks
(:mod:`bert_tasks.protocol`)::

    checks done at resolve time (Recipe.validate, the task's settle)
    --dry-run                      -> print the plan, write nothing
    task.read_data                 every input read and checked before anything is written
    start_run                      claim the output folder, recipe.yaml, Accelerator, threads
    task.data_in_run               data that lives in the run folder (SQuAD's quickstart sample)
    tokenizer                      task.run_tokenizer, else the model's own
    task.train_features / evaluator / train_collate
    build_model                    seeded once: a checkpoint with a new head, or a fresh preset
    evaluate before training       when the data settings ask for it
    train.fit                      the one loop
    task.extra_outputs, finish_run saved HF folder, eval_results.json, train_results.json, model card
    one summary line

A recipe whose task is a family's own name (``task: glue`` with ``data.task: all``) stands for
several runs: :func:`train` runs each into ``OUTPUT/<name>`` and the family reports them together.
:func:`evaluate_folder` is the one "score a trained folder" path of every ``eval`` command.

A run folder this process created is removed again if the run stops before it holds results
(:func:`discard_unfinished_outputs`, called by the CLI on any error or Ctrl-C).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.util
import itertools
import json
import logging
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from accelerate.utils import set_seed
from rich.console import Console
from rich.table import Table

from .bundled import BUNDLED_NAMES, bundled_model_path
from .checkpoint import (POOLED_WEIGHTS, build_config, check_vocab_fits, load_pretrained, load_tokenizer, max_tokens,
                         read_config, resolve_model_dir, save_pretrained, weights_file)
from .config import EVAL_DIR, Recipe, with_settings
from .errors import BertTasksError
from .heads import HEADS
from .io import append_jsonl, atomic_write_text, output_folder, prepare_output_dir, write_json
from .model import BertConfig, pooling_text, set_unpadding, unwrap
from .modelcard import is_score, write_model_card
from .protocol import RunContext, Task
from .sharding import full_state_dict
from .tasks import FAMILIES, TaskFamily, family_of, get_task
from .threads import ThreadChoice
from .train import (FitResult, apply_num_threads, checkpoint_dirs, checkpoint_run_config, fit, format_metrics,
                    make_accelerator, resolve_precision, resolve_resume)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- output folders


@dataclass
class OutputFolder:
    """An output folder this process claimed, and what it held before."""

    path: Path
    #: True: this process made the folder; False: it was there (empty, or emptied by --overwrite-output-dir)
    created: bool
    #: a --resume-from run continues the folder's contents, which are never removed
    resumed: bool


#: output folders this process claimed, in order; a run that stops before it has anything to keep removes its own
OUTPUTS: list[OutputFolder] = []


def claim_output_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
    """:func:`io.prepare_output_dir`, remembering the folder so an unfinished run can be cleaned up."""
    path = Path(path)
    created = not path.exists()
    prepare_output_dir(path, overwrite=overwrite, resume=resume)
    OUTPUTS.append(OutputFolder(path, created=created, resumed=resume and not created))
    return path


def track_output_dir(path: Path) -> Path:
    """A results folder (``eval``'s): made if missing, and removed again if the command stops before it holds results."""
    created = not path.exists()
    output_folder(path)
    OUTPUTS.append(OutputFolder(path, created=created, resumed=not created))
    return path


def has_results(folder: Path) -> bool:
    """A saved model, a complete checkpoint or scores anywhere under ``folder``: worth keeping after a failure."""
    if not folder.is_dir():
        return False
    if any((folder / name).is_file() for name in ("model.safetensors", POOLED_WEIGHTS, "eval_results.json")) or any(
            folder.glob("checkpoints/step-*/trainer_state.json")):
        return True
    return any(has_results(child) for child in folder.iterdir() if child.is_dir() and child.name != "checkpoints")


def discard_unfinished_outputs() -> tuple[list[Path], list[Path]]:
    """After an error or Ctrl-C: remove what this process wrote into folders that hold no results yet.

    A folder with a saved model or a complete checkpoint is kept (a resumed folder always is), so
    ``--resume-from latest`` can continue it; anything else this process made is removed, so a bad
    input or an early Ctrl-C leaves nothing half-written and the same command can simply be run again.
    Returns (removed, kept) folders.
    """
    removed, kept = [], []
    while OUTPUTS:
        folder = OUTPUTS.pop()
        if folder.resumed or has_results(folder.path):
            kept.append(folder.path)
            continue
        if not folder.path.is_dir():
            continue
        if folder.created:
            shutil.rmtree(folder.path, ignore_errors=True)
        else:  # the user's own (empty) folder: leave it as it was
            for child in folder.path.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
        removed.append(folder.path)
    return removed, kept


#: the package each --report-to tracker needs
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def _input_paths(recipe: Recipe) -> list[Path]:
    """Local files and folders a run reads: its model, tokenizer and data."""
    names = [recipe.model.name_or_path, recipe.model.tokenizer]
    for key in ("data_dir", "train_file", "validation_file", "test_file", "tokenizer"):
        names.append(getattr(recipe.data, key, None))
    names += list(getattr(recipe.data, "train_files", None) or [])
    return [Path(n).expanduser().resolve() for n in names if isinstance(n, str) and n and Path(n).expanduser().exists()]


def check_output_spares_inputs(recipe: Recipe, output_dir: Path) -> None:
    """Refuse an output folder that is, or holds, the run's own model or data: --overwrite-output-dir would delete it."""
    out = output_dir.expanduser().resolve()
    for path in _input_paths(recipe):
        if path == out or out in path.parents:
            raise BertTasksError(f"the output folder holds this run's input {path}; writing there would overwrite it: "
                                 "choose another --output-dir", file=output_dir)


def check_resumable(recipe: Recipe, output_dir: Path, resume_from: str) -> Path:
    """The checkpoint to resume, refused before anything is loaded if another task's run wrote it."""
    checkpoint = resolve_resume(resume_from, output_dir)
    saved_task = (checkpoint_run_config(checkpoint) or {}).get("task")
    if saved_task is not None and saved_task != recipe.task:
        raise BertTasksError(f"this checkpoint was saved by a '{saved_task}' run; this run is '{recipe.task}'",
                             file=checkpoint)
    return checkpoint


# --------------------------------------------------------------------------- one run


@dataclass
class Run(RunContext):
    threads: ThreadChoice | None = None
    #: the precision ``auto`` chose, and why (None when the recipe named one)
    precision: str | None = None


def print_plan(recipe: Recipe, what: str) -> None:
    model = f"fresh '{recipe.model.preset}' preset" if recipe.model.preset else recipe.model.name_or_path
    target = f"write to {recipe.output_dir}" if recipe.output_dir else "need --output-dir (or output_dir in the recipe)"
    print(recipe.to_yaml(), end="")
    print(f"# would train {what} on model {model} (backend {recipe.model.backend}) and {target}")


def claim_run_folder(recipe: Recipe, *, overwrite: bool, resume: bool) -> Path:
    """The run's output folder, checked (set, not holding its inputs) and claimed, with its recipe.yaml (main process)."""
    output_dir = _root(recipe)
    check_output_spares_inputs(recipe, output_dir)
    if run_is_main():
        claim_output_dir(output_dir, overwrite=overwrite, resume=resume)
        atomic_write_text(output_dir / "recipe.yaml", recipe.to_yaml())
    return output_dir


def start_run(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None) -> Run:
    """Claim the output folder, write recipe.yaml, make the Accelerator and set the threads."""
    output_dir = _root(recipe)
    check_output_spares_inputs(recipe, output_dir)
    missing = [t for t in recipe.train.report_to if t in TRACKER_MODULES and importlib.util.find_spec(TRACKER_MODULES[t]) is None]
    if missing:
        raise BertTasksError(f"--report-to {missing[0]} needs the {TRACKER_MODULES[missing[0]]} package: "
                             f"pip install {TRACKER_MODULES[missing[0]]}")
    checkpoint = check_resumable(recipe, output_dir, resume_from) if resume_from is not None else None
    threads = apply_num_threads(recipe.train.num_threads)
    precision, why = resolve_precision(recipe.train.mixed_precision)
    announced = f"{precision} ({why})" if precision != recipe.train.mixed_precision else None
    recipe.train.mixed_precision = precision  # the run folder records what ran
    accelerator = make_accelerator(recipe.train, output_dir)
    claim_run_folder(recipe, overwrite=overwrite, resume=resume_from is not None)
    accelerator.wait_for_everyone()
    if recipe.train.report_to:
        accelerator.init_trackers(recipe.task, config=_flat(recipe.to_dict()))
    return Run(recipe=recipe, output_dir=output_dir, accelerator=accelerator, resume_from=checkpoint, threads=threads,
               precision=announced)


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            flat[prefix + key] = value
        else:
            flat[prefix + key] = str(value)
    return flat


@contextmanager
def _quiet_new_head(quiet: bool) -> Iterator[None]:
    """On resume the head's weights come from the checkpoint: "new weights initialised" is no news then."""
    checkpoint_log = logging.getLogger("bert_tasks.checkpoint")
    level = checkpoint_log.level
    if quiet:
        checkpoint_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        checkpoint_log.setLevel(level)


def build_model(recipe: Recipe, task: Task, tokenizer: Any, *, resuming: bool = False) -> torch.nn.Module:
    """The model a run trains, seeded once: a checkpoint with the task's head, or a fresh preset.

    A checkpoint whose vocabulary is smaller than the tokenizer's, or whose positions are fewer than
    the data's ``max_seq_length``, is refused here.
    """
    set_seed(recipe.train.seed)  # a new head (or a fresh preset) is the same for the same seed
    settings, cfg = recipe.model, recipe.data
    id2label = task.model_labels(cfg)
    if settings.preset:
        if settings.backend == "hf":
            raise BertTasksError("model.preset builds our own encoder; use backend scratch or a checkpoint")
        config = BertConfig.from_preset(settings.preset, vocab_size=len(tokenizer), id2label=id2label,
                                        position_embedding_type=settings.position_embedding_type,
                                        **(settings.pooling_settings() or {}))
        model = HEADS[task.head].model_class(config)
    else:
        with _quiet_new_head(resuming):
            model = load_pretrained(settings.name_or_path, task=task.head, num_labels=task.num_labels(cfg),
                                    backend=settings.backend, pooling=settings.pooling_settings())
        if id2label is not None:
            model.config.id2label = dict(id2label)
            model.config.label2id = {v: k for k, v in id2label.items()}
    check_vocab_fits(tokenizer, model.config, source=settings.name_or_path)
    check_positions(recipe, max_tokens(model.config), settings.name_or_path or "the model")
    set_config_entries(model, task.model_config(cfg))
    if recipe.train.unpad:
        set_unpadding(model)
    return model


def known_positions(recipe: Recipe) -> tuple[int | None, str]:
    """The model's position count when it is known without loading weights (a preset, a local or the bundled folder)."""
    if recipe.model.preset:
        return BertConfig().max_position_embeddings, f"the '{recipe.model.preset}' preset"
    name = str(recipe.model.name_or_path)
    folder = bundled_model_path(verify=False) if name.lower() in BUNDLED_NAMES else Path(name).expanduser()
    if not (folder / "config.json").is_file():
        return None, name  # a Hub id: checked once the model is loaded
    try:
        return build_config(read_config(folder), None).max_tokens, str(folder)
    except (BertTasksError, KeyError, TypeError, ValueError):
        return None, str(folder)  # loading reports a broken config with its own message


def check_positions(recipe: Recipe, positions: int | None, where: str) -> None:
    """Refuse data.max_seq_length beyond the model's position table (an IndexError mid-run otherwise)."""
    max_length = getattr(recipe.data, "max_seq_length", None)
    if positions is not None and max_length is not None and max_length > positions:
        raise BertTasksError(f"max_seq_length {max_length} is above the {positions} positions of {where}; "
                             f"lower --max-seq-length", record="key data.max_seq_length")


def set_config_entries(model: torch.nn.Module, entries: dict[str, Any]) -> None:
    """Entries config.json should keep: our BertConfig holds unknown HF keys in ``.extra``."""
    config = unwrap(model).config
    for key, value in entries.items():
        if hasattr(config, "extra") and key not in {f.name for f in dataclasses.fields(config)}:
            config.extra[key] = value
        else:
            setattr(config, key, value)


def train(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None, dry_run: bool = False,
          seeds: list[int] | None = None, grid: dict[str, list[Any]] | None = None) -> dict:
    """Fine-tune or pretrain as ``recipe`` says; returns the final metrics ({name: metrics} for several runs).

    ``seeds`` runs the recipe once per seed into ``OUTPUT/seed-N`` and summarises every metric over them;
    ``grid`` (recipe key -> values) runs every combination, each into its own folder (times every seed), and
    picks the best by the task's main dev metric.
    """
    switches = {"overwrite": overwrite, "resume_from": resume_from, "dry_run": dry_run}
    if grid:
        return _train_grid(recipe, grid, seeds, **switches)
    if seeds:
        return _train_seeds(recipe, seeds, **switches)
    return _train_recipe(recipe, **switches)


def _expands(recipe: Recipe) -> bool:
    """A recipe whose task is its family's own name stands for several runs (GLUE's ``task: all``)."""
    family = family_of(recipe.task)
    return recipe.task == family.name and family.expand is not None


def _train_recipe(recipe: Recipe, *, overwrite: bool, resume_from: str | None, dry_run: bool) -> dict:
    if not _expands(recipe):
        return train_one(get_task(recipe.task), recipe, overwrite=overwrite, resume_from=resume_from, dry_run=dry_run)
    family = family_of(recipe.task)
    root = _root(recipe)
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


def _root(recipe: Recipe) -> Path:
    if not recipe.output_dir:
        raise BertTasksError("no output folder: pass --output-dir or set output_dir in the recipe")
    return Path(recipe.output_dir)


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
                results[name] = _read_json(folder / "eval_results.json")
                print(f"already trained in {folder}", flush=True)
                continue
            if str(resume_from) == "latest" and not checkpoint_dirs(folder):
                sub_resume, sub_overwrite = None, True  # stopped before its first checkpoint: start it over
        trainings = TRAININGS_STARTED[0]
        try:
            results[name] = _train_recipe(sub, overwrite=sub_overwrite, resume_from=sub_resume, dry_run=False)
        except (BertTasksError, RuntimeError, ValueError, OSError) as exc:
            if not keep_going or TRAININGS_STARTED[0] == trainings:
                raise  # it failed before training began: bad input, which every other run would meet too
            failures[name] = exc.one_line() if isinstance(exc, BertTasksError) else f"{type(exc).__name__}: {exc}"
            print(f"{name} failed: {failures[name]}", file=sys.stderr, flush=True)
    return results, failures


# --------------------------------------------------------------------------- seeds and grids


def _with_seed(recipe: Recipe, seed: int, folder: Path) -> Recipe:
    sub = copy.deepcopy(recipe)
    sub.train.seed, sub.output_dir = seed, str(folder)
    return sub


def _train_seeds(recipe: Recipe, seeds: list[int], *, overwrite: bool, resume_from: str | None, dry_run: bool) -> dict:
    """One complete run per seed into ``OUTPUT/seed-N``, then ``seeds_summary.json`` and a table of every metric."""
    root = _root(recipe)
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


#: how many runs of this process have begun training (a failure before that is the input's, not the seed's)
TRAININGS_STARTED = [0]
SEEDS_SUMMARY = "seeds_summary.json"
GRID_SUMMARY = "grid_summary.json"


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


def run_is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"


def grid_points(recipe: Recipe, grid: dict[str, list[Any]]) -> dict[str, tuple[dict[str, Any], Recipe]]:
    """Every combination of the grid's values: name -> (its settings, the recipe with them, into OUTPUT/<name>)."""
    root = _root(recipe)
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


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _train_grid(recipe: Recipe, grid: dict[str, list[Any]], seeds: list[int] | None, *, overwrite: bool,
                resume_from: str | None, dry_run: bool) -> dict:
    """Every combination of the grid's values, each over the seeds into ``OUTPUT/<point>/seed-N``; the best point
    by the median of the task's main metric on the dev set, which the summary says plainly."""
    if _expands(recipe):
        raise BertTasksError("--grid picks settings for one task by its dev score; run it per task, not with task all")
    root = _root(recipe)
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
            summary = _read_json(Path(sub.output_dir) / SEEDS_SUMMARY) or {"metrics": {}}
        medians = {key: stats["median"] for key, stats in summary["metrics"].items()}
        score = task.main_metric(medians) if medians else None
        rows.append({"point": name, "settings": settings, "folder": sub.output_dir, "median_metrics": medians,
                     "main_metric_median": score})
    scored = [row for row in rows if row["main_metric_median"] is not None]
    best = max(scored, key=lambda row: row["main_metric_median"]) if scored else None
    summary = {"chosen_on": "the dev set: the evaluation data of these runs, so its score is optimistic; "
                            "confirm the choice on held-out data",
               "main_metric": task.main_metric_name, "seeds": seeds, "best": best, "points": rows}
    if run_is_main():
        write_json(root / GRID_SUMMARY, summary)
        print_grid(recipe.task, summary, root)
    if best is None:
        raise BertTasksError("no grid point finished with a score", file=root / GRID_SUMMARY)
    return summary


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


def train_one(task: Task, recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None,
              dry_run: bool = False) -> dict:
    """One run of the template (see the module docstring)."""
    if dry_run:
        print_plan(recipe, f"task '{recipe.task}'")
        return {}
    data = task.read_data(recipe)
    check_positions(recipe, *known_positions(recipe))  # still before anything is written or loaded
    run = start_run(recipe, overwrite=overwrite, resume_from=resume_from)
    data = task.data_in_run(data, run)
    tokenizer = task.run_tokenizer(recipe, data, run) or load_tokenizer(recipe.model.tokenizer or recipe.model.name_or_path)
    features = task.train_features(data, tokenizer, recipe, run)
    evaluator = task.evaluator(data, tokenizer, recipe.data, recipe.train.eval_batch_size)
    model = build_model(recipe, task, tokenizer, resuming=run.resume_from is not None)

    before = None
    if evaluator is not None and getattr(recipe.data, "eval_before_training", False) and run.resume_from is None:
        model.to(run.accelerator.device)
        before = evaluator(model, run.accelerator, None)
        if run.accelerator.is_main_process:
            append_jsonl(run.output_dir / "train_log.jsonl", {"eval": True, "step": 0, "before_training": True, **before})

    if run.accelerator.is_main_process:
        print(f"threads: {run.threads.line()}", file=sys.stderr, flush=True)
        if run.precision:
            print(f"precision: {run.precision}", file=sys.stderr, flush=True)
    TRAININGS_STARTED[0] += 1
    evaluate = None if evaluator is None else (lambda m, accelerator: evaluator(m, accelerator, run.output_dir))
    result = fit(model, task, features, recipe.train, run.output_dir, evaluate=evaluate, resume_from=run.resume_from,
                 accelerator=run.accelerator, collate=task.train_collate(features, recipe, run),
                 run_config=recipe.to_dict())
    metrics = {k: v for k, v in result.eval_history[-1].items() if k != "step"} if result.eval_history else None
    task.extra_outputs(model, tokenizer, data, recipe.data, run.output_dir, run.accelerator, recipe.train.eval_batch_size)
    finish_run(run, task, model, tokenizer, metrics, result)
    if metrics is None:
        print(f"no validation data: trained without evaluation; model in {run.output_dir}", flush=True)
        return {}
    if before is not None:
        print_summary("before fine-tuning", task.headline(before))
    print_summary(f"{'after fine-tuning' if before is not None else recipe.task} ({run.output_dir})",
                  {**(task.headline(metrics) if before is not None else metrics), "steps": result.global_step})
    return metrics


def finish_run(run: Run, task: Task, model: Any, tokenizer: Any, metrics: dict[str, Any] | None,
               fit_result: FitResult) -> None:
    """Save the HF model folder, eval_results.json, train_results.json and the model card (main process only)."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    weights = full_state_dict(accelerator, model)  # FSDP: every process sends its shards to the main one
    if accelerator.is_main_process:
        save_pretrained(unwrap(model), run.output_dir, tokenizer=tokenizer, state_dict=weights)
        if metrics is not None:
            write_json(run.output_dir / "eval_results.json", metrics)
        write_json(run.output_dir / "train_results.json", dataclasses.asdict(fit_result))
        write_model_card(run.output_dir, run.recipe, metrics or {}, head=HEADS[task.head], fit_result=fit_result,
                         pooling=pooling_text(unwrap(model).config), **task.card(run.recipe, metrics or {}))
    if run.recipe.train.report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        raise BertTasksError("unreadable results of a finished run", file=path) from None


# --------------------------------------------------------------------------- evaluating a trained folder


def evaluate_folder(task: Task, model_dir: str | os.PathLike, cfg: Any, *, output_dir: str | os.PathLike | None = None,
                    backend: str = "scratch", batch_size: int = 64) -> dict[str, Any]:
    """Score a fine-tuned folder with the task's evaluator (the one training uses) and write its files.

    Our encoder, or transformers with ``backend="hf"``; results go to ``output_dir`` (default: the folder).
    """
    folder = resolve_model_dir(str(model_dir))
    task.check_trained_folder(folder, cfg)
    data = task.read_eval_data(cfg)  # bad data fails before the model is loaded
    model = load_pretrained(folder, task=task.head, num_labels=task.num_labels(cfg), backend=backend, trained_head=True)
    if torch.cuda.is_available():
        model = model.to("cuda")
    tokenizer = load_tokenizer(folder)
    check_vocab_fits(tokenizer, model.config, source=folder)
    out = Path(output_dir) if output_dir else folder / EVAL_DIR
    track_output_dir(out)
    evaluator = task.evaluator(data, tokenizer, cfg, batch_size)
    metrics = evaluator(model, None, out) if evaluator is not None else {}
    if metrics:
        write_json(out / "eval_results.json", metrics)
        print_summary(f"{task.name} ({folder}, backend {backend})", metrics)
    task.extra_outputs(model, tokenizer, data, cfg, out, None, batch_size)
    return metrics


def print_summary(title: str, metrics: dict[str, Any]) -> None:
    if os.environ.get("RANK", "0") != "0":  # under a launcher, one summary line per run, not per process
        return
    print(f"{title}: {format_metrics(metrics)}", flush=True)


__all__ = ["FAMILIES", "evaluate_folder", "train", "train_one", "build_model", "start_run", "discard_unfinished_outputs"]

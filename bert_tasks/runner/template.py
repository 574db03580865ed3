"""The run template: what every training and evaluation command does, written once.

:func:`train_one` runs any registered task from a resolved recipe; the task supplies only its hooks
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
    training.fit                   the one loop
    task.extra_outputs, finish_run saved HF folder, eval_results.json, train_results.json, model card
    one summary line

:func:`evaluate_folder` is the one "score a trained folder" path of every ``eval`` command. Runs of runs
(seeds, grids, ``task: all``) are :mod:`bert_tasks.runner.sweeps`.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import logging
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate.utils import set_seed

from ..checkpoint.bundled import BUNDLED_NAMES, bundled_model_path
from ..checkpoint.files import read_folder
from ..checkpoint.load import build_config, load_pretrained
from ..checkpoint.locate import resolve_model_dir
from ..checkpoint.modelcard import write_model_card
from ..checkpoint.save import save_pretrained
from ..checkpoint.tokenizer import check_vocab_fits, load_tokenizer, max_tokens
from ..config import EVAL_DIR, Recipe
from ..errors import BertTasksError, from_ctrl_c
from ..io import append_jsonl, atomic_write_text, write_json
from ..metrics.direction import higher_is_better
from ..model.config import BertConfig
from ..model.encoder import set_unpadding
from ..model.fast import unwrap
from ..model.heads import get_head
from ..protocol import RunContext, Task
from ..tasks import family_of
from ..tasks.calibrate import calibrate as calibrate_folder, check_calibratable
from ..training.checkpoints import checkpoint_run_config, resolve_resume
from ..training.loop import FitResult, fit
from ..training.precision import (PRECISION_NAMES, apply_num_threads, computing_in, folder_precision,
                                  make_accelerator, resolve_precision)
from ..training.progress import format_metrics
from ..training.selection import Selection
from ..training.sharding import full_state_dict
from ..training.threads import ThreadChoice
from .outputs import current

log = logging.getLogger(__name__)


#: the package each --report-to tracker needs
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def _input_paths(recipe: Recipe) -> list[Path]:
    """Local files and folders a run reads: its model, tokenizer and data."""
    names = [recipe.model.name_or_path, recipe.model.tokenizer, *recipe.data.input_paths()]
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
    output_dir = root_of(recipe)
    check_output_spares_inputs(recipe, output_dir)
    if run_is_main():
        current().claim(output_dir, overwrite=overwrite, resume=resume)
        atomic_write_text(output_dir / "recipe.yaml", recipe.to_yaml())
    return output_dir


def start_run(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None) -> Run:
    """Claim the output folder, write recipe.yaml, make the Accelerator and set the threads."""
    output_dir = root_of(recipe)
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
    head, pooling = get_head(task.head), settings.pooling_spec()  # resolved once, passed down as objects
    id2label = task.model_labels(cfg)
    if settings.preset:
        if settings.backend == "hf":
            raise BertTasksError("model.preset builds our own encoder; use backend scratch or a checkpoint")
        config = BertConfig.from_preset(settings.preset, vocab_size=len(tokenizer), id2label=id2label,
                                        position_embedding_type=settings.position_embedding_type,
                                        **(pooling.fields() if pooling else {}))
        model = head.model_class(config)
    else:
        with _quiet_new_head(resuming):
            model = load_pretrained(settings.name_or_path, task=head, num_labels=task.num_labels(cfg),
                                    backend=settings.backend, pooling=pooling)
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
    """The model's position count when it is known without loading weights (a preset, a local or the bundled folder).

    A local folder's config.json is read and checked here, before anything else reads it (the tokenizer would,
    and a broken value would surface as transformers' own error)."""
    if recipe.model.preset:
        return BertConfig().max_position_embeddings, f"the '{recipe.model.preset}' preset"
    name = str(recipe.model.name_or_path)
    folder = bundled_model_path(verify=False) if name.lower() in BUNDLED_NAMES else Path(name).expanduser()
    if not (folder / "config.json").exists():
        return None, name  # a Hub id (or no folder at all): checked once the model is loaded
    found = read_folder(folder)
    if found.family is None:
        return None, str(folder)  # a type only transformers runs; loading says whether the backend can
    config = build_config(found.config, None, source=found.config_file, family=found.family)
    return config.max_tokens, str(folder)


def check_positions(recipe: Recipe, positions: int | None, where: str) -> None:
    """data.max_seq_length against the model's position table (an IndexError mid-run otherwise): the one rule
    (``DataSettings.fit_positions``): a value the user gave above it is refused, the default lowered, with a note."""
    try:
        note = recipe.data.fit_positions(positions, where)
        if note:
            recipe.data.validate()
    except BertTasksError as exc:
        raise BertTasksError(exc.reason, record=f"key data.{exc.record[4:]}" if exc.record else None) from None
    if note and run_is_main():
        print(note, file=sys.stderr, flush=True)


def set_config_entries(model: torch.nn.Module, entries: dict[str, Any]) -> None:
    """Entries config.json should keep: our BertConfig holds unknown HF keys in ``.extra``."""
    config = unwrap(model).config
    for key, value in entries.items():
        if hasattr(config, "extra") and key not in {f.name for f in dataclasses.fields(config)}:
            config.extra[key] = value
        else:
            setattr(config, key, value)


def train_one(task: Task, recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None,
              dry_run: bool = False, stop_rule: Any = None) -> dict:
    """One run of the template (see the module docstring). ``stop_rule(step, score)``: asked after each evaluation
    during training, True stops it (a search's pruner); the run then keeps its best state by the selection's
    metric (default the main one)."""
    if dry_run:
        print_plan(recipe, f"task '{recipe.task}'")
        return {}
    select = selection(task, recipe, always=stop_rule is not None)  # an unreported metric: refused before reading
    if select is not None:
        select.stop_rule = stop_rule
    data = task.read_data(recipe)
    check_positions(recipe, *known_positions(recipe))  # still before anything is written or loaded
    run = start_run(recipe, overwrite=overwrite, resume_from=resume_from)
    data = task.data_in_run(data, run)
    tokenizer = task.run_tokenizer(recipe, data, run) or load_tokenizer(recipe.model.tokenizer or recipe.model.name_or_path)
    features = task.train_features(data, tokenizer, recipe, run)
    evaluator = task.evaluator(data, tokenizer, recipe.data, recipe.train.eval_batch_size)
    if select is not None and evaluator is None:
        raise BertTasksError("--select-best and early stopping choose among evaluations, and this run has no "
                             "validation data to evaluate on: give it some, or drop them")
    model = build_model(recipe, task, tokenizer, resuming=run.resume_from is not None)

    before = None
    if evaluator is not None and recipe.data.eval_before_training and run.resume_from is None:
        model.to(run.accelerator.device)
        before = evaluator(model, run.accelerator, None)
        if run.accelerator.is_main_process:
            append_jsonl(run.output_dir / "train_log.jsonl", {"eval": True, "step": 0, "before_training": True, **before})

    if run.accelerator.is_main_process:
        print(f"threads: {run.threads.line()}", file=sys.stderr, flush=True)
        if run.precision:
            print(f"precision: {run.precision}", file=sys.stderr, flush=True)
    current().trainings_started += 1
    evaluate = None if evaluator is None else (lambda m, accelerator: evaluator(m, accelerator, run.output_dir))
    result = fit(model, task, features, recipe.train, run.output_dir, evaluate=evaluate, resume_from=run.resume_from,
                 accelerator=run.accelerator, collate=task.train_collate(features, recipe, run),
                 run_config=recipe.to_dict(), select=select)
    metrics = kept_metrics(result)
    if metrics is not None:
        metrics["precision"] = PRECISION_NAMES[recipe.train.mixed_precision]  # what the scores were computed in
    task.extra_outputs(model, tokenizer, data, recipe.data, run.output_dir, run.accelerator, recipe.train.eval_batch_size)
    finish_run(run, task, model, tokenizer, metrics, result)
    if metrics is None:
        print(f"no validation data: trained without evaluation; model in {run.output_dir}", flush=True)
        return {}
    if before is not None:
        print_summary("before fine-tuning", task.headline(before))
    shown = task.headline(metrics) if before is not None else {k: v for k, v in metrics.items() if not k.startswith("best_")}
    kept = {"kept": f"step {result.best['step']} ({result.best['metric']} {result.best['score']:.4g})"} if result.best else {}
    print_summary(f"{'after fine-tuning' if before is not None else recipe.task} ({run.output_dir})",
                  {**shown, "steps": result.global_step, **kept})
    return metrics


#: what may end one run of several once its training has begun (a diverging loss, memory, a file) and leave the
#: others to run; anything else (a bug, Ctrl-C) stops them all
RUN_FAILURES = (BertTasksError, RuntimeError, ValueError, OSError)


def run_failure(exc: BaseException, trainings_before: int) -> str | None:
    """Why one run of several (a seed, a search trial) failed, in one line, when the others should still run: it
    failed after its training began (``trainings_before``: :attr:`Ledger.trainings_started` when it was started).
    None when it failed before that: bad input, which every other run would meet too, so it stops them all."""
    if not isinstance(exc, RUN_FAILURES) or from_ctrl_c(exc) or current().trainings_started == trainings_before:
        return None
    return exc.one_line() if isinstance(exc, BertTasksError) else f"{type(exc).__name__}: {exc}"


def release_memory() -> None:
    """Between the runs of a sweep or a search: the last run's model, optimizer and Accelerator (held in reference
    cycles, and by a failed run's traceback) are collected, and CUDA's cache of their blocks handed back."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def selection(task: Task, recipe: Recipe, *, always: bool = False) -> Selection | None:
    """What ``train.select_best`` / ``train.early_stopping_patience`` ask of the loop: the metric ('main', or
    unset with a patience: the task's main metric, which is maximised), its direction and the patience."""
    train = recipe.train
    if train.select_best is None and train.early_stopping_patience is None and not always:
        return None
    name = (train.select_best or "main").strip()
    if name == "main":
        if task.main_metric_name is None:
            raise BertTasksError(f"task {task.name} has no main metric: name one with --select-best",
                                 record="key train.select_best")
        return Selection(task.main_metric_name, task.main_metric, True, train.early_stopping_patience,
                         train.early_stopping_threshold)

    def score(metrics: dict[str, Any]) -> float | None:
        value = metrics.get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    known = task.metric_names(recipe.data)
    if known is not None and name not in known:
        raise BertTasksError(f"--select-best {name}: task {task.name} does not report this metric; it reports "
                             f"{', '.join(known)} (or 'main': {task.main_metric_name})", record="key train.select_best")
    return Selection(name, score, higher_is_better(name), train.early_stopping_patience, train.early_stopping_threshold)


def kept_metrics(result: FitResult) -> dict[str, Any] | None:
    """The metrics of the saved state: the best evaluation's, with its step and score, or else the last one's."""
    if result.best is not None:
        best = result.best
        return {**best["metrics"], "best_step": best["step"], "best_metric": best["score"],
                "best_metric_name": best["metric"]}
    return {k: v for k, v in result.eval_history[-1].items() if k != "step"} if result.eval_history else None


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
        write_model_card(run.output_dir, run.recipe, metrics or {}, head=get_head(task.head), fit_result=fit_result,
                         pooling=_pooling_text(unwrap(model).config), **task.card(run.recipe, metrics or {}))
    if run.recipe.train.report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()


def read_results(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        raise BertTasksError("unreadable results of a finished run", file=path) from None


def run_is_main() -> bool:
    return os.environ.get("RANK", "0") == "0"


def root_of(recipe: Recipe) -> Path:
    if not recipe.output_dir:
        raise BertTasksError("no output folder: pass --output-dir or set output_dir in the recipe")
    return Path(recipe.output_dir)


def evaluate_folder(task: Task, model_dir: str | os.PathLike, cfg: Any, *, output_dir: str | os.PathLike | None = None,
                    backend: str = "scratch", batch_size: int = 64, precision: str | None = None,
                    calibrate: bool = False) -> dict[str, Any]:
    """Score a fine-tuned folder with the task's evaluator (the one training uses) and write its files.

    Our encoder, or transformers with ``backend="hf"``; results go to ``output_dir`` (default: the folder).
    ``precision`` (``mixed_precision``'s choices): default what the folder was trained in; the results say which.
    ``calibrate``: a single-label sentence classifier's temperature fitted on these dev logits (:mod:`..tasks.calibrate`).
    """
    precision = folder_precision(resolve_model_dir(str(model_dir)), precision)
    folder = resolve_model_dir(str(model_dir))
    task.check_trained_folder(folder, cfg)
    if calibrate:  # the folder told the task its problem type
        check_calibratable(getattr(task, "problem_type", None), f"this {task.name} model", file=folder)
    data = task.read_eval_data(cfg)  # bad data fails before the model is loaded
    model = load_pretrained(folder, task=task.head, num_labels=task.num_labels(cfg), backend=backend, trained_head=True)
    if torch.cuda.is_available():
        model = model.to("cuda")
    tokenizer = load_tokenizer(folder)
    check_vocab_fits(tokenizer, model.config, source=folder)
    note = cfg.fit_positions(max_tokens(model.config), folder)  # the rule training follows, before any feature
    if note:
        cfg.validate()
        print(note, file=sys.stderr, flush=True)
    out = Path(output_dir) if output_dir else folder / EVAL_DIR
    current().track(out)
    evaluator = task.evaluator(data, tokenizer, cfg, batch_size)
    with computing_in(precision, next(model.parameters()).device) as name:
        metrics = evaluator(model, None, out) if evaluator is not None else {}
    if metrics:
        metrics["precision"] = name
        write_json(out / "eval_results.json", metrics)
        print_summary(f"{task.name} ({folder}, backend {backend})", metrics)
    with computing_in(precision, next(model.parameters()).device):
        task.extra_outputs(model, tokenizer, data, cfg, out, None, batch_size)
    if calibrate:
        metrics = calibrate_folder(task, folder, out, metrics, family_of(task.name).name)
    return metrics


def _pooling_text(config: Any) -> str | None:
    """A classifier's pooling in words for the model card; None for BERT's own, or a config without ours."""
    return config.pooling_spec.text() if isinstance(config, BertConfig) else None


def print_summary(title: str, metrics: dict[str, Any]) -> None:
    if os.environ.get("RANK", "0") != "0":  # under a launcher, one summary line per run, not per process
        return
    print(f"{title}: {format_metrics(metrics)}", flush=True)

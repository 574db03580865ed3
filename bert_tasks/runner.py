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

import dataclasses
import importlib.util
import json
import logging
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from accelerate.utils import set_seed

from .bundled import BUNDLED_NAMES, bundled_model_path
from .checkpoint import (check_vocab_fits, load_pretrained, load_tokenizer, read_config, resolve_model_dir,
                         save_pretrained)
from .config import Recipe
from .errors import BertTasksError
from .heads import HEADS
from .io import append_jsonl, atomic_write_text, prepare_output_dir, write_json
from .model import BertConfig, set_unpadding, unwrap
from .modelcard import write_model_card
from .protocol import RunContext, Task
from .tasks import FAMILIES, TaskFamily, family_of, get_task
from .threads import ThreadChoice
from .train import (FitResult, apply_num_threads, checkpoint_dirs, checkpoint_run_config, fit, format_metrics,
                    make_accelerator, resolve_resume)

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


def has_results(folder: Path) -> bool:
    """A saved model or a complete checkpoint anywhere under ``folder``: worth keeping after a failure."""
    if not folder.is_dir():
        return False
    if (folder / "model.safetensors").is_file() or any(folder.glob("checkpoints/step-*/trainer_state.json")):
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


def describe(recipe: Recipe) -> str:
    """The resolved configuration as YAML, for --dry-run and the run folder."""
    return recipe.to_yaml()


def print_plan(recipe: Recipe, what: str) -> None:
    model = f"fresh '{recipe.model.preset}' preset" if recipe.model.preset else recipe.model.name_or_path
    target = f"write to {recipe.output_dir}" if recipe.output_dir else "need --output-dir (or output_dir in the recipe)"
    print(describe(recipe), end="")
    print(f"# would train {what} on model {model} (backend {recipe.model.backend}) and {target}")


def start_run(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None) -> Run:
    """Claim the output folder, write recipe.yaml, make the Accelerator and set the threads."""
    if not recipe.output_dir:
        raise BertTasksError("no output folder: pass --output-dir or set output_dir in the recipe")
    output_dir = Path(recipe.output_dir)
    check_output_spares_inputs(recipe, output_dir)
    missing = [t for t in recipe.train.report_to if t in TRACKER_MODULES and importlib.util.find_spec(TRACKER_MODULES[t]) is None]
    if missing:
        raise BertTasksError(f"--report-to {missing[0]} needs the {TRACKER_MODULES[missing[0]]} package: "
                             f"pip install {TRACKER_MODULES[missing[0]]}")
    checkpoint = check_resumable(recipe, output_dir, resume_from) if resume_from is not None else None
    threads = apply_num_threads(recipe.train.num_threads)
    accelerator = make_accelerator(recipe.train, output_dir)
    if accelerator.is_main_process:
        claim_output_dir(output_dir, overwrite=overwrite, resume=resume_from is not None)
        atomic_write_text(output_dir / "recipe.yaml", describe(recipe))
    accelerator.wait_for_everyone()
    if recipe.train.report_to:
        accelerator.init_trackers(recipe.task, config=_flat(recipe.to_dict()))
    return Run(recipe=recipe, output_dir=output_dir, accelerator=accelerator, resume_from=checkpoint, threads=threads)


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
                                        position_embedding_type=settings.position_embedding_type)
        model = HEADS[task.head].model_class(config)
    else:
        with _quiet_new_head(resuming):
            model = load_pretrained(settings.name_or_path, task=task.head, num_labels=task.num_labels(cfg),
                                    backend=settings.backend)
        if id2label is not None:
            model.config.id2label = dict(id2label)
            model.config.label2id = {v: k for k, v in id2label.items()}
    check_vocab_fits(tokenizer, model.config, source=settings.name_or_path)
    check_positions(recipe, model.config.max_position_embeddings, settings.name_or_path or "the model")
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
        return int(read_config(folder)["max_position_embeddings"]), str(folder)
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


def train(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None, dry_run: bool = False) -> dict:
    """Fine-tune or pretrain as ``recipe`` says; returns the final metrics ({name: metrics} for several runs)."""
    family = family_of(recipe.task)
    if recipe.task == family.name and family.expand is not None:
        return _train_each(family, recipe, overwrite=overwrite, resume_from=resume_from, dry_run=dry_run)
    return train_one(get_task(recipe.task), recipe, overwrite=overwrite, resume_from=resume_from, dry_run=dry_run)


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
                  task.headline(metrics) if before is not None else metrics)
    return metrics


def finish_run(run: Run, task: Task, model: Any, tokenizer: Any, metrics: dict[str, Any] | None,
               fit_result: FitResult) -> None:
    """Save the HF model folder, eval_results.json, train_results.json and the model card (main process only)."""
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_pretrained(unwrap(model), run.output_dir, tokenizer=tokenizer)
        if metrics is not None:
            write_json(run.output_dir / "eval_results.json", metrics)
        write_json(run.output_dir / "train_results.json", dataclasses.asdict(fit_result))
        write_model_card(run.output_dir, run.recipe, metrics or {}, head=HEADS[task.head], fit_result=fit_result,
                         **task.card(run.recipe, metrics or {}))
    if run.recipe.train.report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()


def _train_each(family: TaskFamily, recipe: Recipe, *, overwrite: bool, resume_from: str | None, dry_run: bool) -> dict:
    """A recipe that stands for several runs: each into ``OUTPUT/<name>``, then the family's report."""
    if not recipe.output_dir:
        raise BertTasksError("no output folder: pass --output-dir or set output_dir in the recipe")
    root = Path(recipe.output_dir)
    if dry_run:
        try:  # a plan, not a run: data that is not there yet is worth showing, not an error
            found = ", ".join(family.expand(recipe))
        except BertTasksError as exc:
            found = f"each task found (now: {exc.reason})"
        print_plan(recipe, f"{found} into {root}/<task>")
        return {}
    runs = family.expand(recipe)
    claim_output_dir(root, overwrite=overwrite, resume=resume_from is not None)
    atomic_write_text(root / "recipe.yaml", describe(recipe))
    results: dict[str, Any] = {}
    for name, sub in runs.items():
        print(f"== {name}", flush=True)
        folder = Path(sub.output_dir)
        if resume_from is not None and (folder / "train_results.json").is_file() and (folder / "model.safetensors").is_file():
            results[name] = _read_json(folder / "eval_results.json")  # resuming the whole run: finished ones stay
            print(f"already trained in {folder}", flush=True)
            continue
        started = resume_from is not None and (str(resume_from) != "latest" or checkpoint_dirs(folder))
        results[name] = train_one(get_task(sub.task), sub, resume_from=resume_from if started else None)
    if family.report is not None:
        family.report(results, root)
    return results


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
    check = getattr(task, "check_trained_folder", None)
    if callable(check):
        check(folder, cfg)
    data = task.read_eval_data(cfg)  # bad data fails before the model is loaded
    model = load_pretrained(folder, task=task.head, num_labels=task.num_labels(cfg), backend=backend, trained_head=True)
    if torch.cuda.is_available():
        model = model.to("cuda")
    tokenizer = load_tokenizer(folder)
    check_vocab_fits(tokenizer, model.config, source=folder)
    out = Path(output_dir) if output_dir else folder
    out.mkdir(parents=True, exist_ok=True)
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

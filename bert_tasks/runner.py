"""What every training command does around the task: output folder, model, tokenizer, saving.

A task's ``run`` module calls these in order:

    run = start_run(recipe, overwrite=..., resume_from=..., dry_run=...)   # None on --dry-run
    model = build_model(recipe, task, num_labels)
    ... preprocess, fit, evaluate (task-specific) ...
    finish_run(run, model, tokenizer, metrics, fit_result)

so output protection, the resolved config, the saved HF folder and the model
card look the same for every task.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Recipe
from .errors import BertTasksError
from .io import atomic_write_text, prepare_output_dir, write_json
from .modelcard import write_model_card

log = logging.getLogger(__name__)


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


@dataclass
class RunDir:
    recipe: Recipe
    output_dir: Path
    resume_from: str | None
    accelerator: Any
    threads: Any = None


def describe(recipe: Recipe) -> str:
    """The resolved configuration as YAML, for --dry-run and the run folder."""
    return recipe.to_yaml()


def start_run(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None, dry_run: bool = False,
              default_output: str | None = None) -> RunDir | None:
    """Validate the run before any heavy work; on --dry-run print the plan and return None."""
    from .train import apply_num_threads, make_accelerator

    output = recipe.output_dir or default_output
    if dry_run:
        model = recipe.model.preset and f"fresh '{recipe.model.preset}' preset" or recipe.model.name_or_path
        print(describe(recipe), end="")
        target = f"write to {output}" if output else "need --output-dir (or output_dir in the recipe) to run"
        print(f"# would train task '{recipe.task}' on model {model} (backend {recipe.model.backend}) and {target}")
        return None
    if not output:
        raise BertTasksError("no output folder: pass --output-dir or set output_dir in the recipe")
    recipe.output_dir = str(output)
    check_output_spares_inputs(recipe, Path(output))
    missing = [t for t in recipe.train.report_to if t in TRACKER_MODULES and importlib.util.find_spec(TRACKER_MODULES[t]) is None]
    if missing:
        raise BertTasksError(f"--report-to {missing[0]} needs the {TRACKER_MODULES[missing[0]]} package: "
                             f"pip install {TRACKER_MODULES[missing[0]]}")
    if resume_from is not None:
        check_resumable(recipe, Path(output), resume_from)
    threads = apply_num_threads(recipe.train.num_threads)
    accelerator = make_accelerator(recipe.train, Path(output))
    output_dir = Path(output)
    if accelerator.is_main_process:
        claim_output_dir(output_dir, overwrite=overwrite, resume=resume_from is not None)
        atomic_write_text(output_dir / "recipe.yaml", describe(recipe))
    accelerator.wait_for_everyone()
    if recipe.train.report_to:
        accelerator.init_trackers(recipe.task, config=_flat(recipe.to_dict()))
    return RunDir(recipe=recipe, output_dir=output_dir, resume_from=resume_from, accelerator=accelerator, threads=threads)


def announce_training(run: RunDir) -> None:
    """The start-up line of the training phase: how many threads, and why (see threads.py)."""
    if run.accelerator.is_main_process:
        print(f"threads: {run.threads.line()}", file=sys.stderr, flush=True)


#: the package each --report-to tracker needs
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def _input_paths(recipe: Recipe) -> list[Path]:
    """Local files and folders a run reads: its model, tokenizer and data."""
    names = [recipe.model.name_or_path, recipe.model.tokenizer]
    data = recipe.data
    for key in ("data_dir", "train_file", "validation_file", "test_file", "tokenizer"):
        names.append(getattr(data, key, None))
    names += list(getattr(data, "train_files", None) or [])
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
    from .train import checkpoint_run_config, resolve_resume

    checkpoint = resolve_resume(resume_from, output_dir)
    saved = checkpoint_run_config(checkpoint) or {}
    saved_task = saved.get("task")
    if saved_task is not None and saved_task != recipe.task:
        raise BertTasksError(f"this checkpoint was saved by a '{saved_task}' run; this run is '{recipe.task}'",
                             file=checkpoint)
    return checkpoint


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


def build_model(recipe: Recipe, head: str | None, num_labels: int | None = None, *, vocab_size: int | None = None,
                id2label: dict[int, str] | None = None, tokenizer: Any = None, resuming: bool = False):
    """Load the recipe's checkpoint, or build a fresh preset (masked-LM pretraining from scratch).

    With ``tokenizer``, a checkpoint whose vocabulary is smaller than the tokenizer's is refused here.
    ``resuming``: the weights will come from a training checkpoint, so a fresh head is not worth a word.
    """
    from .checkpoint import check_vocab_fits, load_pretrained
    from .model import MODEL_FOR_TASK, BertConfig, set_unpadding

    from accelerate.utils import set_seed

    set_seed(recipe.train.seed)  # a freshly initialised head (or preset) must be the same for the same seed
    settings = recipe.model
    if settings.preset:
        if settings.backend == "hf":
            raise BertTasksError("model.preset builds our own encoder; use backend scratch or a checkpoint")
        try:
            config = BertConfig.from_preset(
                settings.preset, vocab_size=vocab_size or 30522,
                position_embedding_type=settings.position_embedding_type, id2label=id2label,
            )
        except ValueError as exc:
            raise BertTasksError(str(exc)) from None
        model = MODEL_FOR_TASK[head](config)
    else:
        checkpoint_log = logging.getLogger("bert_tasks.checkpoint")
        level = checkpoint_log.level
        if resuming:
            checkpoint_log.setLevel(logging.ERROR)
        try:
            model = load_pretrained(settings.name_or_path, task=head, num_labels=num_labels, backend=settings.backend)
        finally:
            checkpoint_log.setLevel(level)
        if id2label is not None:
            model.config.id2label = dict(id2label)
            model.config.label2id = {v: k for k, v in id2label.items()}
    if tokenizer is not None:
        check_vocab_fits(tokenizer, model.config, source=settings.name_or_path)
    max_length = getattr(recipe.data, "max_seq_length", None)
    positions = model.config.max_position_embeddings
    if max_length is not None and max_length > positions:
        raise BertTasksError(f"data.max_seq_length {max_length} is longer than the model's {positions} positions; "
                             f"lower --max-seq-length", file=settings.name_or_path)
    if recipe.train.unpad:
        set_unpadding(model)
    return model


def load_run_tokenizer(recipe: Recipe):
    from .checkpoint import load_tokenizer

    return load_tokenizer(recipe.model.tokenizer or recipe.model.name_or_path)


def finish_run(run: RunDir, model: Any, tokenizer: Any, metrics: dict[str, Any] | None, fit_result: Any = None,
               *, card: dict[str, Any] | None = None) -> None:
    """Save the HF model folder, eval_results.json and the model card (main process only)."""
    from .checkpoint import save_pretrained

    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        model = accelerator.unwrap_model(model)
        save_pretrained(model, run.output_dir, tokenizer=tokenizer)
        if metrics is not None:
            write_json(run.output_dir / "eval_results.json", metrics)
        if fit_result is not None:
            from dataclasses import asdict

            write_json(run.output_dir / "train_results.json", asdict(fit_result))
        write_model_card(run.output_dir, run.recipe, metrics or {}, fit_result=fit_result, **(card or {}))
    if run.recipe.train.report_to:
        accelerator.end_training()
    accelerator.wait_for_everyone()


def print_summary(title: str, metrics: dict[str, Any]) -> None:
    if os.environ.get("RANK", "0") != "0":  # under a launcher, one summary line per run, not per process
        return
    shown = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                      if isinstance(v, (int, float)))
    print(f"{title}: {shown}", flush=True)

"""Options shared by the training commands, declared once.

:func:`training_command` appends them to a command's signature (typer reads
options from signatures) and hands them to the command as one ``options`` dict;
:func:`train_flags` maps the ones the user gave onto recipe keys.
"""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Any, Callable, Optional

import typer

Recipe = Annotated[Optional[str], typer.Option("--recipe", "-r", help="Recipe name (see `bert-tasks recipes list`) or YAML path.")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe key, e.g. --set train.learning_rate=5e-5 (repeatable).")]
Model = Annotated[Optional[str], typer.Option("--model", "-m", help="HF model folder, hub id, or 'minilm' (bundled).")]
Backend = Annotated[Optional[str], typer.Option("--backend", help="scratch (our encoder) or hf (plain transformers).")]
OutputDir = Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where the run writes its model and results.")]
Overwrite = Annotated[bool, typer.Option("--overwrite-output-dir", help="Replace a non-empty output folder.")]
ResumeFrom = Annotated[Optional[str], typer.Option("--resume-from", help="A checkpoint folder, or 'latest' in the output folder.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and what would run, then exit.")]
Epochs = Annotated[Optional[float], typer.Option("--epochs", help="Training epochs.")]
MaxSteps = Annotated[Optional[int], typer.Option("--max-steps", help="Optimizer steps; overrides --epochs.")]
LearningRate = Annotated[Optional[float], typer.Option("--learning-rate", "--lr", help="Peak learning rate.")]
BatchSize = Annotated[Optional[int], typer.Option("--batch-size", help="Per-device training batch size.")]
EvalBatchSize = Annotated[Optional[int], typer.Option("--eval-batch-size", help="Per-device evaluation batch size.")]
GradAccum = Annotated[Optional[int], typer.Option("--gradient-accumulation-steps", help="Micro-batches per optimizer step.")]
Precision = Annotated[Optional[str], typer.Option("--mixed-precision", help="no, bf16 or fp16.")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Random seed.")]
SaveSteps = Annotated[Optional[int], typer.Option("--save-steps", help="Write a resumable checkpoint every N steps.")]
EvalSteps = Annotated[Optional[int], typer.Option("--eval-steps", help="Evaluate every N steps.")]
LoggingSteps = Annotated[Optional[int], typer.Option("--logging-steps", help="Log every N steps.")]
Budget = Annotated[Optional[float], typer.Option("--budget-minutes", help="Stop cleanly after this much wall time.")]
SkipNonfinite = Annotated[Optional[bool], typer.Option("--skip-nonfinite/--stop-on-nonfinite", help="Skip NaN/inf steps instead of stopping.")]
Compile = Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the encoder layers (falls back to eager if compiling fails).")]
Unpad = Annotated[Optional[bool], typer.Option("--unpad/--no-unpad", help="Run the encoder on real tokens only, skipping padding (scratch backend).")]
ReportTo = Annotated[Optional[list[str]], typer.Option("--report-to", help="tensorboard and/or wandb (via Accelerate trackers).")]

#: recipe key for each shared flag
TRAIN_KEYS = {
    "model": "model.name_or_path",
    "backend": "model.backend",
    "output_dir": "output_dir",
    "epochs": "train.epochs",
    "max_steps": "train.max_steps",
    "learning_rate": "train.learning_rate",
    "batch_size": "train.batch_size",
    "eval_batch_size": "train.eval_batch_size",
    "gradient_accumulation_steps": "train.gradient_accumulation_steps",
    "mixed_precision": "train.mixed_precision",
    "seed": "train.seed",
    "save_steps": "train.save_steps",
    "eval_steps": "train.eval_steps",
    "logging_steps": "train.logging_steps",
    "budget_minutes": "train.budget_minutes",
    "skip_nonfinite": "train.skip_nonfinite",
    "report_to": "train.report_to",
    "compile": "train.compile",
    "unpad": "train.unpad",
}


def train_flags(values: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Recipe keys for the flags the user gave; ``extra`` maps task-specific flag names."""
    mapping = {**TRAIN_KEYS, **(extra or {})}
    return {mapping[name]: value for name, value in values.items() if name in mapping and value is not None}


#: (parameter, annotation, default) of every shared option, in --help order
TRAINING_OPTIONS = (
    ("recipe", Recipe, None), ("sets", Sets, None), ("model", Model, None), ("backend", Backend, None),
    ("output_dir", OutputDir, None), ("overwrite_output_dir", Overwrite, False), ("resume_from", ResumeFrom, None),
    ("dry_run", DryRun, False), ("epochs", Epochs, None), ("max_steps", MaxSteps, None),
    ("learning_rate", LearningRate, None), ("batch_size", BatchSize, None), ("eval_batch_size", EvalBatchSize, None),
    ("gradient_accumulation_steps", GradAccum, None), ("mixed_precision", Precision, None), ("seed", Seed, None),
    ("save_steps", SaveSteps, None), ("eval_steps", EvalSteps, None), ("logging_steps", LoggingSteps, None),
    ("budget_minutes", Budget, None), ("skip_nonfinite", SkipNonfinite, None), ("report_to", ReportTo, None),
    ("compile", Compile, None), ("unpad", Unpad, None),
)


def training_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command every shared training option; they reach it as ``options`` (name -> value)."""
    own = inspect.signature(func, eval_str=True)
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for name, annotation, default in TRAINING_OPTIONS]

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        options = {name: kwargs.pop(name) for name, _, _ in TRAINING_OPTIONS}
        return func(**kwargs, options=options)

    command.__signature__ = own.replace(
        parameters=[p for p in own.parameters.values() if p.name != "options"] + shared)
    return command


def run_switches(options: dict[str, Any]) -> dict[str, Any]:
    """The options a task's run function takes as keywords rather than recipe keys."""
    return {"overwrite": options["overwrite_output_dir"], "resume_from": options["resume_from"],
            "dry_run": options["dry_run"]}


def source_resets(given: dict[str, Any], sources: dict[str, tuple[str, ...]], *, also: tuple[str, ...] = ()) -> list[str]:
    """``--set`` items that null the recipe's other data sources once the command line names one.

    ``sources`` maps a kind of source to its ``data.`` keys; a source given as a flag replaces the
    recipe's rather than clashing with it. ``also`` are further items for that case.
    """
    named = {kind for kind, keys in sources.items() if any(given.get(key) is not None for key in keys)}
    if not named:
        return []
    return [f"data.{key}=null" for kind, keys in sources.items() if kind not in named for key in keys] + list(also)

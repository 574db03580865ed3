"""Options shared by the training commands, declared once.

Each training command lists these in its signature and passes them to
:func:`train_flags`, which maps the ones the user gave onto recipe keys.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

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
}


def train_flags(values: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Recipe keys for the flags the user gave; ``extra`` maps task-specific flag names."""
    mapping = {**TRAIN_KEYS, **(extra or {})}
    return {mapping[name]: value for name, value in values.items() if name in mapping and value is not None}

"""GLUE results for people and for the leaderboard: the GLUE score, a table, submission files.

``results_by_task`` maps a task name to its metrics as fractions (0-1), e.g.
``{"mrpc": {"f1": 0.88, "accuracy": 0.84}, "mnli": {"accuracy_m": 0.84, "accuracy_mm": 0.85}}``;
:func:`task_results` builds the MNLI entry from its two dev sets.

GLUE score: the mean over tasks of each task's score, where a task with two
metrics (MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman) scores the
mean of the two. The leaderboard shows MNLI-m and MNLI-mm as two columns; we
count MNLI once, as the mean of its matched and mismatched accuracy, so that it
weighs as one task like the other eight. AX is diagnostic only and never
counted. With fewer than nine tasks the score is the mean of those given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from rich.table import Table

from ...io import atomic_write_text
from .spec import EVAL_SPLIT_SUFFIX, TASK_NAMES, get_spec

METRIC_LABELS = {
    "matthews_correlation": "MCC",
    "accuracy": "Acc",
    "accuracy_m": "Acc-m",
    "accuracy_mm": "Acc-mm",
    "f1": "F1",
    "pearson": "Pearson",
    "spearmanr": "Spearman",
}


def task_results(results_by_split: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Merge per-eval-split metrics into one task entry; MNLI's dev sets get ``_m``/``_mm`` suffixes."""
    merged: dict[str, float] = {}
    for split, metrics in results_by_split.items():
        suffix = EVAL_SPLIT_SUFFIX.get(split, "")
        merged.update({f"{name}{suffix}": float(value) for name, value in metrics.items()})
    return merged


def task_score(task: str, metrics: Mapping[str, float]) -> float:
    keys = get_spec(task).score_keys
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise KeyError(f"{task} results lack {', '.join(missing)} (have {', '.join(metrics) or 'nothing'})")
    return float(np.mean([metrics[k] for k in keys]))


def glue_score(results_by_task: Mapping[str, Mapping[str, float]]) -> float:
    """GLUE average of the tasks given, as a fraction (see the module docstring for the rules)."""
    scores = [task_score(task, metrics) for task, metrics in results_by_task.items() if task != "ax"]
    if not scores:
        raise ValueError("no GLUE task results to average")
    return float(np.mean(scores))


def render_glue_table(results_by_task: Mapping[str, Mapping[str, float]]):
    """A rich table: one row per task with its metrics x100 (1 decimal), then the average of the tasks given."""
    scored = [t for t in results_by_task if t != "ax"]
    table = Table(title="GLUE" if len(scored) == len(TASK_NAMES) else f"GLUE: {len(scored)} of {len(TASK_NAMES)} tasks")
    for column, justify in (("Task", "left"), ("Metric", "left"), ("Value", "right"), ("Score", "right")):
        table.add_column(column, justify=justify)
    for task, metrics in results_by_task.items():
        if task == "ax":
            continue
        keys = get_spec(task).score_keys
        table.add_row(
            get_spec(task).folder,
            "/".join(METRIC_LABELS.get(k, k) for k in keys),
            "/".join(f"{100 * metrics[k]:.1f}" for k in keys),
            f"{100 * task_score(task, metrics):.1f}",
        )
    if results_by_task:
        table.add_section()
        table.add_row("Average", "", "", f"{100 * glue_score(results_by_task):.1f}")
    return table


def submission_name(task: str, split: str | None = None) -> str:
    """The fixed file name GLUE expects for ``task``'s test ``split`` (default: its first test set)."""
    files = get_spec(task).test_files
    if split in (None, "test"):
        return files[0].submission
    for test in files:
        if test.split == split:
            return test.submission
    raise ValueError(f"task {task} has no test split {split!r}; expected one of {', '.join(t.split for t in files)}")


def write_submission(task: str, predictions: Sequence, idx: Sequence[int], out_dir: str | Path, *, split: str | None = None) -> Path:
    """Write ``index<TAB>prediction`` with GLUE's label names; returns the file's path.

    ``predictions`` are class ids (or STS-B scores, clipped to [0, 5]). MNLI's
    ``split`` picks MNLI-m (``test_matched``), MNLI-mm (``test_mismatched``) or AX (``ax``).
    """
    spec = get_spec(task)
    predictions = np.asarray(predictions)
    if spec.is_regression and predictions.ndim == 2 and predictions.shape[1] == 1:
        predictions = predictions[:, 0]
    if predictions.ndim != 1 or len(predictions) != len(idx):
        raise ValueError(f"need one prediction per index: {list(predictions.shape)} predictions for {len(idx)} indices")
    if spec.is_regression:
        values = [f"{v:.3f}" for v in np.clip(predictions.astype(np.float64), *spec.score_range)]
    else:
        if len(predictions) and (not np.issubdtype(predictions.dtype, np.integer) or predictions.min() < 0 or predictions.max() >= spec.num_labels):
            raise ValueError(f"{task} predictions must be class ids 0..{spec.num_labels - 1}")
        values = [spec.labels[int(v)] for v in predictions]
    lines = ["index\tprediction", *(f"{int(i)}\t{v}" for i, v in zip(idx, values))]
    path = Path(out_dir) / submission_name(task, split)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path

"""Plots of a finished (or crashed) run folder: training curves, evaluation metrics, confusion matrices.

:func:`plot_run` reads ``train_log.jsonl`` (and, for GLUE classification runs,
``eval_predictions.jsonl``, one matrix per dev split, and a reliability diagram from its probabilities) and writes PNGs. The ``*_figure`` builders return
:class:`matplotlib.figure.Figure` objects and never touch pyplot, so nothing
here depends on a display or on matplotlib's global state.
"""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import BertTasksError
from ..io import atomic_write_bytes, output_folder
from ..metrics.calibration import ECE_BINS, calibration_bins

TRAIN_LOG = "train_log.jsonl"
PREDICTIONS = "eval_predictions.jsonl"
#: Numeric eval keys that count things or time rather than measure quality.
BOOKKEEPING = {"step", "eval", "epoch", "total", "samples", "eval_samples", "num_samples", "elapsed_seconds",
               "eval_seconds", "runtime"}
DPI = 120
SAFE = r"[^\w.-]"  # characters a split name may not bring into a file name

# --------------------------------------------------------------------------- reading


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """JSON objects, one a line. A torn last line (no newline: a crash mid-write) is skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BertTasksError(f"cannot read ({exc})", file=path) from None
    lines = text.split("\n")  # a complete file ends with "\n", so its last piece is ""
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                continue
            raise BertTasksError(f"not valid JSON ({exc.msg})", file=path, record=f"line {number}") from None
        if not isinstance(record, dict):
            raise BertTasksError("expected a JSON object", file=path, record=f"line {number}")
        records.append(record)
    return records


def read_train_log(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """(training records, evaluation records) of a run, each sorted by step, one per step.

    A resumed run logs again the steps between its last checkpoint and the crash;
    the later record of a step wins, as it belongs to the run that went on.
    """
    run_dir = Path(run_dir)
    path = run_dir / TRAIN_LOG
    if not path.is_file():
        raise BertTasksError(f"no {TRAIN_LOG} here; is it a bert-tasks run folder?", file=run_dir)
    train: dict[int, dict] = {}
    evals: dict[int, dict] = {}
    for record in read_jsonl(path):
        if not isinstance(record.get("step"), (int, float)):
            continue
        (evals if record.get("eval") else train)[int(record["step"])] = record
    return [train[s] for s in sorted(train)], [evals[s] for s in sorted(evals)]


def _is_bookkeeping(key: str) -> bool:
    # MNLI logs eval_samples_m / eval_samples_mm; SQuAD v2 logs HasAns_total and NoAns_total.
    return key in BOOKKEEPING or "samples" in key or key.endswith(("_total", "_seconds", "_runtime"))


def metric_names(eval_records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Numeric quality metrics in eval records, in first-seen order; counts and timings left out."""
    names: dict[str, None] = {}
    for record in eval_records:
        for key, value in record.items():
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and not _is_bookkeeping(key):
                names.setdefault(key)
    return list(names)


# --------------------------------------------------------------------------- figures


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    pairs = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _line(ax, steps: Sequence[float], values: Sequence[float], **kwargs) -> None:
    # Markers only when few points, so a short run still shows where each logged value is.
    ax.plot(steps, values, marker="o" if len(steps) <= 30 else None, markersize=3, linewidth=1.4, **kwargs)
    ax.grid(True, alpha=0.3)


def training_figure(records: Sequence[Mapping[str, Any]], title: str | None = None) -> Figure:
    """Two panels sharing the step axis: training loss (top) and learning rate (bottom)."""
    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    loss_ax, lr_ax = fig.subplots(2, 1, sharex=True)
    _line(loss_ax, *_series(records, "loss"), color="tab:blue")
    loss_ax.set_ylabel("training loss")
    _line(lr_ax, *_series(records, "learning_rate"), color="tab:orange")
    lr_ax.set_ylabel("learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    lr_ax.set_xlabel("optimizer step")
    fig.suptitle(title or "training")
    return fig


def eval_figure(records: Sequence[Mapping[str, Any]], title: str | None = None) -> Figure:
    """One panel per evaluation metric against the step, at most three panels a row."""
    names = metric_names(records)
    if not names:
        raise BertTasksError("the evaluation records hold no numeric metric to plot")
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        steps, values = _series(records, name)
        _line(ax, steps, values, color="tab:green")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.margins(x=0.08, y=0.2)  # room for the value label at the last point
        if values:
            ax.annotate(f"{values[-1]:.4g}", (steps[-1], values[-1]), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)
    for ax in axes[len(names):]:
        fig.delaxes(ax)  # so the figure holds exactly one axes per metric
    fig.suptitle(title or "evaluation")
    return fig


def confusion_counts(labels: Sequence[int], predictions: Sequence[int], num_labels: int) -> np.ndarray:
    """[true label, predicted label] counts."""
    counts = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return counts


def confusion_figure(counts: np.ndarray, label_names: Sequence[str], title: str | None = None) -> Figure:
    """Counts written in each cell; colour is the share of the true class (row), so rare classes still show."""
    counts = np.asarray(counts)
    k = len(label_names)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 1.1 * k + 2.2)
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{count}\n{shares[i, j]:.1%}", ha="center", va="center", fontsize=10 if k <= 6 else 7,
                color="white" if shares[i, j] > 0.5 else "black")
    long_names = max(map(len, label_names)) > 6
    ax.set_xticks(range(k), label_names, rotation=30 if long_names else 0, ha="right" if long_names else "center")
    ax.set_yticks(range(k), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, label="share of the true class", shrink=0.8)
    ax.set_title(title or f"confusion matrix ({int(counts.sum())} examples)")
    return fig


# --------------------------------------------------------------------------- run folders


def _label_names(run_dir: Path) -> dict[int, str] | None:
    path = run_dir / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        return {int(k): str(v) for k, v in (config.get("id2label") or {}).items()} or None
    except (OSError, ValueError, AttributeError) as exc:
        raise BertTasksError(f"cannot read id2label ({exc})", file=path) from None


def _class_id(value: Any, label2id: Mapping[str, int], path: Path, number: int) -> int | None:
    """A class id, or None for an unlabelled example (test split: label -1 or missing)."""
    if value is None or value == -1:
        return None
    if isinstance(value, str):
        if value in label2id:
            return label2id[value]
        raise BertTasksError(f"unknown label {value!r}; the run's config.json has {sorted(label2id)}", file=path,
                             record=f"line {number}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value) or value < 0:
        raise BertTasksError(f"expected a class id, got {value!r}", file=path, record=f"line {number}")
    return int(value)


def predictions_confusion(path: Path, id2label: dict[int, str] | None) -> dict[str, tuple[np.ndarray, list[str]]]:
    """{split: (counts, label names)} from an ``eval_predictions.jsonl``; empty for regression or unlabelled data.

    Rows carry label names (or class ids); MNLI's rows also carry a ``split`` and get
    one matrix each. The split is "" for tasks with a single dev set.
    """
    records = read_jsonl(path)
    values = [v for r in records for v in (r.get("label"), r.get("prediction")) if v is not None]
    # STS-B: JSON keeps 3.0 apart from 3, so any float marks regression scores, as does a single-output model.
    # a multi-label row names a list of labels: one matrix per label would be needed, not one matrix
    if (id2label and len(id2label) == 1) or any(isinstance(v, (float, list)) for v in values):
        return {}
    if id2label is None:  # no config.json: name the classes in sorted order
        id2label = dict(enumerate(sorted({v for v in values if isinstance(v, str)})))
    label2id = {name: i for i, name in id2label.items()}
    by_split: dict[str, list[tuple[int, int]]] = {}
    for number, record in enumerate(records, 1):
        if "prediction" not in record:
            raise BertTasksError("record has no 'prediction'", file=path, record=f"line {number}")
        label = _class_id(record.get("label"), label2id, path, number)
        if label is not None:
            pair = (label, _class_id(record["prediction"], label2id, path, number))
            by_split.setdefault(str(record.get("split", "")), []).append(pair)
    k = max([len(id2label)] + [1 + max(pair) for pairs in by_split.values() for pair in pairs])
    names = [id2label.get(i, str(i)) for i in range(k)]
    return {split: (confusion_counts(*zip(*pairs), k), names) for split, pairs in by_split.items()}


def predictions_confidence(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(top probability, whether the prediction is right) per labelled example of a single-label classifier's
    ``eval_predictions.jsonl``; None when its rows carry no probabilities (regression, multi-label, older runs)."""
    records = [r for r in read_jsonl(path) if r.get("label") not in (None, -1)]
    if not records or any(not isinstance(r.get("probabilities"), list) or isinstance(r.get("label"), (list, float))
                          for r in records):
        return None
    confidence = np.array([max(r["probabilities"]) for r in records], dtype=np.float64)
    return confidence, np.array([r["prediction"] == r["label"] for r in records], dtype=np.float64)


def reliability_figure(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS,
                       title: str | None = None) -> Figure:
    """Accuracy against confidence in equal-width bins (the diagonal is perfect calibration), the examples per bin
    below, and the ECE in the title."""
    counts, accuracy, mean_confidence = calibration_bins(confidence, correct, bins)
    filled = counts > 0
    ece = float((counts[filled] / counts.sum() * np.abs(accuracy[filled] - mean_confidence[filled])).sum())
    fig = Figure(figsize=(5.5, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    edges = np.linspace(0.0, 1.0, bins + 1)
    top.bar(edges[:-1], np.nan_to_num(accuracy), width=1.0 / bins, align="edge", edgecolor="black", label="accuracy")
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_ylim(0, 1)
    top.legend(loc="upper left")
    top.set_title(title or f"reliability ({int(counts.sum())} examples): ECE {ece:.4f}")
    bottom.bar(edges[:-1], counts, width=1.0 / bins, align="edge", color="tab:gray")
    bottom.set_xlabel("confidence (top softmax probability)")
    bottom.set_ylabel("examples")
    bottom.set_xlim(0, 1)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Render to PNG in memory, then write atomically: a reader never sees half an image."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write ``training.png``, ``eval_metrics.png`` (if evaluated) and confusion matrices; return their paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BertTasksError("no such run folder", file=run_dir)
    out = output_folder(out_dir) if out_dir is not None else run_dir
    train, evals = read_train_log(run_dir)
    if not train and not evals:
        raise BertTasksError("no logged steps yet; nothing to plot", file=run_dir / TRAIN_LOG)
    written = []
    if train:
        written.append(save_figure(training_figure(train, title=f"training: {run_dir.name}"), out / "training.png"))
    if evals and metric_names(evals):
        written.append(save_figure(eval_figure(evals, title=f"evaluation: {run_dir.name}"), out / "eval_metrics.png"))
    predictions = run_dir / PREDICTIONS
    matrices = predictions_confusion(predictions, _label_names(run_dir)) if predictions.is_file() else {}
    for split, (counts, names) in matrices.items():
        name = f"{run_dir.name} {split}".strip()
        fig = confusion_figure(counts, names, title=f"confusion matrix, {name}: {int(counts.sum())} examples")
        stem = "confusion_matrix" + (f"_{re.sub(SAFE, '_', split)}" if split else "")
        written.append(save_figure(fig, out / f"{stem}.png"))
    confident = predictions_confidence(predictions) if predictions.is_file() else None
    if confident is not None:
        written.append(save_figure(reliability_figure(*confident, title=None), out / "reliability.png"))
    return written

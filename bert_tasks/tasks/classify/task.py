"""The ``classify`` task: the user's own labels on the one sentence head (:class:`~bert_tasks.tasks.sentences.SentenceTask`).

Its run hooks read the data and find the labels (:mod:`.data`), score the dev set into ``eval_results.json`` (with a
per-class table) and ``eval_predictions.jsonl`` (one object per dev example: idx, prediction, label, probabilities),
tune the multi-label decision threshold on the dev set unless one is given, and predict a test file into
``predictions.jsonl`` with ``do_predict``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checkpoint.files import read_config
from ...checkpoint.load import require_trained_head
from ...checkpoint.modelcard import eval_set_text
from ...errors import BertTasksError
from ...io import atomic_write_text, write_json
from ...metrics import load_metric
from ...metrics.calibration import expected_calibration_error, softmax
from ...protocol import Evaluator
from ...training.prediction import predict
from ..sentences import SentenceTask, sigmoid
from .config import ClassifyDataConfig
from .data import MULTI, REGRESSION, SINGLE, LabelSpace, load_splits

#: thresholds tried on the dev set for a multi-label model (micro F1; a tie goes to the one nearest 0.5)
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
PREDICTIONS = "predictions.jsonl"
#: the per-class precision, recall, F1 and support of the last evaluation
PER_CLASS = "eval_per_class.json"
MAIN_METRIC = {SINGLE: "accuracy", MULTI: "micro_f1", REGRESSION: "pearson"}


class ClassifyTask(SentenceTask):
    name = "classify"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        #: the labels: found in the training data by read_data, or read from a trained folder
        self.space = LabelSpace(SINGLE, ("0", "1"))
        #: multi-label: tune the threshold on the dev set at each evaluation (training without a given threshold);
        #: a trained folder is scored at the threshold it was trained to (eval_results.json), not tuned on new data
        self.tune = False

    @property
    def problem_type(self) -> str:
        return self.space.problem_type

    @property
    def main_metric_name(self) -> str:
        return MAIN_METRIC[self.problem_type]

    def num_labels(self, cfg: ClassifyDataConfig | None = None) -> int:
        return self.space.num_labels

    def model_labels(self, cfg: ClassifyDataConfig) -> dict[int, str]:
        return self.space.id2label()

    def metrics(self, predictions: Any, references: Any) -> dict[str, Any]:
        kwargs = {} if self.is_regression else {"num_labels": self.space.num_labels}
        found = load_metric("classify", self.problem_type).compute(predictions=predictions, references=references,
                                                                   **kwargs)
        if "per_class" in found:
            found["per_class"] = {self.space.names[int(i)]: row for i, row in found["per_class"].items()}
        return found

    # ------------------------------------------------------------------ run hooks

    def read_data(self, recipe: Any) -> dict[str, Any]:
        cfg: ClassifyDataConfig = recipe.data
        groups = ("train", "validation", *(("test",) if cfg.do_predict else ()))
        splits, self.space = load_splits(cfg, groups)
        if "train" not in splits:
            raise BertTasksError("no training data: give train_file (or a dataset with a train split)")
        self._set_weights(cfg, splits["train"])
        self.threshold, self.tune = cfg.threshold or 0.5, cfg.threshold is None
        return splits

    def read_eval_data(self, cfg: ClassifyDataConfig) -> dict[str, Any]:
        splits, _ = load_splits(cfg, ("validation", *(("test",) if cfg.do_predict else ())), space=self.space)
        if "validation" not in splits and not cfg.do_predict:
            raise BertTasksError("no validation data: give validation_file (or a dataset with a validation split)")
        return splits

    def check_trained_folder(self, folder: Path, cfg: ClassifyDataConfig) -> None:
        """The trained labels and problem type are the folder's (config.json): the dev labels must be among them."""
        require_trained_head(folder, self.head)
        self.space = trained_space(folder)
        self.threshold, self.tune = cfg.threshold or trained_threshold(folder), False

    def _set_weights(self, cfg: ClassifyDataConfig, train: Any) -> None:
        if cfg.class_weights is None:
            return
        labels = np.asarray(train["label"], dtype=np.float64)
        self.class_weights = class_weight_tensor(cfg.class_weights, self.space, labels, len(train))

    def evaluator(self, data: dict[str, Any], tokenizer: Any, cfg: ClassifyDataConfig, batch_size: int
                  ) -> Evaluator | None:
        if "validation" not in data:
            return None
        raw = data["validation"]
        features = self.preprocess(raw, tokenizer, cfg, train=False)

        def evaluate(model, accelerator, output_dir: Path | None) -> dict[str, Any]:
            logits = np.stack(predict(model, self, features, batch_size=batch_size, accelerator=accelerator)["logits"])
            metrics, rows = self.score(logits, raw, tune=self.tune)
            table = metrics.pop("per_class", None)
            if output_dir is not None and (accelerator is None or accelerator.is_main_process):
                atomic_write_text(Path(output_dir) / "eval_predictions.jsonl",
                                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
                if table is not None:
                    write_json(Path(output_dir) / PER_CLASS, table)
            return metrics

        return evaluate

    def score(self, logits: np.ndarray, raw: Any, *, tune: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The dev metrics (multi-label: at the tuned or given threshold) and one row per example."""
        references = np.asarray(raw["label"])
        extra: dict[str, Any] = {}
        if self.problem_type == MULTI:
            references = references.astype(np.int64)
            if tune:
                self.threshold = tune_threshold(sigmoid(logits), references)
            at_half = (sigmoid(logits) >= 0.5).astype(np.int64)  # postprocess at 0.5, without touching the threshold
            extra["micro_f1_at_0.5"] = self.metrics(at_half, references)["micro_f1"]
            extra["threshold"] = float(self.threshold)
        if self.problem_type == SINGLE:
            extra["ece"] = expected_calibration_error(softmax(logits), references)
            self.dev_logits["validation"] = (logits, references)
        predictions = self.postprocess(logits)
        metrics = {**self.metrics(predictions, references), **extra, "eval_samples": len(raw)}
        rows = [{"idx": int(idx), "prediction": self.label_text(p), "label": self.label_text(g),
                 **self.probabilities(row)}
                for idx, p, g, row in zip(raw["idx"], predictions.tolist(), references.tolist(), logits)]
        return metrics, rows

    def probabilities(self, logits: np.ndarray) -> dict[str, Any]:
        if self.is_regression:
            return {}
        probs = sigmoid(logits) if self.problem_type == MULTI else softmax(logits)
        return {"probabilities": [round(float(p), 6) for p in probs]}

    def label_text(self, value: Any) -> Any:
        if self.is_regression:
            return float(value)
        if self.problem_type == MULTI:
            return [self.space.names[i] for i, on in enumerate(value) if on]
        return self.space.names[int(value)]

    def extra_outputs(self, model, tokenizer, data, cfg: ClassifyDataConfig, output_dir: Path, accelerator: Any,
                      batch_size: int) -> None:
        """``predictions.jsonl`` for the test file, with ``do_predict``: idx, text(s), prediction, probabilities."""
        if not cfg.do_predict or "test" not in data:
            return
        raw = data["test"]
        features = self.preprocess(raw, tokenizer, cfg, train=False)
        logits = np.stack(predict(model, self, features, batch_size=batch_size, accelerator=accelerator)["logits"])
        if accelerator is not None and not accelerator.is_main_process:
            return
        texts = [c for c in ("text_a", "text_b") if c in raw.column_names]
        rows = [{"idx": int(r["idx"]), **{c: r[c] for c in texts}, "prediction": self.label_text(p),
                 **self.probabilities(row)}
                for r, p, row in zip(raw, self.postprocess(logits).tolist(), logits)]
        path = Path(output_dir) / PREDICTIONS
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"wrote {path} ({len(rows)} predictions)", flush=True)

    def card(self, recipe: Any, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg: ClassifyDataConfig = recipe.data
        name = cfg.dataset or Path(cfg.train_file or "your data").name
        kind = {SINGLE: "classification", MULTI: "multi-label classification", REGRESSION: "regression"}
        card: dict[str, Any] = {"dataset_name": name, "dataset_type": "text-classification",
                                "settings": {"problem": kind[self.problem_type],
                                             **({"labels": ", ".join(self.space.names)} if self.space.names else {})}}
        if self.class_weights is not None:
            shown = ", ".join(f"{n} {w:.4g}" for n, w in zip(self.space.names, self.class_weights.tolist()))
            card["settings"]["class_weights"] = shown
        if metrics:
            dev = cfg.validation_file and Path(cfg.validation_file).name or f"{name} validation"
            card["eval_set"] = eval_set_text(dev, metrics["eval_samples"], "examples", cfg.max_eval_samples)
        return card


def tune_threshold(probabilities: np.ndarray, references: np.ndarray) -> float:
    """The threshold of :data:`THRESHOLDS` with the best micro F1 on the dev set (ties: the one nearest 0.5)."""
    gold = references.astype(bool)

    def micro_f1(threshold: float) -> float:
        predicted = probabilities >= threshold
        tp = float((predicted & gold).sum())
        denominator = float(predicted.sum() + gold.sum())
        return 2 * tp / denominator if denominator else 0.0

    return float(max(THRESHOLDS, key=lambda t: (micro_f1(t), -abs(t - 0.5))))


def trained_space(folder: Path) -> LabelSpace:
    """The label space a trained folder's config.json records (id2label and problem_type)."""
    config = read_config(folder)
    problem = config.get("problem_type") or SINGLE
    labels = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    if problem == REGRESSION:
        return LabelSpace(REGRESSION)
    names = tuple(labels.get(i) for i in range(len(labels)))
    if len(names) < 2 or None in names:
        raise BertTasksError(f"config.json id2label {shown_labels(labels)} is not a classifier's label list",
                             file=folder / "config.json")
    return LabelSpace(problem, names)


def shown_labels(labels: dict[int, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in list(labels.items())[:8]) + ("..." if len(labels) > 8 else "") + "}"


def trained_threshold(folder: Path) -> float:
    """A multi-label folder's decision threshold: the one its last evaluation chose (eval_results.json), else 0.5."""
    path = folder / "eval_results.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("threshold") if path.is_file() else None
    except ValueError:
        raise BertTasksError("unreadable eval_results.json", file=path) from None
    return float(value) if isinstance(value, (int, float)) and 0 < value < 1 else 0.5


def class_weight_tensor(setting: str, space: LabelSpace, labels: np.ndarray, n: int) -> torch.Tensor:
    """``class_weights`` as the loss's [K] weights. "auto": single-label n / (K * count_k) (scikit-learn's
    "balanced"); multi-label negatives_k / positives_k (BCE's pos_weight); a label that never occurs is an error."""
    names = space.names
    if setting.strip() != "auto":
        return torch.tensor(explicit_weights(setting, names), dtype=torch.float32)
    if space.problem_type == MULTI:
        positives = labels.sum(axis=0)
        counts, weights = positives, (n - positives) / np.maximum(positives, 1)
    else:
        counts = np.bincount(labels.astype(np.int64), minlength=len(names)).astype(np.float64)
        weights = n / (len(names) * np.maximum(counts, 1))
    absent = [names[i] for i in range(len(names)) if counts[i] == 0]
    if absent:
        raise BertTasksError(f"class_weights auto: label {', '.join(absent)} never occurs in the {n} training "
                             "examples; give the weights per label instead", record="key class_weights")
    return torch.tensor(weights, dtype=torch.float32)


def explicit_weights(text: str, names: tuple[str, ...]) -> list[float]:
    weights: dict[str, float] = {}
    for item in text.split(","):
        label, sep, value = (part.strip() for part in item.partition("="))
        if not sep or label not in names:
            raise BertTasksError(f"class_weights: {item.strip()!r} is not label=weight for one of the labels "
                                 f"({', '.join(names)})", record="key class_weights")
        if label in weights:
            raise BertTasksError(f"class_weights: label {label} is given twice", record="key class_weights")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not 0 < weight < float("inf"):
            raise BertTasksError(f"class_weights: the weight of {label} must be a positive number, got {value!r}",
                                 record="key class_weights")
        weights[label] = weight
    missing = [name for name in names if name not in weights]
    if missing:
        raise BertTasksError(f"class_weights: give a weight for every label (missing: {', '.join(missing)})",
                             record="key class_weights")
    return [weights[name] for name in names]

"""The GLUE task adapter: tokenizes sentence (pairs), pads batches, computes the loss and scores predictions.

One :class:`GlueTask` serves one of the nine tasks. The loss is exactly the
one ``transformers.BertForSequenceClassification`` computes when given labels
(cross-entropy, or mean squared error on the squeezed logit for STS-B), so the
scratch encoder and the ``transformers`` model train alike.

Its run hooks read the data (every split the run needs, test files included, before anything is
written), score every dev split (MNLI: matched and mismatched) into ``eval_predictions.jsonl``
(one object per dev example: idx, prediction, label) and write the leaderboard files with
``do_predict``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ...checkpoint.files import read_config
from ...checkpoint.load import require_trained_head
from ...errors import BertTasksError
from ...io import atomic_write_text
from ...metrics import load_metric
from ...metrics.calibration import expected_calibration_error, softmax
from ...checkpoint.modelcard import eval_set_text
from ...protocol import PAD_MULTIPLE, Evaluator
from ...training.prediction import predict
from ..sentences import SentenceTask
from .config import GlueDataConfig, explicit_class_weights
from .data import UNLABELED, load_glue_splits, split_group
from .report import task_results, task_score, write_submission
from .spec import EVAL_SPLIT_SUFFIX, get_spec, id2label

SUBMISSION_DIR = "submission"


class GlueTask(SentenceTask):
    """One GLUE task: a fixed row of the sentence head (:class:`~bert_tasks.tasks.sentences.SentenceTask`), its labels,
    metric and leaderboard files from the GLUE table."""

    def __init__(self, name: str = "sst2", *, pad_token_id: int = 0, pad_to_multiple_of: int | None = PAD_MULTIPLE):
        super().__init__(pad_token_id=pad_token_id, pad_to_multiple_of=pad_to_multiple_of)
        self.spec = get_spec(name)
        self.name = name

    @property
    def problem_type(self) -> str:
        return "regression" if self.spec.is_regression else "single_label_classification"

    def num_labels(self, cfg: GlueDataConfig | None = None) -> int:
        return get_spec(cfg.task).num_labels if cfg is not None else self.spec.num_labels

    def preprocess(self, raw, tokenizer, cfg: GlueDataConfig, *, train: bool):
        if cfg.task != self.name:
            raise ValueError(f"GlueTask({self.name!r}) got a config for task {cfg.task!r}")
        return super().preprocess(raw, tokenizer, cfg, train=train)

    def metrics(self, predictions: Any, references: Any) -> dict[str, float]:
        return {k: float(v) for k, v in load_metric("glue", self.name).compute(predictions=predictions, references=references).items()}

    # ------------------------------------------------------------------ run hooks

    def read_data(self, recipe: Any) -> dict[str, Any]:
        splits = load_glue_splits(recipe.data)
        if "train" not in splits:
            raise BertTasksError(f"no training data for task {self.name}: give train_file or a folder with train.tsv")
        if recipe.data.class_weights is not None:
            self.class_weights = class_weight_tensor(recipe.data.class_weights, self.name, splits["train"]["label"])
        return splits

    def read_eval_data(self, cfg: GlueDataConfig) -> dict[str, Any]:
        splits = load_glue_splits(cfg, groups=["validation", *(["test"] if cfg.do_predict else [])])
        if not any(split_group(s) == "validation" for s in splits) and not cfg.do_predict:
            raise BertTasksError(f"no validation data for task {self.name}: give validation_file or a folder with the dev files")
        return splits

    def check_trained_folder(self, folder: Path, cfg: GlueDataConfig) -> None:
        require_trained_head(folder, self.head)  # a masked-LM folder is refused as such, not for its label count
        check_label_mapping(read_config(folder).get("id2label"), cfg.task, source=folder / "config.json")

    def evaluator(self, data: dict[str, Any], tokenizer: Any, cfg: GlueDataConfig, batch_size: int) -> Evaluator | None:
        eval_sets = {name: (raw, self.preprocess(raw, tokenizer, cfg, train=False))
                     for name, raw in data.items() if split_group(name) == "validation"}
        if not eval_sets:
            return None

        def evaluate(model, accelerator, output_dir: Path | None) -> dict[str, Any]:
            metrics, rows = self.score(model, eval_sets, batch_size=batch_size, accelerator=accelerator)
            if output_dir is not None and (accelerator is None or accelerator.is_main_process):
                atomic_write_text(Path(output_dir) / "eval_predictions.jsonl",
                                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            return metrics

        return evaluate

    def score(self, model, eval_sets: dict[str, tuple[Any, Any]], *, batch_size: int, accelerator: Any = None
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Metrics over every dev split (MNLI: matched and mismatched) and one row per example."""
        by_split: dict[str, dict[str, float]] = {}
        rows: list[dict[str, Any]] = []
        samples: dict[str, int] = {}
        for split, (raw, features) in eval_sets.items():
            logits = np.stack(predict(model, self, features, batch_size=batch_size, accelerator=accelerator)["logits"])
            predictions = self.postprocess(logits)
            references = np.asarray(raw["label"])
            if (references == UNLABELED).any():
                raise BertTasksError(f"the {self.name} {split} data has unlabeled examples; it cannot be scored")
            by_split[split] = self.metrics(predictions, references)
            if not self.spec.is_regression:  # how far the softmax confidences are from the accuracy they promise
                by_split[split]["ece"] = expected_calibration_error(softmax(logits), references)
                self.dev_logits[split] = (logits, references)
            samples[split] = len(raw)
            tag = {"split": split} if len(eval_sets) > 1 else {}
            probabilities = [None] * len(raw) if self.spec.is_regression else softmax(logits).round(6).tolist()
            for idx, pred, gold, probs in zip(raw["idx"], predictions.tolist(), references.tolist(), probabilities):
                rows.append({"idx": int(idx), **tag, "prediction": self.label_text(pred), "label": self.label_text(gold),
                             **({"probabilities": probs} if probs is not None else {})})
        metrics: dict[str, Any] = task_results(by_split)
        if len(samples) > 1:
            metrics.update({f"eval_samples{EVAL_SPLIT_SUFFIX.get(s, '_' + s)}": n for s, n in samples.items()})
        metrics["eval_samples"] = sum(samples.values())
        return metrics, rows

    @property
    def main_metric_name(self) -> str:
        keys = self.spec.score_keys
        return keys[0] if len(keys) == 1 else f"mean of {' and '.join(keys)}"

    def metric_names(self, cfg: GlueDataConfig) -> tuple[str, ...]:
        """Every metric of every dev split (MNLI's under ``_m``/``_mm``), as :meth:`score` reports them."""
        names = (*self.spec.metrics, *(() if self.spec.is_regression else ("ece",)))
        return tuple(f"{name}{EVAL_SPLIT_SUFFIX.get(split, '')}" for split in self.spec.eval_files for name in names)

    def main_metric(self, metrics: dict[str, Any]) -> float | None:
        """The task's GLUE score: its metric, or the mean of its two (MRPC, QQP, STS-B, MNLI-m/mm)."""
        return task_score(self.name, metrics) if all(k in metrics for k in self.spec.score_keys) else None

    def label_text(self, value: Any) -> Any:
        if self.spec.is_regression:
            return float(value)  # full precision: the reported Pearson/Spearman can be recomputed from the file
        return id2label(self.name, names="hub")[int(value)]

    def model_labels(self, cfg: GlueDataConfig) -> dict[int, str]:
        return id2label(cfg.task, names="hub")

    def extra_outputs(self, model, tokenizer, data, cfg: GlueDataConfig, output_dir: Path, accelerator: Any,
                      batch_size: int) -> None:
        """Leaderboard files for every test split (MNLI: MNLI-m, MNLI-mm and AX when present), with ``do_predict``."""
        if not cfg.do_predict:
            return
        tests = {split: raw for split, raw in data.items() if split_group(split) == "test"}
        if not tests:
            raise BertTasksError(f"do_predict: no test data for task {cfg.task}")
        out = Path(cfg.submission_dir) if cfg.submission_dir else Path(output_dir) / SUBMISSION_DIR
        for split, raw in tests.items():
            features = self.preprocess(raw, tokenizer, cfg, train=False)
            logits = np.stack(predict(model, self, features, batch_size=batch_size, accelerator=accelerator)["logits"])
            if accelerator is None or accelerator.is_main_process:
                path = write_submission(cfg.task, self.postprocess(logits), raw["idx"], out, split=split)
                print(f"wrote {path} ({path.parent} is ready to zip)", flush=True)

    def card(self, recipe: Any, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg: GlueDataConfig = recipe.data
        name = f"GLUE {self.spec.folder}"
        card: dict[str, Any] = {"dataset_name": name, "dataset_type": "glue"}
        if self.class_weights is not None:
            names = id2label(self.name, names="hub")
            shown = ", ".join(f"{names[i]} {w:.4g}" for i, w in enumerate(self.class_weights.tolist()))
            card["settings"] = {"class_weights": f"{shown} ({cfg.class_weights})" if cfg.class_weights == "auto" else shown}
        if metrics:
            splits = " and ".join(self.spec.eval_files)
            card["eval_set"] = eval_set_text(f"{name} {splits}", metrics["eval_samples"], "examples", cfg.max_eval_samples,
                                             splits=len(self.spec.eval_files))
        return card


def class_weight_tensor(setting: str, task: str, train_labels: Any) -> torch.Tensor:
    """``data.class_weights`` as the cross-entropy's [K] weights. "auto" is inverse frequency over the training
    labels, n / (K * count_k) (scikit-learn's "balanced": a balanced set gets 1 everywhere); a class that never
    occurs has no frequency to invert, so it is an error naming it."""
    explicit = explicit_class_weights(setting, task)
    names = id2label(task, names="hub")
    if explicit is not None:
        return torch.tensor([explicit[names[i]] for i in range(len(names))], dtype=torch.float32)
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=len(names))
    absent = [names[i] for i in range(len(names)) if counts[i] == 0]
    if absent:
        raise BertTasksError(f"class_weights auto: label {', '.join(absent)} never occurs in the {len(train_labels)} "
                             "training examples; give the weights per label instead", record="key class_weights")
    return torch.tensor(counts.sum() / (len(names) * counts), dtype=torch.float32)


def check_label_mapping(model_config_id2label: Mapping[Any, str] | None, task: str, *, source: str | None = None) -> None:
    """Refuse a checkpoint whose classifier labels are not this task's, in this task's order.

    Accepted: GLUE's label names, the Hub's names (any case), class ids as names, or the
    generic ``LABEL_0``..``LABEL_n`` that ``transformers`` writes when no names were given.
    ``source`` (the checkpoint's config path) is named in the error.
    """
    spec = get_spec(task)
    mapping = {int(k): str(v) for k, v in (model_config_id2label or {}).items()}
    names = [mapping.get(i) for i in range(len(mapping))]
    if len(mapping) != spec.num_labels or None in names:
        raise BertTasksError(
            f"the checkpoint's classifier has {len(mapping)} labels ({', '.join(map(str, mapping.values()))}) "
            f"but task {task} needs {spec.num_labels}",
            file=source,
        )
    if spec.is_regression or names == [f"LABEL_{i}" for i in range(len(names))]:
        return
    lowered = tuple(n.strip().lower() for n in names)
    accepted = (spec.labels, spec.hub_labels, tuple(str(i) for i in range(spec.num_labels)))
    if any(lowered == tuple(a.lower() for a in names_) for names_ in accepted):
        return
    shown, expected = ", ".join(names), ", ".join(spec.hub_labels)
    if any(sorted(lowered) == sorted(a.lower() for a in names_) for names_ in accepted):
        reason = f"the checkpoint's labels [{shown}] are in a different order than task {task}'s [{expected}]"
    else:
        reason = f"the checkpoint's labels [{shown}] are not task {task}'s labels [{expected}]"
    raise BertTasksError(reason, file=source)

"""The token classification (NER) task: aligns tags to sub-tokens, windows long sentences, scores entities.

The loss is exactly the one ``transformers.BertForTokenClassification`` computes when given labels: cross-entropy
over every token whose label is not -100 (a word's later sub-tokens and the special tokens), so our encoder and
the ``transformers`` model (``--backend hf``) train alike. Scores are seqeval's (conlleval's reading of the tags:
an ``I-X`` after ``O`` or another type starts an entity), one tag per word; ``eval_predictions.jsonl`` holds one
row per dev sentence: idx, tokens, predicted tags, gold tags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

import datasets

from ...checkpoint.files import read_config
from ...checkpoint.load import require_trained_head
from ...checkpoint.onnx import is_export_folder
from ...checkpoint.modelcard import eval_set_text
from ...errors import BertTasksError
from ...io import atomic_write_text
from ...metrics import load_metric
from ...protocol import Evaluator, TaskBase, pad_batch
from ...training.prediction import predict
from .config import NerDataConfig
from .data import NerData, load_ner_data
from .features import IGNORE, continuation_labels, encode, word_logits

#: the metrics a summary line shows
HEADLINE = ("overall_f1", "overall_precision", "overall_recall", "overall_accuracy", "eval_samples")


class NerTask(TaskBase):
    name = "ner"
    head = "ner"
    prediction_outputs = {"logits": "token"}
    main_metric_name = "overall_f1"

    def __init__(self) -> None:
        #: the tag set in id order and the scheme: from the training data (read_data) or the trained folder
        self.labels: list[str] | None = None
        self.scheme: str | None = None
        self.pad_token_id = 0

    def num_labels(self, cfg: NerDataConfig | None = None) -> int | None:
        labels = self.labels or (cfg.label_list() if cfg is not None else None)
        return len(labels) if labels else None

    def preprocess(self, raw: datasets.Dataset, tokenizer: Any, cfg: NerDataConfig, *, train: bool) -> datasets.Dataset:
        """Sentences -> windows of sub-tokens with their labels (see :mod:`.features`)."""
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if not getattr(tokenizer, "is_fast", False):
            raise BertTasksError("token classification needs a fast tokenizer (its word_ids() align tags to words)")
        sources = [{"record": f"line {line}" if line else f"sentence {i}"} for i, line in enumerate(raw["line"])]
        columns = encode(raw["tokens"], tokenizer, max_seq_length=cfg.max_seq_length, doc_stride=cfg.doc_stride,
                         tags=raw["tags"], label_all_tokens=cfg.label_all_tokens and train,
                         continuation=continuation_labels(self.labels or []), sources=sources)
        return datasets.Dataset.from_dict(columns)

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        if "labels" in features[0]:
            pads["labels"] = IGNORE
        return pad_batch(features, pads)

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs.logits
        labels = batch["labels"]
        if not bool((labels != IGNORE).any()):  # a batch of continuation sub-tokens only: no word to learn from
            return logits.sum() * 0.0
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), labels.view(-1).long(), ignore_index=IGNORE)

    def postprocess(self, features: Any, logits: list[np.ndarray], raw: datasets.Dataset) -> list[list[str]]:
        """One predicted tag per word of every sentence."""
        per_word = word_logits(features, logits, [len(t) for t in raw["tokens"]])
        return [[self.labels[i] for i in values.argmax(axis=-1).tolist()] for values in per_word]

    def metrics(self, predictions: list[list[str]], references: list[list[str]]) -> dict[str, Any]:
        """seqeval's overall scores, then each type's as ``TYPE_precision``, ``TYPE_recall``, ``TYPE_f1`` and
        ``TYPE_number`` (its gold entities), flat as run_ner.py's ``return_entity_level_metrics`` writes them."""
        scores = load_metric("seqeval").compute(predictions=predictions, references=references)
        overall = {k: v for k, v in scores.items() if k.startswith("overall_")}
        per_type = {f"{kind}_{name}": value for kind, values in scores.items() if not kind.startswith("overall_")
                    for name, value in values.items()}
        return {**overall, **per_type}

    # ------------------------------------------------------------------ run hooks

    def read_data(self, recipe: Any) -> NerData:
        cfg: NerDataConfig = recipe.data
        data = load_ner_data(cfg)
        self.labels, self.scheme = data.labels, data.scheme
        cfg.labels, cfg.tag_scheme = ",".join(data.labels), data.scheme  # the run folder's recipe.yaml says both
        return data

    def train_features(self, data: NerData, tokenizer: Any, recipe: Any, run: Any) -> datasets.Dataset:
        return self.preprocess(data.splits["train"], tokenizer, recipe.data, train=True)

    def check_trained_folder(self, folder: Path, cfg: NerDataConfig) -> None:
        if not is_export_folder(folder):  # an export folder's head is checked when its graph is opened
            require_trained_head(folder, self.head)
        config = read_config(folder)
        labels = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
        if not labels or sorted(labels) != list(range(len(labels))):
            raise BertTasksError("config.json has no id2label naming the tags", file=folder / "config.json")
        self.labels = [labels[i] for i in range(len(labels))]

    def read_eval_data(self, cfg: NerDataConfig) -> NerData:
        data = load_ner_data(cfg, labels=self.labels or cfg.label_list(), scheme=cfg.scheme, splits=("validation",))
        self.scheme = data.scheme
        if "validation" not in data.splits:
            raise BertTasksError("no validation data: give --validation-file (or --dataset with a validation split)")
        return data

    def evaluator(self, data: NerData, tokenizer: Any, cfg: NerDataConfig, batch_size: int) -> Evaluator | None:
        raw = data.splits.get("validation")
        if raw is None:
            return None
        features = self.preprocess(raw, tokenizer, cfg, train=False)

        def evaluate(model, accelerator, output_dir: Path | None) -> dict[str, Any]:
            logits = predict(model, self, features, batch_size=batch_size, accelerator=accelerator)["logits"]
            predicted = self.postprocess(features, logits, raw)
            gold = [[self.labels[i] for i in tags] for tags in raw["tags"]]
            metrics = {**self.metrics(predicted, gold), "eval_samples": len(raw)}
            if output_dir is not None and (accelerator is None or accelerator.is_main_process):
                rows = ({"idx": int(idx), "tokens": tokens, "predictions": p, "labels": g}
                        for idx, tokens, p, g in zip(raw["idx"], raw["tokens"], predicted, gold))
                atomic_write_text(Path(output_dir) / "eval_predictions.jsonl",
                                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            return metrics

        return evaluate

    def model_labels(self, cfg: NerDataConfig) -> dict[int, str] | None:
        labels = self.labels or cfg.label_list()
        return dict(enumerate(labels)) if labels else None

    def card(self, recipe: Any, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg: NerDataConfig = recipe.data
        name = cfg.dataset or (Path(cfg.train_file).name if cfg.train_file else "token classification data")
        card: dict[str, Any] = {"dataset_name": name, "dataset_type": cfg.dataset or "ner",
                                "settings": {"tags": f"{', '.join(self.labels or [])} ({self.scheme})"}}
        if metrics:
            dev = cfg.dataset and f"{cfg.dataset} validation" or Path(cfg.validation_file or "dev").name
            card["eval_set"] = eval_set_text(dev, int(metrics["eval_samples"]), "sentences", cfg.max_eval_samples)
        return card

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: metrics[k] for k in HEADLINE if k in metrics}

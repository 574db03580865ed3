"""Sentence (pair) classification and regression, written once: what ``glue`` and ``classify`` share.

:class:`SentenceTask` tokenizes ``text_a``/``text_b``, pads batches, computes the loss of its problem type and turns
logits into predictions. The three problem types are transformers' own (``config.problem_type``), with the loss
``BertForSequenceClassification`` computes for each when given labels:

- ``single_label_classification``: cross-entropy over K logits (optionally weighted per class); prediction argmax;
- ``multi_label_classification``: binary cross-entropy on each of K sigmoids (optionally a positive-class weight
  per label); prediction: every label whose probability reaches the decision threshold;
- ``regression``: mean squared error on the one squeezed logit; prediction the logit.

A GLUE task is a fixed row of this (its labels and metric from the GLUE table); ``classify`` infers the labels and
the problem type from the user's files. Both go through :meth:`SentenceTask.preprocess`, so the same file gives the
same features, the same batches and the same weights under either command.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from datasets.fingerprint import Hasher

from ..errors import BertTasksError
from ..protocol import PAD_MULTIPLE, TaskBase, pad_batch
from .tabular import UNLABELED

ProblemType = Literal["single_label_classification", "multi_label_classification", "regression"]
PROBLEM_TYPES: tuple[str, ...] = ProblemType.__args__
#: bump when preprocessing changes, so cached tokenized datasets are not reused
PREPROCESS_VERSION = 1


def is_labeled(raw: Any) -> bool:
    """Whether every example of ``raw`` has a label (a multi-label split's lists always do; -1 marks none)."""
    if "label" not in raw.column_names or not len(raw):
        return False
    if raw.features["label"].__class__.__name__ in ("Sequence", "List", "LargeList"):
        return True
    return bool((np.asarray(raw["label"]) != UNLABELED).all())


class SentenceTask(TaskBase):
    """The data protocol of a sentence (pair) head; a subclass says its problem type, labels, metrics and run hooks."""

    head = "glue"
    prediction_outputs = {"logits": "example"}
    problem_type: ProblemType = "single_label_classification"

    def __init__(self, *, pad_token_id: int = 0, pad_to_multiple_of: int | None = PAD_MULTIPLE):
        #: both are taken from the tokenizer and config by :meth:`preprocess`, since collate sees neither
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        #: the loss's weight per class id ([K]): cross-entropy's class weights, or BCE's positive-class weights
        self.class_weights: torch.Tensor | None = None
        #: multi-label: a label is predicted when its probability is at least this
        self.threshold = 0.5
        #: single-label: split -> (logits, class ids) of the last dev scoring, what ``eval --calibrate`` fits a
        #: temperature on (:mod:`.calibrate`)
        self.dev_logits: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def is_regression(self) -> bool:
        return self.problem_type == "regression"

    def preprocess(self, raw, tokenizer, cfg: Any, *, train: bool):
        """Tokenize ``text_a``/``text_b``; keep ``idx``, rename ``label`` to ``labels`` (dropped when unlabeled), add ``length``."""
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.pad_to_multiple_of = None if cfg.pad_to_max_length else PAD_MULTIPLE
        labeled = is_labeled(raw)
        if train and not labeled:
            raise BertTasksError(f"the {self.name} training data has unlabeled examples")
        pair = "text_b" in raw.column_names
        max_length, padding = cfg.max_seq_length, "max_length" if cfg.pad_to_max_length else False

        def encode(batch):
            encoded = tokenizer(
                batch["text_a"], batch["text_b"] if pair else None,
                truncation=True, max_length=max_length, padding=padding, return_token_type_ids=True,
            )
            encoded["length"] = [sum(mask) for mask in encoded["attention_mask"]]
            return encoded

        fingerprint = Hasher.hash(
            [raw._fingerprint, tokenizer_fingerprint(tokenizer), max_length, padding, PREPROCESS_VERSION]
        )
        dropped = [c for c in raw.column_names if c not in ("idx", "label")]
        features = raw.map(encode, batched=True, remove_columns=dropped, new_fingerprint=fingerprint,
                           desc=f"Tokenizing {self.name}")
        if labeled:
            return features.rename_column("label", "labels")
        return features.remove_columns("label") if "label" in features.column_names else features

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Pad to the longest example (rounded up to a multiple of 8); keep only model inputs and labels."""
        batch = pad_batch(features, {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0},
                          self.pad_to_multiple_of)
        if "labels" in features[0]:
            dtype = torch.long if self.problem_type == "single_label_classification" else torch.float32
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)
        return batch

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs.logits
        labels = batch["labels"]
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        if self.is_regression:
            return F.mse_loss(logits.squeeze(-1).float(), labels.view(-1).float())
        if self.problem_type == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), pos_weight=weight)
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), labels.view(-1).long(), weight=weight)

    def postprocess(self, logits: Any) -> np.ndarray:
        """Class ids (argmax); multi-label: [N, K] 0/1 at the threshold; regression: one float score per example."""
        if isinstance(logits, torch.Tensor):
            logits = logits.detach().float().cpu().numpy()
        logits = np.asarray(logits)
        if self.problem_type == "multi_label_classification":
            return (sigmoid(logits) >= self.threshold).astype(np.int64)
        if not self.is_regression:
            return logits.argmax(axis=-1)
        if logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        if logits.ndim != 1:
            raise ValueError(f"{self.name} logits must have shape [N] or [N, 1], got {list(logits.shape)}")
        return logits.astype(np.float32)

    def model_config(self, cfg: Any) -> dict[str, Any]:
        # the text-classification pipeline reads problem_type: softmax, sigmoid per label, or the raw score
        return {"problem_type": self.problem_type}


def run_on_text(folder: Any, cfg: Any, text: str, text_pair: str | None, *, num_labels: int, backend: str,
                precision: str | None) -> tuple[Any, Any, Any]:
    """One text (pair) through a trained sentence head: (the model's output, the tokenized inputs, the tokenizer).

    ``folder`` may be an export folder (``bert-tasks export``): then ONNX Runtime runs its model.onnx.
    ``cfg`` is the folder's trained data settings (its ``max_seq_length``, lowered to the model's positions with a
    warning, as training would); the computation runs in the folder's precision unless ``precision`` says another.
    """
    from ..checkpoint.load import load_pretrained
    from ..checkpoint.onnx import is_export_folder, load_export
    from ..checkpoint.tokenizer import check_vocab_fits, load_tokenizer, max_tokens
    from ..protocol import model_inputs
    from ..training.precision import computing_in, folder_precision

    if is_export_folder(folder):  # a `bert-tasks export` folder: its model.onnx on ONNX Runtime, fp32
        model, precision = load_export(folder, head="glue"), "no"
    else:
        model = load_pretrained(folder, task="glue", num_labels=num_labels, backend=backend, trained_head=True).eval()
    tokenizer = load_tokenizer(str(folder))
    check_vocab_fits(tokenizer, model.config, source=folder)
    note = cfg.fit_positions(max_tokens(model.config), folder)
    if note:
        logging.getLogger(__name__).warning(note)
    inputs = tokenizer(text, text_pair, truncation=True, max_length=cfg.max_seq_length, return_tensors="pt",
                       return_token_type_ids=True)
    with torch.no_grad(), computing_in(folder_precision(folder, precision)):
        output = model(**model_inputs(inputs, model))
    return output, inputs, tokenizer


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def tokenizer_fingerprint(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return Hasher.hash(tokenizer)
    # the serialized fast tokenizer holds vocab, normalizer and special tokens: all that changes ids;
    # its truncation/padding fields change with every call's arguments, which we hash separately
    state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    return Hasher.hash([type(tokenizer).__name__, state, getattr(tokenizer, "model_max_length", None)])

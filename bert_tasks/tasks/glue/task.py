"""The GLUE task adapter: tokenizes sentence (pairs), pads batches, computes the loss and scores predictions.

One :class:`GlueTask` serves one of the nine tasks. The loss is exactly the
one ``transformers.BertForSequenceClassification`` computes when given labels
(cross-entropy, or mean squared error on the squeezed logit for STS-B), so the
scratch encoder and the ``transformers`` model train alike.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import BertTasksError
from ...metrics import load_metric
from ..base import TaskBase
from .config import GlueDataConfig
from .data import UNLABELED
from .spec import get_spec

#: bump when preprocessing changes, so cached tokenized datasets are not reused
PREPROCESS_VERSION = 1
PAD_TO_MULTIPLE_OF = 8


class GlueTask(TaskBase):
    head = "glue"
    config_class = GlueDataConfig

    def __init__(self, name: str = "sst2", *, pad_token_id: int = 0, pad_to_multiple_of: int | None = PAD_TO_MULTIPLE_OF):
        self.spec = get_spec(name)
        self.name = name
        #: both are taken from the tokenizer and config by :meth:`preprocess`, since collate sees neither
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    @classmethod
    def for_config(cls, cfg: GlueDataConfig) -> "GlueTask":
        return cls(cfg.task)

    def num_labels(self, cfg: GlueDataConfig | None = None) -> int:
        return get_spec(cfg.task).num_labels if cfg is not None else self.spec.num_labels

    def preprocess(self, raw, tokenizer, cfg: GlueDataConfig, *, train: bool):
        """Tokenize ``text_a``/``text_b``; keep ``idx``, rename ``label`` to ``labels`` (dropped when unlabeled), add ``length``."""
        from datasets.fingerprint import Hasher

        if cfg.task != self.name:
            raise ValueError(f"GlueTask({self.name!r}) got a config for task {cfg.task!r}")
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.pad_to_multiple_of = None if cfg.pad_to_max_length else PAD_TO_MULTIPLE_OF
        labels = np.asarray(raw["label"])
        labeled = bool(len(labels)) and bool((labels != UNLABELED).all())
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
            [raw._fingerprint, _tokenizer_fingerprint(tokenizer), max_length, padding, PREPROCESS_VERSION]
        )
        dropped = [c for c in raw.column_names if c not in ("idx", "label")]
        features = raw.map(encode, batched=True, remove_columns=dropped, new_fingerprint=fingerprint, desc=f"Tokenizing {self.name}")
        return features.rename_column("label", "labels") if labeled else features.remove_columns("label")

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Pad to the longest example (rounded up to a multiple of 8); keep only model inputs and labels."""
        longest = max(len(f["input_ids"]) for f in features)
        multiple = self.pad_to_multiple_of or 1
        width = -(-longest // multiple) * multiple
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features[0]]
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        batch = {k: torch.full((len(features), width), pads[k], dtype=torch.long) for k in keys}
        for row, feature in enumerate(features):
            for key in keys:
                values = torch.as_tensor(feature[key], dtype=torch.long)
                batch[key][row, : len(values)] = values
        if "labels" in features[0]:
            dtype = torch.float32 if self.spec.is_regression else torch.long
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)
        return batch

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs.logits
        labels = batch["labels"]
        if self.spec.is_regression:
            return F.mse_loss(logits.squeeze(-1).float(), labels.view(-1).float())
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), labels.view(-1).long())

    def postprocess(self, logits: Any) -> np.ndarray:
        """Class ids (argmax), or one float score per example for STS-B."""
        if isinstance(logits, torch.Tensor):
            logits = logits.detach().float().cpu().numpy()
        logits = np.asarray(logits)
        if not self.spec.is_regression:
            return logits.argmax(axis=-1)
        if logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        if logits.ndim != 1:
            raise ValueError(f"stsb logits must have shape [N] or [N, 1], got {list(logits.shape)}")
        return logits.astype(np.float32)

    def metrics(self, predictions: Any, references: Any) -> dict[str, float]:
        return {k: float(v) for k, v in load_metric("glue", self.name).compute(predictions=predictions, references=references).items()}


def _tokenizer_fingerprint(tokenizer) -> str:
    from datasets.fingerprint import Hasher

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return Hasher.hash(tokenizer)
    # the serialized fast tokenizer holds vocab, normalizer and special tokens: all that changes ids;
    # its truncation/padding fields change with every call's arguments, which we hash separately
    state = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("truncation", "padding")}
    return Hasher.hash([type(tokenizer).__name__, state, getattr(tokenizer, "model_max_length", None)])


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

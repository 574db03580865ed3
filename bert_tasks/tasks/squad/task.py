"""The SQuAD v1.1 / v2.0 task adapter: the :class:`~bert_tasks.tasks.base.Task` protocol for extractive QA."""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from bert_tasks.tasks.base import TaskBase

from .config import SquadDataConfig
from .features import tokenize_examples
from .postprocess import SquadPredictions, postprocess_predictions
from .scoring import score_predictions

#: Batches are padded to a multiple of this, which keeps tensor shapes few and kernels aligned.
PAD_MULTIPLE = 8
_PADDED_KEYS = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0}  # None: the tokenizer's pad id
_LABEL_KEYS = ("start_positions", "end_positions")


class SquadTask(TaskBase):
    head = "squad"
    config_class = SquadDataConfig

    def __init__(self, version_2: bool = False):
        self.version_2 = version_2
        self.name = "squad_v2" if version_2 else "squad"
        self.pad_token_id = 0

    def num_labels(self, cfg: Any) -> int:
        return 2  # start and end logits

    def preprocess(self, raw: Any, tokenizer: Any, cfg: SquadDataConfig, *, train: bool, cache_dir: Any = None) -> Any:
        """Examples (Hub squad schema) -> windowed features, cached per data, tokenizer and settings."""
        cfg.validate()
        if tokenizer.pad_token_id is not None:
            self.pad_token_id = tokenizer.pad_token_id
        return tokenize_examples(raw, tokenizer, cfg, train=train, cache_dir=cache_dir)

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Pad to the longest feature, rounded up to a multiple of 8; keep labels, drop bookkeeping columns."""
        longest = max(len(f["input_ids"]) for f in features)
        width = -(-longest // PAD_MULTIPLE) * PAD_MULTIPLE
        batch: dict[str, torch.Tensor] = {}
        for key, pad in _PADDED_KEYS.items():
            if key not in features[0] and key != "attention_mask":
                continue
            pad = self.pad_token_id if pad is None else pad
            rows = torch.full((len(features), width), pad, dtype=torch.long)
            for i, f in enumerate(features):
                values = f[key] if key in f else [1] * len(f["input_ids"])
                rows[i, : len(values)] = torch.as_tensor(values, dtype=torch.long)
            batch[key] = rows
        for key in _LABEL_KEYS:
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
        return batch

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean of start and end cross-entropy; positions past the sequence are ignored, as in HF."""
        start_logits, end_logits = outputs.start_logits, outputs.end_logits
        ignored = start_logits.size(1)
        start = batch["start_positions"].reshape(-1).clamp(0, ignored)
        end = batch["end_positions"].reshape(-1).clamp(0, ignored)
        start_loss = F.cross_entropy(start_logits, start, ignore_index=ignored)
        end_loss = F.cross_entropy(end_logits, end, ignore_index=ignored)
        return (start_loss + end_loss) / 2

    def postprocess(
        self, examples: Any, features: Any, start_logits: Any, end_logits: Any, cfg: SquadDataConfig | None = None, **overrides: Any
    ) -> SquadPredictions:
        """Per-window logits -> answers, n-best lists and (v2) null odds, with the config's search settings."""
        cfg = cfg or SquadDataConfig(version_2_with_negative=self.version_2)
        settings = {
            "n_best_size": cfg.n_best_size,
            "max_answer_length": cfg.max_answer_length,
            "version_2_with_negative": self.version_2 or cfg.version_2_with_negative,
            "null_score_diff_threshold": cfg.null_score_diff_threshold,
        }
        settings.update(overrides)
        return postprocess_predictions(examples, features, start_logits, end_logits, **settings)

    def metrics(self, predictions: Any, references: Any) -> dict[str, float]:
        """Official scores; ``predictions`` is a :class:`SquadPredictions` or an id -> answer mapping."""
        if isinstance(predictions, SquadPredictions):
            version_2 = self.version_2 or bool(predictions.null_odds)  # only SQuAD 2.0 postprocessing gives null odds
            return score_predictions(references, predictions.predictions, predictions.null_odds or None, version_2=version_2)
        return score_predictions(references, predictions, version_2=self.version_2)


SQUAD = SquadTask(version_2=False)
SQUAD_V2 = SquadTask(version_2=True)

"""A toy classification task and model for testing the shared training loop in and across processes."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from bert_tasks.model import BertConfig, BertForSequenceClassification
from bert_tasks.protocol import TaskBase

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class ToyTask(TaskBase):
    """Label = which half of the vocabulary a sequence is drawn from: learnable in a few steps."""

    name, head = "toy", "glue"

    def __init__(self, poison_step: int | None = None):
        self.calls = 0
        self.poison_step = poison_step

    def collate(self, features):
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.zeros(len(features), longest, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, f in enumerate(features):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[i, : len(f["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["labels"] for f in features])}

    def loss(self, outputs, batch):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(outputs.logits, batch["labels"])
        return loss * float("nan") if self.calls == self.poison_step else loss


def toy_dataset(n: int = 48, seed: int = 0) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        length = int(rng.integers(4, 20))
        label = int(rng.integers(0, 2))
        ids = rng.integers(8, 50, size=length) + 49 * label
        rows.append({"input_ids": [2, *ids.tolist()], "labels": label})
    return datasets.Dataset.from_list(rows)


def new_model(seed: int = 0, **pooling):
    """``pooling``: BertConfig's pooling fields (pooling, attention_score, attention_query)."""
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**TINY, **pooling))


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}

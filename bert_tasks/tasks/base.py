"""The one protocol every task adapter implements.

A task turns raw examples into model inputs and model outputs into scored
predictions. The training loop (:mod:`bert_tasks.train`) and the CLI only ever
talk to a task through this protocol, so adding a task never touches them.

The six steps, in the order data flows through them:

1. ``preprocess(raw, tokenizer, cfg, train)`` -> tokenized ``datasets.Dataset``
   (features; one example may give several, as SQuAD windows do).
2. ``collate(features)`` -> dict of tensors with at least ``input_ids`` and
   ``attention_mask``; may hold labels and bookkeeping tensors.
3. ``head`` -> which model head to build: ``"squad"``, ``"glue"`` or ``"mlm"``,
   the ``task`` argument of :func:`bert_tasks.load_pretrained`; ``num_labels(cfg)``
   says how many outputs it has.
4. ``loss(outputs, batch)`` -> scalar tensor. Losses live in the task, not the
   model, so the scratch encoder and the ``transformers`` model (``--backend hf``)
   train through the same code.
5. ``postprocess(...)`` -> predictions in the task's official output format.
6. ``metrics(predictions, references)`` -> dict of floats, from an offline
   ``evaluate`` module.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import torch

#: Batch keys that are passed to the model's forward; everything else stays with the task.
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in MODEL_INPUT_KEYS if k in batch}


@runtime_checkable
class Task(Protocol):
    name: str
    head: str
    #: dataclass of the task's data and pre/postprocessing settings: the ``data:`` section of a recipe
    config_class: type

    def num_labels(self, cfg: Any) -> int | None: ...

    def preprocess(self, raw: Any, tokenizer: Any, cfg: Any, *, train: bool) -> Any: ...

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]: ...

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        """Run the model on a batch; the default passes the standard inputs only."""
        ...

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor: ...

    def postprocess(self, *args: Any, **kwargs: Any) -> Any: ...

    def metrics(self, predictions: Any, references: Any) -> dict[str, float]: ...


class TaskBase:
    """Shared defaults for tasks; a task overrides what differs."""

    name: str = ""
    head: str = ""
    config_class: type = object

    def num_labels(self, cfg: Any) -> int | None:
        return None

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        return model(**model_inputs(batch))

"""The one protocol every task implements, and the pieces tasks share.

It sits below the training loop (:mod:`bert_tasks.training`) and imports only the model's helpers, so the loop can
drive any task without importing one. :class:`TaskBase` is the interface a task implements (:class:`Task` its typed
shape, for type checks); its data settings derive :class:`bert_tasks.config.DataSettings`. A task is two things:

**Data protocol**, in the order data flows through it:

1. ``preprocess(raw, tokenizer, cfg, *, train)`` -> features (one example may give several, as SQuAD windows do);
2. ``collate(features)`` -> a batch of tensors with at least ``input_ids`` and ``attention_mask``;
3. ``forward(model, batch)`` -> outputs, and ``loss(outputs, batch)`` -> a scalar. Losses live in the task, not
   the model, so our encoder and the ``transformers`` model (``--backend hf``) train through the same code;
4. ``prediction_outputs``: which outputs :func:`bert_tasks.training.predict` collects, per example or per token;
5. ``postprocess(...)`` -> predictions in the task's official format, ``metrics(...)`` -> floats.

**Run hooks**: the few steps of a run only the task knows. :func:`bert_tasks.runner.train` does the rest,
the same for every task (output folder, seeding, the model, the loop, saving, the model card):

- ``read_data(recipe)``: read and check every input before anything is written;
- ``data_in_run(data, run)``: data that lives in the run folder (SQuAD's invented quickstart sample);
- ``run_tokenizer(recipe, data, run)``: the tokenizer (default: the model's own);
- ``train_features(data, tokenizer, recipe, run)``, ``train_collate(features, recipe, run)``;
- ``evaluator(data, tokenizer, cfg, batch_size)``: a callable that scores a model and writes the task's
  prediction files; training and ``bert-tasks eval`` both use it;
- ``model_labels(cfg)``, ``model_config(cfg)``: a new head's labels and config entries;
- ``extra_outputs(...)``: files beyond the scores (GLUE's leaderboard files);
- ``card(recipe, metrics)``, ``headline(metrics)``: what the model card and the summary line say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .config import DataSettings, Recipe
from .model.fast import takes_token_types

#: Batch keys that are passed to the model's forward; everything else stays with the task.
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")
#: Batches are padded to a multiple of this, which keeps tensor shapes few and kernels aligned.
PAD_MULTIPLE = 8

#: scores ``model`` (under ``accelerator``, or None), writes the task's prediction files into ``output_dir``
#: when one is given, and returns the metrics
Evaluator = Callable[[torch.nn.Module, Any, "Path | None"], dict[str, Any]]


def model_inputs(batch: Mapping[str, Any], model: Any = None) -> dict[str, torch.Tensor]:
    """The batch's model inputs; ``token_type_ids`` only for a model that takes them (transformers' DistilBERT and
    ModernBERT have no token types, and refuse the argument)."""
    keys = MODEL_INPUT_KEYS if model is None or takes_token_types(model) else MODEL_INPUT_KEYS[:2]
    return {k: batch[k] for k in keys if k in batch}




def pad_batch(features: list[Mapping[str, Any]], pads: Mapping[str, int], multiple: int | None = PAD_MULTIPLE
              ) -> dict[str, torch.Tensor]:
    """Stack the ``pads`` keys of ``features`` into [B, T] tensors, padded to the longest (rounded up to ``multiple``).

    ``pads`` maps each key to its padding value; a missing ``attention_mask`` is made from the lengths.
    """
    longest = max(len(f["input_ids"]) for f in features)
    width = -(-longest // (multiple or 1)) * (multiple or 1)
    batch: dict[str, torch.Tensor] = {}
    for key, pad in pads.items():
        if key not in features[0] and key != "attention_mask":
            continue
        rows = torch.full((len(features), width), pad, dtype=torch.long)
        for i, feature in enumerate(features):
            values = feature[key] if key in feature else [1] * len(feature["input_ids"])
            rows[i, : len(values)] = torch.as_tensor(values, dtype=torch.long)
        batch[key] = rows
    return batch


@dataclass
class RunContext:
    """What a run's hooks may use of the run in progress (made by the runner)."""

    recipe: Recipe
    output_dir: Path
    accelerator: Any
    #: the checkpoint a resumed run continues from, or None
    resume_from: Path | None = None


class TaskBase:
    """The one task interface: the data protocol a task implements, and the run hooks, with defaults, that it
    overrides where it differs. ``cfg`` is the task's ``data:`` settings (a :class:`bert_tasks.config.DataSettings`),
    ``recipe`` the whole :class:`bert_tasks.config.Recipe`."""

    name: str = ""
    #: the model head it trains: a key of :data:`bert_tasks.model.heads.HEADS`
    head: str = ""
    #: output name -> "example" or "token": what :func:`bert_tasks.training.predict` collects
    prediction_outputs: Mapping[str, str] = {"logits": "example"}

    # ------------------------------------------------------------------ data protocol

    def num_labels(self, cfg: DataSettings) -> int | None:
        return None

    def preprocess(self, raw: Any, tokenizer: Any, cfg: DataSettings, *, train: bool) -> Any:
        """Raw examples -> features (one example may give several, as SQuAD windows do)."""
        raise NotImplementedError(f"task {self.name!r} has no preprocess")

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Features -> a batch with at least ``input_ids`` and ``attention_mask``."""
        raise NotImplementedError(f"task {self.name!r} has no collate")

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        return model(**model_inputs(batch, model))

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"task {self.name!r} has no loss")

    def postprocess(self, *args: Any, **kwargs: Any) -> Any:
        """Outputs -> predictions in the task's official format."""
        raise NotImplementedError(f"task {self.name!r} has no postprocess")

    def metrics(self, predictions: Any, references: Any) -> dict[str, float]:
        raise NotImplementedError(f"task {self.name!r} has no metrics")

    # ------------------------------------------------------------------ run hooks

    def read_data(self, recipe: Recipe) -> Any:
        """Every input of a run, read and checked before the output folder is touched."""
        raise NotImplementedError(f"task {self.name!r} does not train")

    def read_eval_data(self, cfg: DataSettings) -> Any:
        """The evaluation data of ``bert-tasks eval``."""
        raise NotImplementedError(f"task {self.name!r} has no eval command")

    def data_in_run(self, data: Any, run: RunContext) -> Any:
        return data

    def run_tokenizer(self, recipe: Recipe, data: Any, run: RunContext) -> Any:
        return None  # the runner loads the model's own

    def train_features(self, data: Any, tokenizer: Any, recipe: Recipe, run: RunContext) -> Any:
        return self.preprocess(data["train"], tokenizer, recipe.data, train=True)

    def train_collate(self, features: Any, recipe: Recipe, run: RunContext) -> Callable | None:
        return None  # the task's own collate

    def evaluator(self, data: Any, tokenizer: Any, cfg: DataSettings, batch_size: int) -> Evaluator | None:
        return None

    def check_trained_folder(self, folder: Path, cfg: DataSettings) -> None:
        """Refuse a trained folder this task cannot evaluate, before its data is read (the head is checked anyway)."""

    def model_labels(self, cfg: DataSettings) -> dict[int, str] | None:
        return None

    def model_config(self, cfg: DataSettings) -> dict[str, Any]:
        """config.json entries the trained model keeps (read back by inference)."""
        return {}

    def extra_outputs(self, model: Any, tokenizer: Any, data: Any, cfg: DataSettings, output_dir: Path, accelerator: Any,
                      batch_size: int) -> None:
        """Files beyond the scores, written after training and by ``bert-tasks eval``."""

    def card(self, recipe: Recipe, metrics: dict[str, Any]) -> dict[str, Any]:
        """Model-card details: ``dataset_name``, ``dataset_type``, ``eval_set`` (the set the scores are from)."""
        return {}

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The metrics a summary line shows."""
        return metrics

    #: the dev metric a grid search maximises (None: the task has none)
    main_metric_name: str | None = None

    def metric_names(self, cfg: DataSettings) -> tuple[str, ...] | None:
        """The dev metrics an evaluation reports, where they are known before one runs (``--select-best`` is checked
        against them before anything is written); None: known only once the first evaluation reports them."""
        return None

    def main_metric(self, metrics: dict[str, Any]) -> float | None:
        value = metrics.get(self.main_metric_name) if self.main_metric_name else None
        return float(value) if isinstance(value, (int, float)) else None


#: the name type hints use for any task: every task derives TaskBase, the one interface
Task = TaskBase

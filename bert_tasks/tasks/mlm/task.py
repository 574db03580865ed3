"""The masked-LM task adapter: packing, dynamic masking, loss and evaluation.

The scratch ``BertForMaskedLM`` can score only the predicted positions
(``prediction_mask``), which spares the [B, T, V] logits; ``transformers``'
model returns them all. :meth:`MlmTask.forward` picks whichever the model
supports and :meth:`MlmTask.loss` accepts both shapes.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import datasets
import torch
import torch.nn.functional as F

from torch.utils.data import DataLoader

from ...errors import BertTasksError
from ...model.fast import unwrap
from ...protocol import Evaluator, RunContext, TaskBase, model_inputs
from ...training.batching import EpochBatchSampler, feature_lengths
from .config import MlmDataConfig
from .corpus import load_corpus, tokenize_and_pack
from .masking import IGNORE_INDEX, MaskingCollator
from .run import EpochPositionMasking, corpus_name, materialize, run_tokenizer


def _logits(outputs: Any) -> torch.Tensor:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping):
        return outputs["logits"]
    logits = getattr(outputs, "logits", None)
    return logits if logits is not None else outputs[0]


def prediction_mask(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return batch["prediction_mask"] if "prediction_mask" in batch else batch["labels"] != IGNORE_INDEX


def predicted_logits(outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """[N, V] logits of the predicted positions, in ``labels[prediction_mask]`` (row-major) order."""
    logits = _logits(outputs)
    return logits if logits.dim() == 2 else logits[prediction_mask(batch)]


def predicted_labels(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return batch["labels"][prediction_mask(batch)]


class MlmTask(TaskBase):
    name = "mlm"
    head = "mlm"
    main_metric_name = "masked_accuracy"
    prediction_outputs = {"logits": "token"}

    def metric_names(self, cfg: Any) -> tuple[str, ...]:
        return ("eval_loss", "perplexity", "masked_accuracy")

    def __init__(self, seed: int | None = None):
        #: seeds the training masks; evaluation masks use ``cfg.eval_mask_seed``
        self.seed = seed
        self.train_collator: MaskingCollator | None = None
        self.eval_collator: MaskingCollator | None = None

    def configure(self, tokenizer, cfg: MlmDataConfig) -> None:
        """Build the training and evaluation collators; :meth:`preprocess` calls it on first use."""
        settings = dict(mlm_probability=cfg.mlm_probability, whole_word_masking=cfg.whole_word_masking, max_length=cfg.max_seq_length)
        self.train_collator = MaskingCollator(tokenizer, seed=self.seed, **settings)
        self.eval_collator = MaskingCollator(tokenizer, seed=cfg.eval_mask_seed, deterministic=True, **settings)

    def preprocess(self, raw: Any, tokenizer: Any, cfg: MlmDataConfig, *, train: bool) -> Any:
        if self.train_collator is None:
            self.configure(tokenizer, cfg)
        features = tokenize_and_pack(raw, tokenizer, cfg.max_seq_length, line_by_line=cfg.line_by_line)
        if not train and cfg.max_eval_samples is not None:
            if isinstance(features, datasets.Dataset):
                features = features.select(range(min(cfg.max_eval_samples, len(features))))
            else:
                features = features.take(cfg.max_eval_samples)
        return features

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        return self._collator(self.train_collator)(features)

    def eval_collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Fixed masks: the same sample is masked the same way in every evaluation."""
        return self._collator(self.eval_collator)(features)

    @staticmethod
    def _collator(collator: MaskingCollator | None) -> MaskingCollator:
        if collator is None:
            raise RuntimeError("MlmTask has no tokenizer yet: call configure(tokenizer, cfg) or preprocess first")
        return collator

    def forward(self, model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> Any:
        if getattr(unwrap(model), "supports_prediction_mask", False):
            return model(**model_inputs(batch, model), prediction_mask=prediction_mask(batch))
        return model(**model_inputs(batch, model))

    def loss(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over the predicted positions, from [N, V] or [B, T, V] logits."""
        logits = _logits(outputs)
        if logits.dim() == 3:
            return F.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)
        return F.cross_entropy(logits.float(), predicted_labels(batch))

    def postprocess(self, outputs: Any, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted ids, true ids) at the predicted positions."""
        return predicted_logits(outputs, batch).argmax(dim=-1), predicted_labels(batch)

    def metrics(self, predictions: Any, references: Any) -> dict[str, float]:
        predictions, references = torch.as_tensor(predictions), torch.as_tensor(references)
        if references.numel() == 0:
            raise BertTasksError("no predicted tokens to score")
        return {"masked_accuracy": (predictions == references).float().mean().item()}

    # ------------------------------------------------------------------ run hooks (the pieces are in run.py)

    def read_data(self, recipe: Any) -> Any:
        return load_corpus(recipe.data)

    def run_tokenizer(self, recipe: Any, data: Any, run: RunContext) -> Any:
        return run_tokenizer(recipe, data["train"], run.output_dir, run.accelerator)

    def train_features(self, data: Any, tokenizer: Any, recipe: Any, run: RunContext) -> Any:
        self.seed = recipe.train.seed
        train = recipe.train
        limit = train.max_steps * train.batch_size * train.gradient_accumulation_steps if train.max_steps else None
        features = self.preprocess(data["train"], tokenizer, recipe.data, train=True)
        return materialize(features, recipe.data, tokenizer, train=True, limit=limit)

    def train_collate(self, features: Any, recipe: Any, run: RunContext) -> EpochPositionMasking:
        accelerator = run.accelerator
        masking = EpochPositionMasking(self.train_collator, seed=recipe.train.seed, num_examples=len(features),
                                       batch_size=recipe.train.batch_size, num_processes=accelerator.num_processes,
                                       process_index=accelerator.process_index)
        masking.resume_from_checkpoint(run.resume_from)
        return masking

    def evaluator(self, data: Any, tokenizer: Any, cfg: MlmDataConfig, batch_size: int) -> Evaluator:
        """Loss, perplexity and masked-token accuracy on the held-out text, with fixed masks."""
        features = materialize(self.preprocess(data["validation"], tokenizer, cfg, train=False), cfg, tokenizer, train=False)
        if len(features) == 0:
            raise BertTasksError("the validation split holds no text; give a validation_file or raise validation_split")
        sampler = EpochBatchSampler(feature_lengths(features), batch_size, seed=0, sort=True)
        loader = DataLoader(features, batch_sampler=sampler, collate_fn=self.eval_collate)
        prepared: dict[str, Any] = {}

        def evaluate(model, accelerator, output_dir) -> dict[str, Any]:
            distributed = accelerator is not None and accelerator.num_processes > 1
            # prepared on first use, after fit's own loader, so checkpoints list the loaders in one order
            if "loader" not in prepared:
                prepared["loader"] = accelerator.prepare_data_loader(loader) if distributed else loader
            metrics = evaluate_mlm(model, prepared["loader"], accelerator if distributed else None)
            return {**metrics, "eval_samples": len(features)}

        return evaluate

    def card(self, recipe: Any, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg: MlmDataConfig = recipe.data
        card = {"dataset_name": corpus_name(cfg), "dataset_type": "text"}
        if "eval_tokens" in metrics:
            card["eval_set"] = (f"{metrics['eval_tokens']} masked tokens of {metrics['eval_samples']} held-out sequences"
                                f" (masks fixed by eval_mask_seed {cfg.eval_mask_seed})")
        return card


@torch.no_grad()
def evaluate_mlm(model: torch.nn.Module, dataloader, accelerator=None) -> dict[str, float]:
    """Loss, perplexity and accuracy over every predicted token of ``dataloader`` (token-weighted, not per batch).

    With an ``accelerator`` the per-sample sums are gathered with ``gather_for_metrics``,
    which drops the samples a distributed sampler repeats to even out the last batch.
    """
    task = MlmTask()
    was_training = model.training
    model.eval()
    device = None if accelerator is not None else next(model.parameters()).device
    totals = torch.zeros(3, dtype=torch.float64)  # summed loss, predicted tokens, correct predictions
    try:
        for batch in dataloader:
            if device is not None:
                batch = {k: v.to(device) for k, v in batch.items()}
            logits = predicted_logits(task.forward(model, batch), batch).float()
            labels = predicted_labels(batch)
            rows = prediction_mask(batch).nonzero()[:, 0]
            per_sample = torch.zeros(3, len(batch["labels"]), dtype=torch.float64, device=logits.device)
            per_sample[0].index_add_(0, rows, F.cross_entropy(logits, labels, reduction="none").double())
            per_sample[1].index_add_(0, rows, torch.ones_like(labels, dtype=torch.float64))
            per_sample[2].index_add_(0, rows, (logits.argmax(-1) == labels).double())
            if accelerator is not None:
                per_sample = accelerator.gather_for_metrics(per_sample.T.contiguous()).T
            totals += per_sample.sum(dim=1).cpu()
    finally:
        model.train(was_training)
    loss_sum, tokens, correct = totals.tolist()
    if tokens == 0:
        raise BertTasksError("the validation set has no tokens to predict")
    eval_loss = loss_sum / tokens
    try:
        perplexity = math.exp(eval_loss)
    except OverflowError:
        perplexity = float("inf")
    return {"eval_loss": eval_loss, "perplexity": perplexity, "masked_accuracy": correct / tokens, "eval_tokens": int(tokens)}

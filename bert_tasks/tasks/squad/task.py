"""The SQuAD v1.1 / v2.0 task adapter: the :class:`~bert_tasks.protocol.Task` protocol for extractive QA.

Its run hooks read the data (or write the invented quickstart sample into the run folder), window
it, and score a model with the official EM/F1 into ``predictions.json``, ``nbest_predictions.json``
and (v2.0) ``null_odds.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ...checkpoint.modelcard import eval_set_text
from ...protocol import Evaluator, RunContext, TaskBase, pad_batch
from ...training.prediction import predict
from .config import SYNTHETIC_DIR, VERSION_KEY, SquadDataConfig
from .data import load_from_config, load_squad_examples
from .features import tokenize_examples
from .postprocess import SquadPredictions, postprocess_predictions, write_prediction_files
from .scoring import score_predictions
from .synthetic import write_synthetic_splits

_PADDED_KEYS = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0}  # None: the tokenizer's pad id
_LABEL_KEYS = ("start_positions", "end_positions")


class SquadTask(TaskBase):
    head = "squad"
    main_metric_name = "f1"
    prediction_outputs = {"start_logits": "token", "end_logits": "token"}

    def __init__(self, version_2: bool = False):
        self.version_2 = version_2
        self.name = "squad_v2" if version_2 else "squad"
        self.pad_token_id = 0

    def num_labels(self, cfg: Any) -> int:
        return 2  # start and end logits

    def metric_names(self, cfg: Any) -> tuple[str, ...] | None:
        return None if self.version_2 else ("exact_match", "f1")  # SQuAD 2.0 adds per-kind scores

    def preprocess(self, raw: Any, tokenizer: Any, cfg: SquadDataConfig, *, train: bool, cache_dir: Any = None) -> Any:
        """Examples (Hub squad schema) -> windowed features, cached per data, tokenizer and settings."""
        cfg.validate()
        if tokenizer.pad_token_id is not None:
            self.pad_token_id = tokenizer.pad_token_id
        return tokenize_examples(raw, tokenizer, cfg, train=train, cache_dir=cache_dir)

    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """Pad to the longest feature, rounded up to a multiple of 8; keep labels, drop bookkeeping columns."""
        pads = {key: self.pad_token_id if pad is None else pad for key, pad in _PADDED_KEYS.items()}
        batch = pad_batch(features, pads)
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

    # ------------------------------------------------------------------ run hooks

    def read_data(self, recipe: Any) -> dict[str, Any]:
        """The user's data, read and checked before the output folder is touched (the synthetic sample comes later)."""
        cfg: SquadDataConfig = recipe.data
        if cfg.synthetic:
            return {}
        data = {"train": load_from_config(cfg, train=True)}
        if cfg.validation_file or cfg.dataset:
            data["validation"] = load_from_config(cfg, train=False)
        return data

    def read_eval_data(self, cfg: SquadDataConfig) -> dict[str, Any]:
        return {"validation": load_from_config(cfg, train=False)}

    def data_in_run(self, data: dict[str, Any], run: RunContext) -> dict[str, Any]:
        """``synthetic: true``: the invented quickstart set, written into the run folder so the run documents its data."""
        cfg: SquadDataConfig = run.recipe.data
        if not cfg.synthetic:
            return data
        paths = write_synthetic_splits(run.output_dir / SYNTHETIC_DIR, version_2=cfg.version_2_with_negative)
        loaded = {}
        for split, limit in (("train", cfg.max_train_samples), ("validation", cfg.max_eval_samples)):
            examples = load_squad_examples(paths[split], version_2=cfg.version_2_with_negative, split_hint=split)
            loaded[split] = examples.select(range(limit)) if limit is not None and limit < len(examples) else examples
        return loaded

    def evaluator(self, data: dict[str, Any], tokenizer: Any, cfg: SquadDataConfig, batch_size: int) -> Evaluator | None:
        """Official EM/F1 over the validation set; with an output folder, the official prediction files too."""
        examples = data.get("validation")
        if examples is None:
            return None
        features = self.preprocess(examples, tokenizer, cfg, train=False)

        def evaluate(model, accelerator, output_dir: Path | None) -> dict[str, Any]:
            logits = predict(model, self, features, batch_size=batch_size, accelerator=accelerator)
            predictions = self.postprocess(examples, features, logits["start_logits"], logits["end_logits"], cfg)
            if output_dir is not None and (accelerator is None or accelerator.is_main_process):
                write_prediction_files(output_dir, predictions, cfg.version_2_with_negative)
            return self.metrics(predictions, examples)

        return evaluate

    def model_config(self, cfg: SquadDataConfig) -> dict[str, Any]:
        return {VERSION_KEY: cfg.version_2_with_negative}  # tells QuestionAnswerer the version when recipe.yaml is gone

    def card(self, recipe: Any, metrics: dict[str, Any]) -> dict[str, Any]:
        cfg: SquadDataConfig = recipe.data
        kind = cfg.task
        if cfg.synthetic:
            name, kind = "bert-tasks synthetic SQuAD (quickstart)", "synthetic"
        elif cfg.train_file:
            name = Path(cfg.train_file).name
        else:
            name = "SQuAD v2.0" if cfg.version_2_with_negative else "SQuAD v1.1"
        card = {"dataset_name": name, "dataset_type": kind}
        if metrics:
            card["eval_set"] = eval_set_text(f"{name} validation", int(metrics["total"]), "questions", cfg.max_eval_samples)
        return card

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: metrics[k] for k in ("exact_match", "f1", "total") if k in metrics}


SQUAD = SquadTask(version_2=False)
SQUAD_V2 = SquadTask(version_2=True)

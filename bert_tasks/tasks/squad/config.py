"""Data and pre/postprocessing settings of the SQuAD task: the ``data:`` section of a recipe.

Defaults follow the Hugging Face ``run_qa.py`` example so results are comparable. The data comes
from the Hub (``dataset``), the user's files (``train_file``/``validation_file``), or, with
``synthetic``, an invented SQuAD-format set written into the run folder (the offline quickstart).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from bert_tasks.errors import BertTasksError

HUB_DATASETS = ("squad", "squad_v2")

# [CLS] question [SEP] context [SEP]
SPECIAL_TOKENS_IN_PAIR = 3


@dataclass
class SquadDataConfig:
    dataset: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    version_2_with_negative: bool = False
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0
    skip_bad_examples: bool = False
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    preprocessing_num_workers: int | None = None
    #: write the invented quickstart set (synthetic.py) into OUTPUT/data and train and evaluate on it
    synthetic: bool = False
    #: also score the untrained model first, so a run shows what fine-tuning gained
    eval_before_training: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str | None = None) -> "SquadDataConfig":
        """Build from a recipe's ``data:`` mapping, naming any unknown key instead of a TypeError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BertTasksError(
                f"unknown SQuAD data setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=source
            )
        return cls(**dict(values))

    def validate(self) -> "SquadDataConfig":
        """Reject settings that cannot work, before any data is read."""

        def fail(reason: str) -> None:
            raise BertTasksError(reason, record="data config")

        if self.dataset is not None and self.dataset not in HUB_DATASETS:
            fail(f"unknown dataset {self.dataset!r}; known: {', '.join(HUB_DATASETS)} (or pass --train-file/--validation-file)")
        if self.synthetic and (self.dataset or self.train_file or self.validation_file):
            fail("synthetic: true writes its own data; drop dataset, train_file and validation_file (or synthetic)")
        if self.dataset == "squad_v2" and not self.version_2_with_negative:
            fail("dataset squad_v2 has unanswerable questions; set version_2_with_negative (--version-2-with-negative)")
        for name in ("max_seq_length", "doc_stride", "max_query_length", "n_best_size", "max_answer_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_train_samples", "max_eval_samples", "preprocessing_num_workers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                fail(f"{name} must be a positive integer or null, got {value!r}")
        context_budget = self.max_seq_length - self.max_query_length - SPECIAL_TOKENS_IN_PAIR
        if context_budget < 1:
            fail(
                f"max_seq_length {self.max_seq_length} leaves no room for context after a "
                f"{self.max_query_length}-token question and {SPECIAL_TOKENS_IN_PAIR} special tokens"
            )
        if self.doc_stride >= context_budget:
            fail(
                f"doc_stride {self.doc_stride} must be smaller than the context room of each window "
                f"({context_budget} = max_seq_length - max_query_length - {SPECIAL_TOKENS_IN_PAIR}); windows would not advance"
            )
        if not isinstance(self.null_score_diff_threshold, (int, float)) or self.null_score_diff_threshold != self.null_score_diff_threshold:
            fail(f"null_score_diff_threshold must be a number, got {self.null_score_diff_threshold!r}")
        return self

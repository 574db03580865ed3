"""Data settings of masked-LM pretraining: the ``data:`` section of an MLM recipe.

The text comes from exactly one source: the user's own files (``train_files``,
plain text or JSON Lines) or a Hub dataset (``dataset``). Without a
``validation_file`` the first ``validation_split`` of the documents is held
out; a streamed corpus has no known length, so it holds out its first
``streaming_validation_lines`` documents instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ...errors import BertTasksError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# A trained WordPiece vocabulary holds every character of the corpus; any Latin text needs a-z.
MIN_ALPHABET = 26
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + MIN_ALPHABET
# [CLS] + [SEP] and enough room left for real context
MIN_SEQ_LENGTH = 8


@dataclass
class MlmDataConfig:
    train_files: list[str] = field(default_factory=list)
    validation_file: str | None = None
    #: share of the documents held out for evaluation when there is no validation_file
    validation_split: float = 0.01
    dataset: str | None = None
    dataset_config: str | None = None
    streaming: bool = False
    #: with streaming and no validation_file, this many leading documents form the validation split
    streaming_validation_lines: int = 1000
    text_column: str = "text"
    #: a tokenizer folder or Hub id; None trains a WordPiece vocabulary on the training text
    tokenizer: str | None = None
    vocab_size: int = 8192
    lowercase: bool = True
    min_frequency: int = 2
    max_seq_length: int = 128
    line_by_line: bool = False
    mlm_probability: float = 0.15
    whole_word_masking: bool = False
    eval_mask_seed: int = 1234
    max_eval_samples: int | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, source: str | None = None) -> "MlmDataConfig":
        """Build from a recipe's ``data:`` mapping, naming any unknown key instead of a TypeError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BertTasksError(f"unknown MLM data setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=source)
        values = dict(values)
        if isinstance(values.get("train_files"), str):
            values["train_files"] = [values["train_files"]]
        return cls(**values)

    def validate(self, source: str | None = None) -> "MlmDataConfig":
        """Reject settings that cannot work, before any data is read; ``source`` names the recipe file."""

        def fail(key: str, reason: str) -> None:
            raise BertTasksError(reason, file=source, record=f"key {key}")

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not isinstance(self.train_files, (list, tuple)) or not all(isinstance(f, str) and f for f in self.train_files):
            fail("train_files", f"train_files must be a list of file paths, got {self.train_files!r}")
        if bool(self.train_files) == bool(self.dataset):
            fail("train_files", "give exactly one text source: train_files or dataset")
        if self.dataset_config and not self.dataset:
            fail("dataset_config", "dataset_config needs dataset")
        if not isinstance(self.validation_split, (int, float)) or not 0 < self.validation_split < 1:
            fail("validation_split", f"validation_split must be between 0 and 1 (exclusive), got {self.validation_split!r}")
        if not is_int(self.streaming_validation_lines) or self.streaming_validation_lines < 1:
            fail("streaming_validation_lines", f"streaming_validation_lines must be a positive integer, got {self.streaming_validation_lines!r}")
        if not isinstance(self.text_column, str) or not self.text_column:
            fail("text_column", "text_column must be a non-empty column name")
        if self.tokenizer is None:
            if not is_int(self.vocab_size) or self.vocab_size < MIN_VOCAB_SIZE:
                fail(
                    "vocab_size",
                    f"vocab_size {self.vocab_size!r} is too small: it must hold the {len(SPECIAL_TOKENS)} special tokens "
                    f"and at least a {MIN_ALPHABET}-letter alphabet (>= {MIN_VOCAB_SIZE})",
                )
            if not is_int(self.min_frequency) or self.min_frequency < 1:
                fail("min_frequency", f"min_frequency must be a positive integer, got {self.min_frequency!r}")
        if not is_int(self.max_seq_length) or self.max_seq_length < MIN_SEQ_LENGTH:
            fail("max_seq_length", f"max_seq_length must be an integer >= {MIN_SEQ_LENGTH}, got {self.max_seq_length!r}")
        if not isinstance(self.mlm_probability, (int, float)) or isinstance(self.mlm_probability, bool) or not 0 < self.mlm_probability < 1:
            fail("mlm_probability", f"mlm_probability must be between 0 and 1 (exclusive), got {self.mlm_probability!r}")
        if not is_int(self.eval_mask_seed):
            fail("eval_mask_seed", f"eval_mask_seed must be an integer, got {self.eval_mask_seed!r}")
        if self.max_eval_samples is not None and (not is_int(self.max_eval_samples) or self.max_eval_samples < 1):
            fail("max_eval_samples", f"max_eval_samples must be a positive integer or null, got {self.max_eval_samples!r}")
        return self

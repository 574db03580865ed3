"""Data settings of masked-LM pretraining: the ``data:`` section of an MLM recipe.

The text comes from exactly one source: the user's own files (``train_files``,
plain text or JSON Lines) or a Hub dataset (``dataset``). Without a
``validation_file`` the first ``validation_split`` of the documents is held
out; a streamed corpus has no known length, so it holds out its first
``streaming_validation_lines`` documents instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import DataSettings, require, setting

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# A trained WordPiece vocabulary holds every character of the corpus; any Latin text needs a-z.
MIN_ALPHABET = 26
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + MIN_ALPHABET
# [CLS] + [SEP] and enough room left for real context
MIN_SEQ_LENGTH = 8


@dataclass
class MlmDataConfig(DataSettings):
    train_files: list[str] = setting(
        help="Plain text (one document a line) or JSON Lines with a 'text' field; repeatable.", factory=list,
        flags=("--train-file",), source="files", path=True)
    validation_file: str | None = setting(
        None, "Held-out text; default: the first --validation-split of the documents.", path=True)
    validation_split: float = setting(0.01, "Share of the documents held out for evaluation.", above=0, below=1)
    #: a floor under validation_split: 15,000 words are about 20,000 tokens, 3,000 of them masked at 15%, so the
    #: held-out accuracy is measured on thousands of tokens, not a handful (capped at half the corpus)
    validation_min_words: int = setting(15_000, "Hold out at least this many words (about 3,000 masked tokens).",
                                        cli=False, at_least=0)
    dataset: str | None = setting(None, "A Hub dataset id (needs a network or a cache), instead of --train-file.",
                                  source="hub")
    dataset_config: str | None = setting(None, "The Hub dataset's configuration, e.g. wikitext-103-raw-v1.", source="hub")
    streaming: bool = setting(False, "Read the corpus lazily; with --max-steps only as far as training needs.")
    #: with streaming and no validation_file, this many leading documents form the validation split
    streaming_validation_lines: int = setting(1000, "Leading documents held out of a streamed corpus.", cli=False,
                                              at_least=1)
    text_column: str = setting("text", "Field or column holding the text.")
    tokenizer: str | None = setting(
        None, "Tokenizer folder or Hub id; default: train WordPiece on the corpus (or the --model's own).", path=True)
    vocab_size: int = setting(8192, "Size of the WordPiece vocabulary to train.")
    lowercase: bool = setting(True, "Lowercase text in the trained tokenizer.")
    min_frequency: int = setting(2, "Least frequency of a trained WordPiece token.", cli=False)
    max_seq_length: int = setting(128, "Tokens per sequence, [CLS] and [SEP] included.", at_least=MIN_SEQ_LENGTH)
    line_by_line: bool = setting(False, "One sequence per line instead of packing documents into full sequences.",
                                 flags=("--line-by-line/--packing",))
    mlm_probability: float = setting(0.15, "Share of tokens predicted (80% [MASK], 10% random, 10% kept).", above=0, below=1)
    whole_word_masking: bool = setting(False, "Mask every piece of a chosen word together.",
                                       flags=("--whole-word-masking/--token-masking",))
    eval_mask_seed: int = setting(1234, "Seed of the fixed evaluation masks.", cli=False)
    max_eval_samples: int | None = setting(None, "Evaluate on the first N held-out sequences only.", at_least=1)

    def check(self) -> None:
        require(all(self.train_files), "train_files", f"train_files must be a list of file paths, got {self.train_files!r}")
        require(bool(self.train_files) != bool(self.dataset), "train_files",
                "give exactly one text source: train_files or dataset")
        require(not self.dataset_config or bool(self.dataset), "dataset_config", "dataset_config needs dataset")
        resolved = [Path(f).expanduser().resolve() for f in self.train_files]
        twice = next((f for f, r in zip(self.train_files, resolved) if resolved.count(r) > 1), None)
        require(twice is None, "train_files", f"train_files names {twice} twice: its documents would count twice, and "
                "some held out for evaluation would also be trained on")
        require(self.validation_file is None or Path(self.validation_file).expanduser().resolve() not in resolved,
                "validation_file", f"validation_file {self.validation_file} is also a training file: the held-out "
                "score would be measured on training text")
        require(bool(self.text_column), "text_column", "text_column must be a non-empty column name")
        if self.tokenizer is None:
            require(self.vocab_size >= MIN_VOCAB_SIZE, "vocab_size",
                    f"vocab_size {self.vocab_size!r} is too small: it must hold the {len(SPECIAL_TOKENS)} special tokens "
                    f"and at least a {MIN_ALPHABET}-letter alphabet (>= {MIN_VOCAB_SIZE})")
            require(self.min_frequency >= 1, "min_frequency", f"min_frequency must be a positive integer, got {self.min_frequency!r}")

    def settle(self, recipe: Any) -> None:
        """A fresh model (``model.preset``) or a checkpoint to continue (``model.name_or_path``): exactly one."""
        require(bool(recipe.model.preset) or bool(recipe.model.name_or_path), "model.preset",
                "no model: set model.preset (e.g. --preset tiny) to pretrain from scratch, or --model to continue "
                "pretraining a checkpoint")
        require(not (recipe.model.preset and recipe.model.name_or_path), "model.preset",
                "give --preset (a fresh model) or --model (continue pretraining a checkpoint), not both")
        if recipe.train.dataloader_workers:
            log.warning("dataloader_workers ignored: MLM masks are drawn in the training process (see tasks/mlm/run.py)")
            recipe.train.dataloader_workers = 0

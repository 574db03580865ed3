"""Data settings of a token classification (NER) run: the ``data:`` section of an NER recipe.

The data comes from exactly one source: the user's CoNLL-style or JSON Lines files
(``train_file``/``validation_file``), or a Hub dataset with ``tokens`` and ``ner_tags`` (``dataset``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ...config import DataSettings, require, setting
from ...io import input_problem

FAMILY = "ner"
#: the tag schemes read; "auto" finds the scheme of the training tags
SCHEMES = ("IO", "BIO", "IOB1", "BIOES")
TagScheme = Literal["auto", "IO", "BIO", "IOB2", "IOB1", "BIOES"]


@dataclass
class NerDataConfig(DataSettings):
    train_file: str | None = setting(None, "CoNLL-style file (a word and its tag per line, the tag last, blank lines "
                                     "between sentences) or JSON Lines with tokens and tags.", source="files", path=True)
    validation_file: str | None = setting(None, "Dev file, in either --train-file format.", source="files", path=True)
    dataset: str | None = setting(None, "A Hub dataset with tokens and ner_tags columns (e.g. conll2003; needs a "
                                  "network or the local cache).", source="hub")
    dataset_config: str | None = setting(None, "The Hub dataset's configuration, if it has several.", source="hub")
    labels: str | None = setting(None, "The tag set, comma-separated, in id order (default: the training file's "
                                 "tags, O first, then by type and B/I/E/S). Needed for integer tag ids.")
    tag_scheme: TagScheme = setting("auto", "IO, BIO (= IOB2), IOB1 or BIOES; auto finds it in the training tags.",
                                    inherit=True)
    label_all_tokens: bool = setting(False, "Train every sub-token of a word on its tag (B- turned to I-), not only "
                                     "the first (run_ner.py's --label_all_tokens).",
                                     flags=("--label-all-tokens/--label-first-token",))
    max_seq_length: int = setting(128, "Tokens per window; a longer sentence becomes overlapping windows.",
                                  at_least=8, at_most=512, inherit=True)
    doc_stride: int = setting(32, "Tokens shared by consecutive windows of a long sentence.", at_least=1, inherit=True)
    max_train_samples: int | None = setting(None, "Use only the first N training sentences.", at_least=1)
    max_eval_samples: int | None = setting(None, "Use only the first N dev sentences.", at_least=1)

    @property
    def user_files(self) -> dict[str, str]:
        named = {"train": self.train_file, "validation": self.validation_file}
        return {split: path for split, path in named.items() if path}

    @property
    def scheme(self) -> str | None:
        """The scheme asked for (IOB2 is BIO), or None to find it."""
        return None if self.tag_scheme == "auto" else "BIO" if self.tag_scheme == "IOB2" else self.tag_scheme

    def label_list(self) -> list[str] | None:
        if self.labels is None:
            return None
        names = [name.strip() for name in self.labels.split(",")]
        require(all(names), "labels", f"labels {self.labels!r} has an empty name; give the tags comma-separated")
        repeated = sorted({n for n in names if names.count(n) > 1})
        require(not repeated, "labels", f"labels names {', '.join(repeated)} twice")
        return names

    def check(self) -> None:
        self.label_list()
        require(not (self.dataset and self.user_files), "dataset",
                "give one data source: dataset, or train_file/validation_file")
        require(not self.dataset_config or bool(self.dataset), "dataset_config", "dataset_config needs dataset")
        for split, path in self.user_files.items():
            problem = input_problem(path)
            require(problem is None, f"{split}_file", f"{split}_file {problem}: {path}")
        require(self.doc_stride < self.max_seq_length - 2, "doc_stride",
                f"doc_stride {self.doc_stride} leaves no new tokens in a window of max_seq_length "
                f"{self.max_seq_length} (with [CLS] and [SEP]); lower it below {self.max_seq_length - 2}")

    def settle(self, recipe: Any) -> None:
        require(recipe.task == FAMILY, "task", f"the recipe's task is {recipe.task}; token classification runs ner")

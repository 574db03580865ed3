"""Data settings of a ``classify`` run: the user's own text classification or regression data.

The data comes from the user's files (CSV, TSV, JSON Lines, Parquet) or a Hub dataset (``dataset`` with
``dataset_config``; offline from the local cache). The labels are the training data's own, in a stable order, unless
``labels`` fixes them; the problem type follows the labels unless ``problem_type`` says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ...config import DataSettings, require, setting
from ...io import input_problem

FAMILY = "classify"
#: the file types the reader takes, by suffix
SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
ProblemChoice = Literal["auto", "single_label_classification", "multi_label_classification", "regression"]


@dataclass
class ClassifyDataConfig(DataSettings):
    #: a sentence-level head: model.pooling may choose how it reads the tokens
    pools_tokens: ClassVar[bool] = True

    train_file: str | None = setting(None, "Training file: CSV, TSV, JSON Lines or Parquet.", source="files",
                                     path=True)
    validation_file: str | None = setting(None, "Dev file, scored after training.", source="files", path=True)
    test_file: str | None = setting(None, "Unlabeled file to predict (with --do-predict): predictions.jsonl.",
                                    source="files", path=True)
    dataset: str | None = setting(None, "A Hub dataset with text and label columns (offline: from the local cache).",
                                  source="hub")
    dataset_config: str | None = setting(None, "The Hub dataset's configuration.", source="hub")
    text_columns: str | None = setting(
        None, "The text column, or two for sentence pairs: a or a,b (default: sentence1,sentence2, text or sentence).",
        inherit=True)
    label_column: str | None = setting(None, "The label column (default: label or labels).", inherit=True)
    labels: str | None = setting(
        None, "The labels in class-id order, a,b,c (default: the training data's, numbers in numeric order, else "
        "sorted).", inherit=True)
    problem_type: ProblemChoice = setting(
        "auto", "auto (from the labels: lists -> multi-label, fractional numbers -> regression, else single-label), "
        "single_label_classification, multi_label_classification or regression.", inherit=True)
    label_delimiter: str | None = setting(
        None, "Multi-label CSV/TSV: the character between one row's labels, e.g. '|' (JSON: give a list).",
        inherit=True)
    threshold: float | None = setting(
        None, "Multi-label: a label is predicted from this probability on (default: tuned on the dev set for micro "
        "F1).", above=0, below=1)
    max_seq_length: int = setting(128, "Truncate inputs to this many tokens.", at_least=8, at_most=512, inherit=True)
    pad_to_max_length: bool = setting(False, "Pad every input to --max-seq-length (slower) instead of per batch.",
                                      flags=("--pad-to-max-length/--dynamic-padding",))
    max_train_samples: int | None = setting(None, "Use only the first N training examples.", at_least=1)
    max_eval_samples: int | None = setting(None, "Use only the first N dev examples.", at_least=1)
    do_predict: bool = setting(False, "Also predict the test file into predictions.jsonl.",
                               flags=("--do-predict/--no-predict",))
    class_weights: str | None = setting(
        None, "Weight the loss per label: auto (inverse frequency; multi-label: negatives/positives) or "
        "label=w,... for every label.")

    @property
    def user_files(self) -> dict[str, str]:
        named = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        return {split: path for split, path in named.items() if path}

    def text_column_names(self) -> tuple[str, ...] | None:
        if self.text_columns is None:
            return None
        return tuple(c.strip() for c in self.text_columns.split(","))

    def label_names(self) -> list[str] | None:
        return None if self.labels is None else [name.strip() for name in self.labels.split(",")]

    def check(self) -> None:
        sources = [name for name, given in (("dataset", self.dataset),
                                            ("train_file/validation_file/test_file", self.user_files)) if given]
        require(len(sources) == 1, "train_file", "give exactly one data source: train_file (with validation_file) "
                f"or dataset (got {', '.join(sources) or 'none'})")
        require(self.dataset_config is None or bool(self.dataset), "dataset_config", "dataset_config needs dataset")
        for split, path in self.user_files.items():
            problem = input_problem(path)
            require(problem is None, f"{split}_file", f"{split}_file {problem}: {path}")
            require(path.lower().endswith(SUFFIXES), f"{split}_file",
                    f"{split}_file {path}: unsupported file type; use {', '.join(SUFFIXES)}"
                    + (" (a CoNLL file of words and tags is for finetune ner)" if path.lower().endswith(
                        (".conll", ".txt", ".bio", ".iob")) else ""))
        columns = self.text_column_names()
        if columns is not None:
            require(1 <= len(columns) <= 2 and all(columns), "text_columns",
                    f"text_columns {self.text_columns!r}: give one column, or two for pairs (a,b)")
            require(len(set(columns)) == len(columns), "text_columns", f"text_columns names {columns[0]!r} twice")
        names = self.label_names()
        if names is not None:
            require(all(names), "labels", f"labels {self.labels!r} has an empty name")
            require(len(set(names)) == len(names), "labels", f"labels {self.labels!r} names a label twice")
            require(self.problem_type == "regression" or len(names) >= 2, "labels",
                    f"labels {self.labels!r}: a classifier needs at least two labels")
            require(self.problem_type != "regression", "labels", "labels is for classification; regression has none")
        require(self.label_delimiter is None or (len(self.label_delimiter) >= 1 and self.label_delimiter.strip() != ""),
                "label_delimiter", "label_delimiter must be a visible character, e.g. '|'")
        require(self.label_delimiter is None or self.problem_type in ("auto", "multi_label_classification"),
                "label_delimiter", f"label_delimiter is for multi-label data, not {self.problem_type}")
        require(self.threshold is None or self.problem_type in ("auto", "multi_label_classification"), "threshold",
                f"threshold is for multi-label data, not {self.problem_type}")
        require(self.class_weights is None or self.problem_type != "regression", "class_weights",
                "class_weights is for classification; regression has no classes")
        require(not (self.do_predict and self.user_files and not self.test_file), "do_predict",
                "do_predict needs test_file")
        require(self.max_eval_samples != 1 or self.problem_type != "regression", "max_eval_samples",
                "max_eval_samples 1: the correlations need at least two dev examples")

    def settle(self, recipe: Any) -> None:
        recipe.task = FAMILY

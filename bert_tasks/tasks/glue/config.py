"""Data settings of a GLUE run: the ``data:`` section of a GLUE recipe.

The data comes from exactly one source: the official GLUE folder layout
(``data_dir``), the Hub ``glue`` dataset (``dataset``), or the user's own
CSV/JSON Lines/TSV files (``train_file``/``validation_file``/``test_file``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...config import Settings, require, setting
from .spec import TASK_NAMES, get_spec

ALL_TASKS = "all"
FAMILY = "glue"
HUB_DATASETS = ("glue", "nyu-mll/glue")


@dataclass
class GlueDataConfig(Settings):
    #: a sentence-level head: model.pooling may choose how it reads the tokens
    pools_tokens: ClassVar[bool] = True

    task: str | None = setting(None, f"{', '.join(TASK_NAMES)}, or all (every task found under --data-dir).",
                               flags=("--task", "-t"), also=("task",))
    data_dir: str | None = setting(None, "GLUE root (holding CoLA/, SST-2/, ...) or a folder with one task's files.",
                                   source="glue")
    dataset: str | None = setting(None, "'glue': the Hub dataset (needs a network or a cache).", source="hub")
    train_file: str | None = setting(None, "Your own CSV / TSV / JSON Lines training file.", source="files")
    validation_file: str | None = setting(None, "Your own dev file.", source="files")
    test_file: str | None = setting(None, "Your own unlabeled test file (for --do-predict).", source="files")
    max_seq_length: int = setting(128, "Truncate inputs to this many tokens.", at_least=8, at_most=512)
    pad_to_max_length: bool = setting(False, "Pad every input to --max-seq-length (slower) instead of per batch.",
                                      flags=("--pad-to-max-length/--dynamic-padding",))
    max_train_samples: int | None = setting(None, "Use only the first N training examples.", at_least=1)
    max_eval_samples: int | None = setting(None, "Use only the first N dev examples.", at_least=1)
    max_predict_samples: int | None = setting(None, "Use only the first N test examples.", cli=False, at_least=1)
    do_predict: bool = setting(False, "Also write GLUE leaderboard files from the test sets.",
                               flags=("--do-predict/--no-predict",))
    #: where leaderboard files go (default OUTPUT/submission); a `task: all` run gathers every task's in one folder
    submission_dir: str | None = setting(None, "Folder for the leaderboard files (default: OUTPUT/submission).", cli=False)

    @property
    def user_files(self) -> dict[str, str]:
        named = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        return {split: path for split, path in named.items() if path}

    def check(self) -> None:
        if self.task not in (None, ALL_TASKS):
            get_spec(self.task)
        sources = [name for name, given in (("data_dir", self.data_dir), ("dataset", self.dataset),
                                            ("train_file/validation_file/test_file", self.user_files)) if given]
        require(len(sources) == 1, "data_dir", "give exactly one data source: data_dir, dataset or "
                f"train_file/validation_file/test_file (got {', '.join(sources) or 'none'})")
        require(self.task != ALL_TASKS or bool(self.data_dir), "task",
                "task 'all' needs data_dir pointing at the GLUE root folder")
        require(not self.dataset or self.dataset in HUB_DATASETS, "dataset",
                f"unknown dataset {self.dataset!r}; the GLUE adapter reads only 'glue'")
        if self.data_dir:
            require(Path(self.data_dir).is_dir(), "data_dir", f"data_dir is not a folder: {self.data_dir}")
        for split, path in self.user_files.items():
            require(Path(path).is_file(), f"{split}_file", f"{split}_file does not exist: {path}")
        if self.max_eval_samples == 1 and self.task not in (None, ALL_TASKS):
            require(not get_spec(self.task).is_regression, "max_eval_samples",
                    f"max_eval_samples 1: {self.task}'s correlations need at least two dev examples")
        require(not (self.do_predict and self.user_files and not self.test_file), "do_predict",
                "do_predict needs test_file when the data comes from your own files")

    def settle(self, recipe: Any) -> None:
        """The recipe's task and ``data.task`` name one GLUE task (or ``all``); make them one."""
        named = recipe.task if recipe.task in TASK_NAMES else None
        if named and self.task not in (None, named):
            require(False, "task", f"the recipe's task is {named} but its data.task is {self.task}; make them agree "
                                   "(or pass --task)")
        self.task = self.task or named or "sst2"
        recipe.task = FAMILY if self.task == ALL_TASKS else self.task

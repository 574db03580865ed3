"""Data settings of a GLUE run: the ``data:`` section of a GLUE recipe.

The data comes from exactly one source: the official GLUE folder layout
(``data_dir``), the Hub ``glue`` dataset (``dataset``), or the user's own
CSV/JSON Lines/TSV files (``train_file``/``validation_file``/``test_file``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ...errors import BertTasksError
from .spec import TASK_NAMES, get_spec

ALL_TASKS = "all"
HUB_DATASETS = ("glue", "nyu-mll/glue")


@dataclass
class GlueDataConfig:
    task: str = "sst2"
    #: the GLUE root (holding CoLA/, SST-2/, ...) or one task's folder
    data_dir: str | None = None
    dataset: str | None = None
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    max_seq_length: int = 128
    #: run_glue pads everything to max_seq_length; padding per batch is much faster and gives the same logits
    pad_to_max_length: bool = False
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_predict_samples: int | None = None
    do_predict: bool = False

    @property
    def user_files(self) -> dict[str, str]:
        named = {"train": self.train_file, "validation": self.validation_file, "test": self.test_file}
        return {split: path for split, path in named.items() if path}

    def validate(self) -> "GlueDataConfig":
        if self.task != ALL_TASKS:
            get_spec(self.task)
        sources = [name for name, given in (("data_dir", self.data_dir), ("dataset", self.dataset), ("train_file/validation_file/test_file", self.user_files)) if given]
        if len(sources) != 1:
            raise BertTasksError(
                f"give exactly one data source: data_dir, dataset or train_file/validation_file/test_file (got {', '.join(sources) or 'none'})"
            )
        if self.task == ALL_TASKS and not self.data_dir:
            raise BertTasksError("task 'all' needs data_dir pointing at the GLUE root folder")
        if self.dataset and self.dataset not in HUB_DATASETS:
            raise BertTasksError(f"unknown dataset {self.dataset!r}; the GLUE adapter reads only 'glue'")
        if self.data_dir and not Path(self.data_dir).is_dir():
            raise BertTasksError("data_dir is not a folder", file=self.data_dir)
        for split, path in self.user_files.items():
            if not Path(path).is_file():
                raise BertTasksError(f"{split}_file does not exist", file=path)
        if not isinstance(self.max_seq_length, int) or not 8 <= self.max_seq_length <= 512:
            raise BertTasksError(f"max_seq_length must be an integer from 8 to 512, got {self.max_seq_length!r}")
        for name in ("max_train_samples", "max_eval_samples", "max_predict_samples"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise BertTasksError(f"{name} must be a positive integer, got {value!r}")
        if self.max_eval_samples == 1 and self.task != ALL_TASKS and get_spec(self.task).is_regression:
            raise BertTasksError(f"max_eval_samples 1: {self.task}'s correlations need at least two dev examples")
        if self.do_predict and self.user_files and not self.test_file:
            raise BertTasksError("do_predict needs test_file when the data comes from your own files")
        return self


def expand_tasks(cfg: GlueDataConfig) -> list[GlueDataConfig]:
    """One config per task: ``task: all`` becomes every task whose folder is under ``data_dir``."""
    if cfg.task != ALL_TASKS:
        return [cfg]
    from .data import find_tasks

    tasks = find_tasks(cfg.data_dir)
    if not tasks:
        raise BertTasksError(f"no GLUE task folders ({', '.join(get_spec(t).folder for t in TASK_NAMES)}) found", file=cfg.data_dir)
    return [dataclasses.replace(cfg, task=task) for task in tasks]

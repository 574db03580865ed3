"""Data settings of a GLUE run: the ``data:`` section of a GLUE recipe.

The data comes from exactly one source: the official GLUE folder layout
(``data_dir``), the Hub ``glue`` dataset (``dataset``), or the user's own
CSV/JSON Lines/TSV files (``train_file``/``validation_file``/``test_file``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...config import DataSettings, require, setting
from ...io import input_problem
from .spec import TASK_NAMES, get_spec, label_lookup

ALL_TASKS = "all"
FAMILY = "glue"
HUB_DATASETS = ("glue", "nyu-mll/glue")


@dataclass
class GlueDataConfig(DataSettings):
    #: a sentence-level head: model.pooling may choose how it reads the tokens
    pools_tokens: ClassVar[bool] = True

    task: str | None = setting(None, f"{', '.join(TASK_NAMES)}, or all (every task found under --data-dir).",
                               flags=("--task", "-t"), also=("task",), inherit=True)
    data_dir: str | None = setting(None, "GLUE root (holding CoLA/, SST-2/, ...) or a folder with one task's files.",
                                   source="glue", path=True)
    dataset: str | None = setting(None, "'glue': the Hub dataset (needs a network or a cache).", source="hub")
    train_file: str | None = setting(None, "Your own CSV / TSV / JSON Lines training file.", source="files",
                                      path=True)
    validation_file: str | None = setting(None, "Your own dev file.", source="files", path=True)
    test_file: str | None = setting(None, "Your own unlabeled test file (for --do-predict).", source="files",
                                     path=True)
    max_seq_length: int = setting(128, "Truncate inputs to this many tokens.", at_least=8, at_most=512, inherit=True)
    pad_to_max_length: bool = setting(False, "Pad every input to --max-seq-length (slower) instead of per batch.",
                                      flags=("--pad-to-max-length/--dynamic-padding",))
    max_train_samples: int | None = setting(None, "Use only the first N training examples.", at_least=1)
    max_eval_samples: int | None = setting(None, "Use only the first N dev examples.", at_least=1)
    max_predict_samples: int | None = setting(None, "Use only the first N test examples.", cli=False, at_least=1)
    do_predict: bool = setting(False, "Also write GLUE leaderboard files from the test sets.",
                               flags=("--do-predict/--no-predict",))
    #: weights of the cross-entropy per class: "auto" (inverse frequency over the training set, as scikit-learn's
    #: "balanced") or "label=weight,..." naming every label; classification tasks only (GlueTask.read_data resolves it)
    class_weights: str | None = setting(
        None, "Weight the loss per class: auto (inverse frequency in the training data) or label=w,... for every label.")
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
            problem = input_problem(path)
            require(problem is None, f"{split}_file", f"{split}_file {problem}: {path}")
        if self.max_eval_samples == 1 and self.task not in (None, ALL_TASKS):
            require(not get_spec(self.task).is_regression, "max_eval_samples",
                    f"max_eval_samples 1: {self.task}'s correlations need at least two dev examples")
        if self.class_weights is not None and self.task not in (None, ALL_TASKS):
            explicit_class_weights(self.class_weights, self.task)  # refuses a regression task, a bad list
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


def explicit_class_weights(text: str, task: str) -> dict[str, float] | None:
    """``class_weights`` checked against ``task``: None for "auto", else the Hub's label name -> weight, every label once.

    Labels may be named as the model names them (the Hub's: ``not_equivalent``, ``equivalent``), as GLUE's files
    do (``0``, ``1``; MNLI ``entailment``...) or by class id, in any case."""
    spec = get_spec(task)
    require(not spec.is_regression, "class_weights",
            f"class_weights is for classification; {task} is a regression task (one score, no classes)")
    if text.strip() == "auto":
        return None
    aliases = {name.lower(): spec.hub_labels[i] for name, i in label_lookup(task).items()}
    weights: dict[str, float] = {}
    for item in text.split(","):
        label, sep, value = item.partition("=")
        label = label.strip()
        require(bool(sep), "class_weights", f"{item.strip()!r} is not label=weight; give auto or "
                f"{','.join(f'{name}=1.0' for name in spec.hub_labels)}")
        hub = aliases.get(label.lower())
        require(hub is not None, "class_weights",
                f"{label!r} is not a {task} label ({', '.join(spec.hub_labels)})")
        require(hub not in weights, "class_weights", f"label {hub} is given twice")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        require(weight > 0 and weight < float("inf"), "class_weights",
                f"the weight of {hub} must be a positive number, got {value.strip()!r}")
        weights[hub] = weight
    missing = [name for name in spec.hub_labels if name not in weights]
    require(not missing, "class_weights", f"{task} has {spec.num_labels} labels; give a weight for "
            f"each (missing: {', '.join(missing)})")
    return weights

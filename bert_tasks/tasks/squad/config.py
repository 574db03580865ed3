"""Data and pre/postprocessing settings of the SQuAD task: the ``data:`` section of a recipe.

Defaults follow the Hugging Face ``run_qa.py`` example so results are comparable. The data comes
from the Hub (``dataset``), the user's files (``train_file``/``validation_file``), or, with
``synthetic``, an invented SQuAD-format set written into the run folder (the offline quickstart).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import DataSettings, require, setting, trained_recipe, trained_settings

HUB_DATASETS = ("squad", "squad_v2")
TASKS = ("squad", "squad_v2")

# [CLS] question [SEP] context [SEP]
SPECIAL_TOKENS_IN_PAIR = 3


@dataclass
class SquadDataConfig(DataSettings):
    dataset: str | None = setting(None, "'squad' or 'squad_v2' from the Hub (needs a network or a cache).", source="hub")
    train_file: str | None = setting(
        None, "Official SQuAD JSON, JSON Lines / Parquet / CSV (Hub columns), or a save_to_disk folder.", source="files",
        path=True)
    validation_file: str | None = setting(None, "Dev data, in any of the --train-file formats.", source="files",
                                            path=True)
    version_2_with_negative: bool = setting(False, "SQuAD 2.0: some questions have no answer.",
                                            flags=("--version-2-with-negative",), inherit=True)
    max_seq_length: int = setting(384, "Tokens per window (question + context).", at_least=1, inherit=True)
    doc_stride: int = setting(128, "Tokens shared by consecutive windows of a long context.", at_least=1, inherit=True)
    max_query_length: int = setting(64, "Questions are cut to this many tokens.", at_least=1, inherit=True)
    n_best_size: int = setting(20, "Start/end candidates per window, and n-best list length.", at_least=1, inherit=True)
    max_answer_length: int = setting(30, "Longest answer, in tokens.", at_least=1, inherit=True)
    null_score_diff_threshold: float = setting(
        0.0, "SQuAD 2.0: answer '' when null score - best span score exceeds this.", inherit=True)
    skip_bad_examples: bool = setting(False, "Drop examples whose answer does not match the context, instead of stopping.",
                                      flags=("--skip-bad-examples",))
    max_train_samples: int | None = setting(None, "Use only the first N training questions.", at_least=1)
    max_eval_samples: int | None = setting(None, "Use only the first N dev questions.", at_least=1)
    preprocessing_num_workers: int | None = setting(None, "Processes for windowing (datasets.map).", cli=False, at_least=1)
    #: write the invented quickstart set (synthetic.py) into OUTPUT/data and train and evaluate on it
    synthetic: bool = setting(False, "Train and evaluate on the invented quickstart set, written into OUTPUT/data.",
                              cli=False, source="synthetic")
    #: also score the untrained model first, so a run shows what fine-tuning gained
    eval_before_training: bool = setting(False, "Also score the model before fine-tuning.", cli=False)

    def check(self) -> None:
        require(self.dataset in (None, *HUB_DATASETS), "dataset", f"unknown dataset {self.dataset!r}; known: "
                f"{', '.join(HUB_DATASETS)} (or pass --train-file/--validation-file)")
        require(not (self.synthetic and (self.dataset or self.train_file or self.validation_file)), "synthetic",
                "synthetic: true writes its own data; drop dataset, train_file and validation_file (or synthetic)")
        require(self.dataset != "squad_v2" or self.version_2_with_negative, "version_2_with_negative",
                "dataset squad_v2 has unanswerable questions; set version_2_with_negative (--version-2-with-negative)")
        context_budget = self.max_seq_length - self.max_query_length - SPECIAL_TOKENS_IN_PAIR
        require(context_budget >= 1, "max_seq_length",
                f"max_seq_length {self.max_seq_length} leaves no room for context after a {self.max_query_length}-token "
                f"question and {SPECIAL_TOKENS_IN_PAIR} special tokens")
        require(self.doc_stride < context_budget, "doc_stride",
                f"doc_stride {self.doc_stride} must be smaller than the context room of each window ({context_budget} = "
                f"max_seq_length - max_query_length - {SPECIAL_TOKENS_IN_PAIR}); windows would not advance")

    def fit_positions(self, positions: int | None, where: Any) -> str | None:
        """:meth:`DataSettings.fit_positions`; a window lowered to the positions also lowers a default stride that
        would no longer advance (run_qa.py's 128 of 384: a third of the window)."""
        note = super().fit_positions(positions, where)
        room = self.max_seq_length - self.max_query_length - SPECIAL_TOKENS_IN_PAIR
        if note and "doc_stride" not in self.given and room >= 2 and self.doc_stride >= room:
            stride, self.doc_stride = self.doc_stride, room // 2
            note += f"; the default doc_stride {stride} to {self.doc_stride}, half the context room of a window"
        return note

    @property
    def task(self) -> str:
        return "squad_v2" if self.version_2_with_negative else "squad"

    def settle(self, recipe: Any) -> None:
        """One truth for v1.1/v2.0: task ``squad_v2``, the ``squad_v2`` dataset and ``version_2_with_negative``
        imply each other. Unpadding would change the SQuAD loss, which spans padded positions too."""
        self.version_2_with_negative = (self.version_2_with_negative or recipe.task == "squad_v2"
                                        or self.dataset == "squad_v2")
        recipe.task = self.task
        require(not recipe.train.unpad, "train.unpad",
                "train.unpad is for tasks that read real positions only (glue, mlm): the SQuAD loss also spans padded "
                "positions, which unpadding would change")
        self.default_source()

    def default_source(self) -> None:
        """No data named at all: run_qa.py's default, the Hub dataset of this version."""
        if not (self.synthetic or self.dataset or self.train_file or self.validation_file):
            self.dataset = self.task


# --------------------------------------------------------------------------- what a trained folder was trained with

#: where ``synthetic: true`` writes its invented train and validation files, inside the run folder
SYNTHETIC_DIR = "data"
#: config.json key that tells a folder's SQuAD version when recipe.yaml is gone
VERSION_KEY = "bert_tasks_version_2_with_negative"
def trained_version_2(model_dir: str | Path) -> bool | None:
    """Whether a folder holds a SQuAD 2.0 model: its recipe.yaml, else its config.json mark; None if unknown."""
    recipe = trained_recipe(model_dir)
    if recipe.get("task") == "squad_v2":
        return True
    if "version_2_with_negative" in recipe["data"]:
        return bool(recipe["data"]["version_2_with_negative"])
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get(VERSION_KEY) if isinstance(config, dict) else None
    return bool(value) if value is not None else None


def eval_config(model_dir: str | Path, **given: Any) -> SquadDataConfig:
    """The evaluation settings: flags given, else the folder's recipe.yaml, else run_qa's defaults.

    Without a validation source, a run trained on the synthetic set is scored on its own synthetic
    validation file; otherwise run_qa.py's default, the Hub dataset.
    """
    model_dir = Path(model_dir)
    if given.get("dataset") == "squad_v2":
        given["version_2_with_negative"] = True
    if given.get("version_2_with_negative") is None and trained_version_2(model_dir):
        given["version_2_with_negative"] = True  # a task: squad_v2 recipe, or the config.json mark
    cfg = trained_settings(model_dir, SquadDataConfig, given)
    if not (cfg.validation_file or cfg.dataset):
        suffix = "v2" if cfg.version_2_with_negative else "v1"
        synthetic = model_dir / SYNTHETIC_DIR / f"synthetic-{suffix}-validation.json"
        if trained_recipe(model_dir)["data"].get("synthetic") and synthetic.is_file():
            cfg.validation_file = str(synthetic)
        cfg.default_source()
    return cfg.validate()

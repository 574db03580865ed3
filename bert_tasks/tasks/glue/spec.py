"""The nine GLUE tasks as one declarative table.

Everything task-specific that the reader, the metric, the scorer and the
submission writer need lives here, so adding or fixing a task is one row.

Label order follows the Hub ``glue`` dataset (so checkpoints fine-tuned on it
line up), and label *names* are the strings GLUE's submission server expects.
The AX diagnostic set has no task of its own: it is predicted with the MNLI
model and therefore appears as one of MNLI's test files.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import BertTasksError


@dataclass(frozen=True)
class PredictFile:
    split: str
    #: path relative to the GLUE root folder (the one holding CoLA/, SST-2/, ...)
    path: str
    submission: str


@dataclass(frozen=True)
class GlueTaskSpec:
    name: str
    folder: str
    #: header names of the first and (for pair tasks) second text column in the official TSV
    text_columns: tuple[str, ...]
    label_column: str | None
    #: label strings in class-id order as GLUE's submission files spell them; empty for regression
    labels: tuple[str, ...]
    #: the Hub ``glue`` dataset's names for the same classes, accepted as aliases
    hub_labels: tuple[str, ...]
    metrics: tuple[str, ...]
    #: eval split name -> file inside the task folder
    eval_files: dict[str, str]
    test_files: tuple[PredictFile, ...]
    #: result keys whose mean is the task's GLUE score (MNLI: matched and mismatched accuracy)
    score_keys: tuple[str, ...]
    #: CoLA's train/dev files are the only headerless ones; their columns are positional
    headerless_columns: tuple[str, ...] | None = None
    #: the range a regression label must lie in (STS-B: similarity scores 0-5)
    score_range: tuple[float, float] | None = None

    @property
    def is_regression(self) -> bool:
        return not self.labels

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)


def _dev(name: str = "dev.tsv") -> dict[str, str]:
    return {"validation": name}


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")

GLUE_TASKS: dict[str, GlueTaskSpec] = {
    spec.name: spec
    for spec in (
        GlueTaskSpec(
            "cola", "CoLA", ("sentence",), "label", _BINARY, ("unacceptable", "acceptable"),
            ("matthews_correlation",), _dev(), (PredictFile("test", "CoLA/test.tsv", "CoLA.tsv"),),
            ("matthews_correlation",), headerless_columns=("source", "label", "original_label", "sentence"),
        ),
        GlueTaskSpec(
            "sst2", "SST-2", ("sentence",), "label", _BINARY, ("negative", "positive"),
            ("accuracy",), _dev(), (PredictFile("test", "SST-2/test.tsv", "SST-2.tsv"),), ("accuracy",),
        ),
        GlueTaskSpec(
            "mrpc", "MRPC", ("#1 String", "#2 String"), "Quality", _BINARY, ("not_equivalent", "equivalent"),
            ("f1", "accuracy"), _dev(), (PredictFile("test", "MRPC/test.tsv", "MRPC.tsv"),), ("f1", "accuracy"),
        ),
        GlueTaskSpec(
            "stsb", "STS-B", ("sentence1", "sentence2"), "score", (), (),
            ("pearson", "spearmanr"), _dev(), (PredictFile("test", "STS-B/test.tsv", "STS-B.tsv"),),
            ("pearson", "spearmanr"), score_range=(0.0, 5.0),
        ),
        GlueTaskSpec(
            "qqp", "QQP", ("question1", "question2"), "is_duplicate", _BINARY, ("not_duplicate", "duplicate"),
            ("f1", "accuracy"), _dev(), (PredictFile("test", "QQP/test.tsv", "QQP.tsv"),), ("f1", "accuracy"),
        ),
        GlueTaskSpec(
            "mnli", "MNLI", ("sentence1", "sentence2"), "gold_label",
            ("entailment", "neutral", "contradiction"), ("entailment", "neutral", "contradiction"),
            ("accuracy",),
            {"validation_matched": "dev_matched.tsv", "validation_mismatched": "dev_mismatched.tsv"},
            (
                PredictFile("test_matched", "MNLI/test_matched.tsv", "MNLI-m.tsv"),
                PredictFile("test_mismatched", "MNLI/test_mismatched.tsv", "MNLI-mm.tsv"),
                PredictFile("ax", "diagnostic/diagnostic.tsv", "AX.tsv"),
            ),
            ("accuracy_m", "accuracy_mm"),
        ),
        GlueTaskSpec(
            "qnli", "QNLI", ("question", "sentence"), "label", _NLI2, _NLI2,
            ("accuracy",), _dev(), (PredictFile("test", "QNLI/test.tsv", "QNLI.tsv"),), ("accuracy",),
        ),
        GlueTaskSpec(
            "rte", "RTE", ("sentence1", "sentence2"), "label", _NLI2, _NLI2,
            ("accuracy",), _dev(), (PredictFile("test", "RTE/test.tsv", "RTE.tsv"),), ("accuracy",),
        ),
        GlueTaskSpec(
            # GLUE's WNLI files use 1 for entailment; the Hub names class 1 "entailment" too
            "wnli", "WNLI", ("sentence1", "sentence2"), "label", _BINARY, ("not_entailment", "entailment"),
            ("accuracy",), _dev(), (PredictFile("test", "WNLI/test.tsv", "WNLI.tsv"),), ("accuracy",),
        ),
    )
}

TASK_NAMES: tuple[str, ...] = tuple(GLUE_TASKS)
#: split keys whose metrics are reported under a suffix, so MNLI's two dev sets stay apart
EVAL_SPLIT_SUFFIX = {"validation_matched": "_m", "validation_mismatched": "_mm"}
DIAGNOSTIC_FOLDER = "diagnostic"


def get_spec(task: str) -> GlueTaskSpec:
    try:
        return GLUE_TASKS[task]
    except KeyError:
        raise BertTasksError(f"unknown GLUE task {task!r}; expected one of {', '.join(TASK_NAMES)}") from None


def id2label(task: str, *, names: str = "glue") -> dict[int, str]:
    """Class id -> label name; ``names="hub"`` gives the Hub's descriptive names (e.g. negative/positive) for model configs."""
    spec = get_spec(task)
    if spec.is_regression:
        return {0: "score"}
    if names not in ("glue", "hub"):
        raise ValueError(f"names must be 'glue' or 'hub', got {names!r}")
    return dict(enumerate(spec.labels if names == "glue" else spec.hub_labels))


def label2id(task: str, *, names: str = "glue") -> dict[str, int]:
    return {name: i for i, name in id2label(task, names=names).items()}


def label_lookup(task: str) -> dict[str, int]:
    """Every string accepted as a label in input files: GLUE's names, the Hub's names, and class ids."""
    spec = get_spec(task)
    lookup: dict[str, int] = {}
    for names in (spec.hub_labels, spec.labels, tuple(str(i) for i in range(len(spec.labels)))):
        lookup.update({name: i for i, name in enumerate(names)})
    return lookup

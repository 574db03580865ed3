"""Reads the user's classification data into ``datasets.Dataset`` splits and finds its labels and problem type.

Every split has the columns ``idx`` (int), ``text_a``, ``text_b`` (pairs only) and, where labeled, ``label``: a class
id (single-label), a 0/1 vector over the labels (multi-label) or a float (regression). The labels are the training
data's own in a stable order (integers in numeric order, anything else sorted), or ``labels`` given; a dev label the
training data never has is one error naming file, line and label. Bad input is one line naming file, line and reason.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import datasets

from ...checkpoint.hub import require_hub
from ...errors import BertTasksError, shown
from ..tabular import delimited_rows, json_records, named_rows, parse_index, read_header
from .config import ClassifyDataConfig

TEXT_DEFAULTS = (("sentence1", "sentence2"), ("text",), ("sentence",))
LABEL_DEFAULTS = ("label", "labels")
INDEX_COLUMNS = ("idx", "index", "id")
#: columns that mark a word-level (token classification) file
TOKEN_COLUMNS = ("tokens", "words")
TAG_COLUMNS = ("tags", "ner_tags", "labels")
SINGLE, MULTI, REGRESSION = "single_label_classification", "multi_label_classification", "regression"


@dataclass(frozen=True)
class LabelSpace:
    """What the labels are: the problem type and the label names in class-id order (regression: none)."""

    problem_type: str
    names: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        return 1 if self.problem_type == REGRESSION else len(self.names)

    def id2label(self) -> dict[int, str]:
        return {0: "score"} if self.problem_type == REGRESSION else dict(enumerate(self.names))


@dataclass
class Records:
    """One file's rows: the numbered records, what a record is called in errors, and the file."""

    path: Path
    columns: list[str]
    rows: list[tuple[str, dict]]  # ("line 3", record)


def load_splits(cfg: ClassifyDataConfig, groups: Iterable[str] = ("train", "validation", "test"),
                space: LabelSpace | None = None) -> tuple[dict[str, Any], LabelSpace]:
    """The splits of ``groups`` that the settings name, and their label space (``space``: a trained model's)."""
    cfg.validate()
    raw = _hub_records(cfg, groups) if cfg.dataset else {
        split: read_records(Path(path)) for split, path in cfg.user_files.items() if split in groups}
    if not raw:
        return {}, space or LabelSpace(SINGLE)
    text_columns = {split: text_columns_of(records, cfg) for split, records in raw.items()}
    label_column = {split: label_column_of(records, cfg, required=split != "test")
                    for split, records in raw.items()}
    first = "train" if "train" in raw else next(iter(raw))
    # the columns found are written into the settings, so recipe.yaml says them and eval/predict read them back
    cfg.text_columns = ",".join(text_columns[first])
    if label_column[first] is not None:
        cfg.label_column = label_column[first]
    if space is None:
        if "train" not in raw:
            raise BertTasksError("no training data: give train_file (or a dataset with a train split)")
        space = infer_space(raw["train"], label_column["train"], cfg)
    splits = {}
    for split, records in raw.items():
        arity = len(text_columns[split])
        if split != "train" and "train" in raw and arity != len(text_columns["train"]):
            raise BertTasksError(f"the training data has {len(text_columns['train'])} text column(s), this file "
                                 f"{arity}", file=records.path, record="line 1")
        limit = {"train": cfg.max_train_samples, "validation": cfg.max_eval_samples}.get(split)
        rows = records.rows[:limit] if limit else records.rows
        column = label_column[split] if split != "test" else None
        splits[split] = build(records.path, rows, text_columns[split], column, space, cfg)
        if split == "validation" and space.problem_type == REGRESSION and len(set(splits[split]["label"])) < 2:
            raise BertTasksError("the dev scores are all the same: Pearson and Spearman correlations are undefined",
                                 file=records.path)
    return splits, space


# --- reading ---------------------------------------------------------------------------------------


def read_records(path: Path) -> Records:
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):
        columns, rows = json_records(path)
        return Records(path, columns, [(f"line {n}", r) for n, r in rows])
    if suffix == ".parquet":
        try:
            table = datasets.Dataset.from_parquet(str(path))
        except Exception as exc:  # pyarrow's errors have no common public base
            raise BertTasksError(f"not a readable Parquet file: {shown(str(exc).splitlines()[0] if str(exc) else exc)}",
                                 file=path) from None
        if not len(table):
            raise BertTasksError("file is empty", file=path)
        return Records(path, list(table.column_names), [(f"row {i + 1}", r) for i, r in enumerate(table)])
    delimiter, quoting = ("\t", csv.QUOTE_NONE) if suffix == ".tsv" else (",", csv.QUOTE_MINIMAL)
    rows = delimited_rows(path, delimiter=delimiter, quoting=quoting)
    columns = read_header(rows, path)
    return Records(path, columns, [(f"line {n}", r) for n, r in named_rows(rows, columns, path)])


def _hub_records(cfg: ClassifyDataConfig, groups: Iterable[str]) -> dict[str, Records]:
    """A Hub dataset's splits as records; ClassLabel ids become their names, so every source is read alike."""
    require_hub(f"the Hub dataset {cfg.dataset}")
    try:
        hub = datasets.load_dataset(cfg.dataset, cfg.dataset_config)
    except (OSError, ValueError) as exc:  # offline without a cache, an unknown name or configuration
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BertTasksError(f"cannot load the Hub dataset {cfg.dataset}: {shown(reason)}") from None
    found = {}
    for split, ds in hub.items():
        group = "validation" if split in ("validation", "dev") else split
        if group not in groups:
            continue
        names = {c: _class_names(ds.features[c]) for c in ds.column_names}
        rows = []
        for i, record in enumerate(ds):
            for column, label_names in names.items():
                if label_names is not None:
                    value = record[column]
                    record[column] = [label_names[v] for v in value] if isinstance(value, list) else (
                        None if value is None or value < 0 else label_names[value])
            rows.append((f"row {i + 1}", record))
        found[group] = Records(Path(f"{cfg.dataset}/{split}"), list(ds.column_names), rows)
    return found


def _class_names(feature: Any) -> list[str] | None:
    inner = getattr(feature, "feature", feature)
    return list(inner.names) if isinstance(inner, datasets.ClassLabel) else None


def text_columns_of(records: Records, cfg: ClassifyDataConfig) -> tuple[str, ...]:
    columns = records.columns
    if any(c in columns for c in TOKEN_COLUMNS) and any(c in columns for c in TAG_COLUMNS[:2]):
        raise BertTasksError("this is a token classification file (words with a tag each); use finetune ner",
                             file=records.path, record="line 1")
    given = cfg.text_column_names()
    if given is not None:
        missing = [c for c in given if c not in columns]
        if missing:
            raise BertTasksError(f"no text column {missing[0]!r}; the columns are {', '.join(map(repr, columns))}",
                                 file=records.path, record="line 1")
        return given
    for candidate in TEXT_DEFAULTS:
        if all(c in columns for c in candidate):
            return candidate
    raise BertTasksError(f"no text column (sentence1,sentence2, text or sentence); the columns are "
                         f"{', '.join(map(repr, columns))}: name yours with --text-columns", file=records.path,
                         record="line 1")


def label_column_of(records: Records, cfg: ClassifyDataConfig, *, required: bool) -> str | None:
    if cfg.label_column is not None:
        if cfg.label_column in records.columns:
            return cfg.label_column
    else:
        found = next((c for c in LABEL_DEFAULTS if c in records.columns), None)
        if found is not None:
            return found
    if not required:
        return None
    wanted = repr(cfg.label_column) if cfg.label_column else "'label' or 'labels'"
    raise BertTasksError(f"no label column {wanted}; the columns are {', '.join(map(repr, records.columns))}"
                         + ("" if cfg.label_column else ": name yours with --label-column"), file=records.path,
                         record="line 1")


# --- labels ----------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    """'list', 'number' or 'text': what a raw label value is (a CSV cell that parses as a number is a number)."""
    if isinstance(value, list):
        return "list"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    try:
        float(str(value).strip())
        return "number"
    except ValueError:
        return "text"


def _is_empty(value: Any) -> bool:
    return value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip())


def infer_space(train: Records, column: str, cfg: ClassifyDataConfig) -> LabelSpace:
    """The problem type (``cfg.problem_type`` or the labels') and the label names, from the training records."""
    first: dict[str, str] = {}  # kind -> the first record holding one
    for where, record in train.rows:
        value = record[column]
        if _is_empty(value):
            raise BertTasksError(f"empty label in column {column!r}", file=train.path, record=where)
        first.setdefault(_kind(value), where)
    problem = cfg.problem_type
    if problem == "auto":
        problem = MULTI if "list" in first or cfg.label_delimiter else SINGLE
        if problem == SINGLE and set(first) == {"number"} and cfg.labels is None:
            numbers = [float(_text(record[column])) for _, record in train.rows]
            problem = REGRESSION if any(not n.is_integer() for n in numbers) else SINGLE
    if len(first) > 1 and cfg.labels is None and not (problem == MULTI and "list" not in first):
        (kind_a, where_a), (kind_b, where_b) = list(first.items())[:2]
        raise BertTasksError(f"mixed label types in column {column!r}: {where_a} has a {kind_a}, {where_b} a {kind_b}; "
                             "make them one type (or fix them with --labels)", file=train.path, record=where_b)
    if problem == REGRESSION:
        return LabelSpace(REGRESSION)
    if problem == MULTI and cfg.label_delimiter and "list" not in first:
        if not any(cfg.label_delimiter in _text(record[column]) for _, record in train.rows):
            raise BertTasksError(f"label_delimiter {cfg.label_delimiter!r} appears in no row of column {column!r}: is "
                                 "it the character between your labels?", file=train.path)
    names = cfg.label_names()
    if names is None:
        seen = {name for where, record in train.rows for name in _names(record[column], problem, cfg, train.path, where)}
        names = sorted(seen, key=int) if all(_is_int(n) for n in seen) else sorted(seen)
    if len(names) < 2:
        raise BertTasksError(f"the training labels are all {names[0]!r}: a classifier needs at least two labels"
                             if names else "no labels in the training data", file=train.path)
    return LabelSpace(problem, tuple(names))


def _is_int(name: str) -> bool:
    try:
        int(name)
        return True
    except ValueError:
        return False


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _names(value: Any, problem: str, cfg: ClassifyDataConfig, path: Path, where: str) -> list[str]:
    """A raw label value as label names: one (single-label), any number (multi-label)."""
    if problem == MULTI:
        if isinstance(value, list):
            items = value
        elif cfg.label_delimiter:
            items = _text(value).split(cfg.label_delimiter)
        else:
            raise BertTasksError(f"multi-label data needs a list of labels per row (JSON) or --label-delimiter; got "
                                 f"{shown(value)}", file=path, record=where)
        names = [_text(item) for item in items]
        if any(not n or isinstance(item, (list, dict)) for n, item in zip(names, items)):
            raise BertTasksError(f"empty or nested label in {shown(value)}", file=path, record=where)
        return names
    if isinstance(value, (list, dict)):
        raise BertTasksError(f"label {shown(value)} is a {type(value).__name__}; single-label data has one label per "
                             "row (a list per row: --problem-type multi_label_classification)", file=path, record=where)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return [_text(value)]


def _label(value: Any, space: LabelSpace, lookup: dict[str, int], cfg: ClassifyDataConfig, path: Path, where: str):
    if _is_empty(value):
        raise BertTasksError("empty label", file=path, record=where)
    if space.problem_type == REGRESSION:
        try:
            score = float(_text(value))
        except ValueError:
            raise BertTasksError(f"label {shown(value)} is not a number; regression labels are scores", file=path,
                                 record=where) from None
        if not math.isfinite(score):
            raise BertTasksError(f"label {shown(value)} is not a finite number", file=path, record=where)
        return score
    ids = []
    for name in _names(value, space.problem_type, cfg, path, where):
        if name not in lookup:
            raise BertTasksError(f"label {shown(name)} is not among the training labels ({', '.join(space.names)})",
                                 file=path, record=where)
        ids.append(lookup[name])
    if space.problem_type == SINGLE:
        return ids[0]
    hot = [0.0] * len(space.names)
    for i in ids:
        hot[i] = 1.0
    return hot


def build(path: Path, rows: list[tuple[str, dict]], text_columns: tuple[str, ...], label_column: str | None,
          space: LabelSpace, cfg: ClassifyDataConfig):
    """Validate rows into the common schema and make a Dataset of them."""
    lookup = {name: i for i, name in enumerate(space.names)}
    columns: dict[str, list] = {"idx": [], "text_a": [], **({"text_b": []} if len(text_columns) == 2 else {})}
    labels: list = []
    index_column = next((c for c in INDEX_COLUMNS if rows and c in rows[0][1]), None)
    for number, (where, record) in enumerate(rows):
        for out, column in zip(("text_a", "text_b"), text_columns):
            text = record[column]
            if not isinstance(text, str):
                raise BertTasksError(f"{column!r} is not text: {shown(text)}", file=path, record=where)
            if not text.strip():
                raise BertTasksError(f"empty {column!r}", file=path, record=where)
            columns[out].append(text)
        where_ = {"file": path, "record": where}
        columns["idx"].append(number if index_column is None else parse_index(record[index_column], index_column,
                                                                               where_))
        if label_column is not None:
            labels.append(_label(record[label_column], space, lookup, cfg, path, where))
    if not columns["idx"]:
        raise BertTasksError("no examples", file=path)
    if label_column is not None:
        columns["label"] = labels
    return datasets.Dataset.from_dict(columns, features=features(space, len(text_columns), label_column is not None))


def features(space: LabelSpace, arity: int, labeled: bool):
    found = {"idx": datasets.Value("int64"), "text_a": datasets.Value("string")}
    if arity == 2:
        found["text_b"] = datasets.Value("string")
    if labeled:
        found["label"] = {SINGLE: datasets.Value("int64"), REGRESSION: datasets.Value("float64"),
                          MULTI: datasets.Sequence(datasets.Value("float32"))}[space.problem_type]
    return datasets.Features(found)

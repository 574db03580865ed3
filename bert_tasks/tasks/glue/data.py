"""Reads GLUE data into ``datasets.Dataset`` splits with one schema for every task.

Three sources give the same result: the official GLUE folders as distributed
(TSV files whose columns are found by header name, quotes taken literally),
the Hub ``glue`` dataset, and the user's own CSV / TSV / JSON Lines files.
Every split has the columns ``idx`` (int), ``text_a``, ``text_b`` (pair tasks
only) and ``label`` (class id, a float score for STS-B, -1 when unlabeled).

Bad input is reported as one line naming the file, the line and the reason.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Collection

import datasets

from ...checkpoint.hub import require_hub
from ...errors import BertTasksError
from ..tabular import UNLABELED, check_width, delimited_rows, json_records, named_rows, parse_index, read_header
from .config import GlueDataConfig
from .spec import TASK_NAMES, GlueTaskSpec, get_spec, label_lookup

SPLIT_GROUPS = ("train", "validation", "test")
HUB_NAME = "nyu-mll/glue"
#: text-column pairs recognised in user files and Hub splits, tried in this order after the task's own
TEXT_COLUMN_CANDIDATES = (
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("question", "sentence"),
    ("question1", "question2"),
    ("text_a", "text_b"),
    ("sentence",),
    ("text_a",),
    ("text",),
)
INDEX_COLUMNS = ("idx", "index", "id")


def split_group(split: str) -> str:
    """``train``, ``validation`` or ``test``: which sample limit and which file kind a split key belongs to."""
    if split == "train":
        return "train"
    if split.startswith("validation"):
        return "validation"
    return "test"


def load_glue_splits(cfg: GlueDataConfig, groups: Collection[str] | None = None) -> dict[str, Any]:
    """Load the splits of ``cfg.task``; ``groups`` picks some of train/validation/test (default: train, validation, and test with do_predict).

    Keys: ``train``, ``validation`` (MNLI: ``validation_matched``/``validation_mismatched``), ``test``
    (MNLI: ``test_matched``/``test_mismatched`` and ``ax`` when the diagnostic file is there).
    """
    cfg.validate()
    spec = get_spec(cfg.task)
    wanted = set(groups) if groups is not None else {"train", "validation", *(["test"] if cfg.do_predict else [])}
    unknown = wanted - set(SPLIT_GROUPS)
    if unknown:
        raise ValueError(f"unknown split groups {sorted(unknown)}; expected some of {SPLIT_GROUPS}")
    if cfg.dataset:
        loaded = _load_hub(spec, wanted)
    elif cfg.data_dir:
        loaded = _load_glue_dir(spec, Path(cfg.data_dir), wanted)
    else:
        loaded = {split: read_user_file(path, spec, split=split) for split, path in cfg.user_files.items() if split in wanted}
    limits = {"train": cfg.max_train_samples, "validation": cfg.max_eval_samples, "test": cfg.max_predict_samples}
    return {split: _take(ds, limits[split_group(split)]) for split, ds in loaded.items()}


def _take(ds, limit: int | None):
    return ds if limit is None or limit >= len(ds) else ds.select(range(limit))


def find_tasks(glue_root: str | Path) -> list[str]:
    """Tasks whose official folder, with a train or dev file, is under ``glue_root`` (for ``--task all``)."""
    root = Path(glue_root)
    found = []
    for task in TASK_NAMES:
        spec = get_spec(task)
        folder = root / spec.folder
        if any((folder / name).is_file() for name in ("train.tsv", *spec.eval_files.values())):
            found.append(task)
    return found


# --- the official GLUE layout --------------------------------------------------------------------


def _task_folder(spec: GlueTaskSpec, data_dir: Path) -> tuple[Path, Path]:
    """(task folder, GLUE root): ``data_dir`` is the GLUE root (holding e.g. SST-2/) or a folder, named
    anything, that holds the task's own files. Which task the files are for is the user's ``--task``;
    their columns are checked against it when they are read."""
    if (data_dir / spec.folder).is_dir():
        return data_dir / spec.folder, data_dir
    other = next((get_spec(t).folder for t in TASK_NAMES if t != spec.name
                  and get_spec(t).folder.lower() == data_dir.name.lower()), None)
    if other is not None:  # RTE and WNLI files look alike: GLUE's WNLI folder must not be read as RTE
        raise BertTasksError(f"no {spec.folder} folder: this is GLUE's {other} folder; point data_dir at the GLUE root "
                             f"or at a folder with {spec.name}'s files", file=data_dir)
    own = ("train.tsv", *spec.eval_files.values())
    if any((data_dir / name).is_file() for name in own):
        return data_dir, data_dir.parent
    raise BertTasksError(
        f"no {spec.folder} data here: expected the GLUE root (holding {spec.folder}/) or a folder with "
        f"{spec.name}'s files ({', '.join(own)})",
        file=data_dir,
    )


def _load_glue_dir(spec: GlueTaskSpec, data_dir: Path, wanted: set[str]) -> dict[str, Any]:
    folder, root = _task_folder(spec, data_dir)
    files: dict[str, Path] = {}
    if "train" in wanted:
        files["train"] = folder / "train.tsv"
    if "validation" in wanted:
        files.update({split: folder / name for split, name in spec.eval_files.items()})
    if "test" in wanted:
        for test in spec.test_files:
            head, _, rest = test.path.partition("/")
            path = folder / rest if head == spec.folder else root / test.path
            if test.split == "ax" and not path.is_file():
                continue  # the diagnostic set is optional extra output, not part of MNLI
            files[test.split] = path
    for path in files.values():
        if not path.is_file():
            raise BertTasksError(f"missing file for task {spec.name}", file=path)
    return {split: read_glue_tsv(path, spec, split=split) for split, path in files.items()}


def read_glue_tsv(path: str | Path, spec: GlueTaskSpec | str, *, split: str) -> Any:
    """Read one official GLUE TSV; test files (``split`` in the test group) carry no labels."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    path = Path(path)
    labeled = split_group(split) != "test"
    rows = delimited_rows(path, delimiter="\t", quoting=csv.QUOTE_NONE)
    if spec.headerless_columns and labeled:
        width = len(spec.headerless_columns)
        named = (
            (line, dict(zip(spec.headerless_columns, check_width(fields, width, path, line, "in CoLA's headerless layout"))))
            for line, fields in rows
        )
        return _build(path, spec, named, text_columns=spec.text_columns, label_column=spec.label_column, index_column=None, split=split)
    header = read_header(rows, path)
    required = [*spec.text_columns, *([spec.label_column] if labeled else [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise BertTasksError(
            f"missing header: {spec.folder} {split} needs columns {', '.join(required)}; "
            f"first line has {', '.join(repr(c) for c in header[:12])}",
            file=path,
            record="line 1",
        )
    index_column = next((c for c in ("index", "id") if c in header), None)
    return _build(
        path, spec, named_rows(rows, header, path), text_columns=spec.text_columns,
        label_column=spec.label_column if labeled else None, index_column=index_column, split=split,
    )


# --- the user's own files ------------------------------------------------------------------------


def read_user_file(path: str | Path, spec: GlueTaskSpec | str, *, split: str = "train") -> Any:
    """Read a CSV, TSV or JSON Lines file with ``sentence``/``sentence1``+``sentence2``/... and ``label`` columns."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):
        columns, records = json_records(path)
    elif suffix in (".csv", ".tsv"):
        rows = delimited_rows(path, delimiter="," if suffix == ".csv" else "\t", quoting=csv.QUOTE_MINIMAL if suffix == ".csv" else csv.QUOTE_NONE)
        columns = read_header(rows, path)
        records = named_rows(rows, columns, path)
    else:
        raise BertTasksError("unsupported file type; use .csv, .tsv, .json or .jsonl", file=path)
    text_columns = _pick_text_columns(columns, spec, path)
    # test files are predicted, never scored: a label column there (often all -1) is ignored
    label_column = None if split_group(split) == "test" else next((c for c in ("label", spec.label_column) if c in columns), None)
    if label_column is None and split_group(split) != "test":
        raise BertTasksError(f"no 'label' column in a {split} file", file=path, record="line 1")
    index_column = next((c for c in INDEX_COLUMNS if c in columns), None)
    return _build(path, spec, records, text_columns=text_columns, label_column=label_column, index_column=index_column,
                  split=split)


def _pick_text_columns(columns: list[str], spec: GlueTaskSpec, path: Path) -> tuple[str, ...]:
    arity = len(spec.text_columns)
    for candidate in (spec.text_columns, *TEXT_COLUMN_CANDIDATES):
        if len(candidate) == arity and all(c in columns for c in candidate):
            return candidate
    options = " or ".join("/".join(c) for c in TEXT_COLUMN_CANDIDATES if len(c) == arity)
    raise BertTasksError(
        f"task {spec.name} needs {'two text columns' if arity == 2 else 'one text column'} ({options}); "
        f"found columns {', '.join(repr(c) for c in columns)}",
        file=path,
        record="line 1",
    )


def _build(path: Path, spec: GlueTaskSpec, records, *, text_columns, label_column, index_column, split: str):
    """Validate records into the common schema and make a Dataset of them."""
    lookup = label_lookup(spec.name) if not spec.is_regression else {}
    columns: dict[str, list] = {"idx": [], "text_a": [], **({"text_b": []} if spec.is_pair else {}), "label": []}
    for row_number, (line, record) in enumerate(records):
        where = {"file": path, "record": f"line {line}"}
        for out, column in zip(("text_a", "text_b"), text_columns):
            text = record[column]
            if not isinstance(text, str):
                raise BertTasksError(f"{column!r} is not text: {text!r}", **where)
            if not text.strip():
                raise BertTasksError(f"empty {column!r}", **where)
            columns[out].append(text)
        columns["idx"].append(row_number if index_column is None else parse_index(record[index_column], index_column, where))
        columns["label"].append(UNLABELED if label_column is None else _parse_label(record[label_column], spec, lookup, where))
    if not columns["idx"]:
        raise BertTasksError("no examples after the header", file=path, record="line 2")
    if spec.is_regression and split_group(split) == "validation" and len(set(columns["label"])) < 2:
        raise BertTasksError(f"{spec.name} needs at least two different scores: Pearson and Spearman correlations "
                             f"are undefined for {'one example' if len(columns['label']) == 1 else 'identical scores'}",
                             file=path)
    return _to_dataset(columns, spec)


def _to_dataset(columns: dict[str, list], spec: GlueTaskSpec):
    return datasets.Dataset.from_dict(columns, features=glue_features(spec))


def glue_features(spec: GlueTaskSpec):
    features = {"idx": datasets.Value("int64"), "text_a": datasets.Value("string")}
    if spec.is_pair:
        features["text_b"] = datasets.Value("string")
    # float64: an STS-B score keeps exactly the value its file gives (1.53333333, not 1.5333333015)
    features["label"] = datasets.Value("float64" if spec.is_regression else "int64")
    return datasets.Features(features)


def _parse_label(value: Any, spec: GlueTaskSpec, lookup: dict[str, int], where: dict) -> int | float:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise BertTasksError(f"empty or non-label value {value!r} in the label column", **where)
    text = value.strip() if isinstance(value, str) else repr(value)
    if spec.is_regression:
        try:
            score = float(text)
        except ValueError:
            raise BertTasksError(f"label {text!r} is not a number; {spec.name} labels are similarity scores", **where) from None
        if not math.isfinite(score):
            raise BertTasksError(f"label {text!r} is not a finite number", **where)
        low, high = spec.score_range or (-math.inf, math.inf)
        if not low <= score <= high:
            raise BertTasksError(f"score {text} is outside {spec.name}'s range {low:g}-{high:g}", **where)
        return score
    if text in lookup:
        return lookup[text]
    expected = ", ".join(spec.labels)
    try:
        float(text)
    except ValueError:
        raise BertTasksError(f"unknown label {text!r} for task {spec.name}; expected one of {expected}", **where) from None
    raise BertTasksError(f"float label {text!r} for classification task {spec.name}; expected one of {expected}", **where)


# --- the Hub glue dataset ------------------------------------------------------------------------


def _load_hub(spec: GlueTaskSpec, wanted: set[str]) -> dict[str, Any]:
    hub = _hub_dataset(spec.name)
    if spec.name == "mnli" and "test" in wanted:
        hub = {**hub, "ax": _hub_dataset("ax")["test"]}
    loaded = {}
    for split, ds in hub.items():
        if split_group(split) in wanted:
            loaded[split] = _normalize_hub_split(ds, spec, split)
    return loaded


def _hub_dataset(config: str):
    require_hub(f"the Hub dataset {HUB_NAME} ({config})")
    try:
        return dict(datasets.load_dataset(HUB_NAME, config))
    except OSError as exc:  # offline, no cache, or the Hub is unreachable
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BertTasksError(
            f"cannot load the Hub dataset {HUB_NAME} ({config}): {reason}; offline, use data_dir with the official GLUE files"
        ) from None


def _normalize_hub_split(ds, spec: GlueTaskSpec, split: str):
    text_columns = _pick_text_columns(list(ds.column_names), spec, Path(f"{HUB_NAME}/{spec.name}/{split}"))
    renames = dict(zip(text_columns, ("text_a", "text_b")))
    keep = ["idx", *text_columns, "label"]
    ds = ds.select_columns(keep).rename_columns(renames)
    return ds.cast(glue_features(spec)).select_columns(list(glue_features(spec)))

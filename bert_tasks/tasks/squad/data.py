"""Load SQuAD examples from any supported source into the Hub ``squad`` schema.

Sources: official SQuAD v1.1/v2.0 JSON, flattened JSON Lines / Parquet / CSV with the Hub
columns, folders written by ``save_to_disk``, and the Hub names ``squad``/``squad_v2``.
Every source ends in the same checks, so a bad record is reported as one line naming
the file, the record and the reason, whatever its format.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator

import datasets

from ...errors import BertTasksError
from ...checkpoint.hub import require_hub
from ...io import input_problem

from .config import HUB_DATASETS, SquadDataConfig

log = logging.getLogger(__name__)

EXAMPLE_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "title": datasets.Value("string"),
        "context": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answers": {
            "text": datasets.List(datasets.Value("string")),
            "answer_start": datasets.List(datasets.Value("int32")),
        },
    }
)
REQUIRED_COLUMNS = ("id", "context", "question", "answers")
# Bumped whenever loading semantics change, so cached features of older loads are not reused.
LOADER_VERSION = "1"
QUICKSTART_HINT = "pass --train-file/--validation-file or try `bert-tasks finetune squad --recipe quickstart`"

# One flattened example before checks: (id, title, context, question, texts, starts, where).
Row = tuple[Any, Any, Any, Any, Any, Any, str]


class _NonFiniteNumber(ValueError):
    pass


def _reject_non_finite(token: str) -> None:
    raise _NonFiniteNumber(token)


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")  # a BOM is harmless and common in files saved on Windows
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise BertTasksError(
            f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); re-save the file as UTF-8",
            file=path,
            record=f"line {line}",
        ) from None


def _parse_json(text: str, path: Path, line_offset: int = 0) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_non_finite)
    except RecursionError:
        raise BertTasksError("JSON nested too deeply", file=path) from None
    except _NonFiniteNumber as err:
        match = re.search(rf"[:\[,]\s*{re.escape(str(err))}", text)
        line = text.count("\n", 0, match.start()) + 1 + line_offset if match else None
        raise BertTasksError(
            f"{err} is not valid JSON (use null or a number)", file=path, record=f"line {line}" if line else None
        ) from None
    except json.JSONDecodeError as err:
        ends_early = err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated string")
        truncated = "; the file looks truncated" if ends_early else ""
        raise BertTasksError(
            f"malformed JSON: {err.msg} (column {err.colno}){truncated}", file=path, record=f"line {err.lineno + line_offset}"
        ) from None


def _require(mapping: Any, key: str, path: Path, where: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(mapping, dict):
        raise BertTasksError(f"expected an object, found {type(mapping).__name__}", file=path, record=where)
    if key not in mapping:
        raise BertTasksError(f"missing key {key!r}", file=path, record=where)
    value = mapping[key]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BertTasksError(f"{key!r} must be {expected}, found {type(value).__name__}", file=path, record=where)
    return value


def _rows_from_official(doc: Any, path: Path, version_2: bool) -> Iterator[Row]:
    if not isinstance(doc, dict):
        raise BertTasksError(
            f"top level is a {type(doc).__name__}; expected an object with a 'data' list (official SQuAD JSON) "
            "or one example object per line (JSON Lines)",
            file=path,
        )
    articles = _require(doc, "data", path, "top level", list)
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        paragraphs = _require(article, "paragraphs", path, where, list)
        title = article.get("title", "")
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            context = _require(paragraph, "context", path, where, str)
            for q, qa in enumerate(_require(paragraph, "qas", path, where, list)):
                qid = _require(qa, "id", path, f"{where}.qas[{q}]", (str, int))
                question = _require(qa, "question", path, str(qid), str)
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise BertTasksError(f"'is_impossible' must be true or false, found {type(impossible).__name__} "
                                         f"{impossible!r}", file=path, record=str(qid))
                if impossible:
                    if qa.get("answers"):
                        raise BertTasksError(
                            "'is_impossible' is true but the question has answers; SQuAD 2.0 keeps an unanswerable "
                            "question's answers empty (and its spans under 'plausible_answers')", file=path, record=str(qid))
                    if not version_2:
                        raise BertTasksError(
                            "question is marked is_impossible but SQuAD 2.0 mode is off; pass --version-2-with-negative",
                            file=path,
                            record=str(qid),
                        )
                    # v2 keeps a plausible (wrong) span for these; the gold answer is "no answer".
                    yield qid, title, context, question, [], [], str(qid)
                    continue
                answers = _require(qa, "answers", path, str(qid), list)
                texts, starts = [], []
                for answer in answers:
                    texts.append(_require(answer, "text", path, str(qid), str))
                    starts.append(_require(answer, "answer_start", path, str(qid), int))
                yield qid, title, context, question, texts, starts, str(qid)


def _flat_answers(answers: Any, path: Path, where: str) -> tuple[Any, Any]:
    if isinstance(answers, str):  # CSV stores the answers struct as JSON text
        try:
            answers = json.loads(answers, parse_constant=_reject_non_finite)
        except (ValueError, RecursionError):
            raise BertTasksError("'answers' is not valid JSON text", file=path, record=where) from None
    if isinstance(answers, list):  # also accept [{"text": ..., "answer_start": ...}, ...]
        texts = [_require(a, "text", path, where, str) for a in answers]
        starts = [_require(a, "answer_start", path, where, int) for a in answers]
        return texts, starts
    texts = _require(answers, "text", path, where, list)
    starts = _require(answers, "answer_start", path, where, list)
    return texts, starts


def _rows_from_columns(columns: dict[str, list], path: Path, where_of: Any) -> Iterator[Row]:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise BertTasksError(
            f"missing column(s) {', '.join(missing)}; expected the Hub squad columns {', '.join(REQUIRED_COLUMNS)} (title optional)",
            file=path,
        )
    n = len(columns["id"])
    titles = columns.get("title") or [""] * n
    for i, (qid, title, context, question, answers) in enumerate(
        zip(columns["id"], titles, columns["context"], columns["question"], columns["answers"])
    ):
        where = where_of(i)
        texts, starts = _flat_answers(answers, path, where)
        yield qid, title, context, question, texts, starts, where


def _rows_from_json_lines(text: str, path: Path) -> Iterator[Row]:
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        record = _parse_json(line, path, line_offset=number - 1)
        where = f"line {number}"
        if not isinstance(record, dict):
            raise BertTasksError(f"expected one JSON object per line, found {type(record).__name__}", file=path, record=where)
        for key in REQUIRED_COLUMNS:
            if key not in record:
                raise BertTasksError(f"missing key {key!r}", file=path, record=where)
        texts, starts = _flat_answers(record["answers"], path, where)
        yield record["id"], record.get("title", ""), record["context"], record["question"], texts, starts, where


def _looks_like_json_lines(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0].strip()
    try:
        return isinstance(json.loads(first), dict) and first != text.strip()
    except (ValueError, RecursionError):  # not one object a line; _parse_json says what it is
        return False


def _read_json_file(path: Path, version_2: bool) -> tuple[Iterable[Row], str]:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return _rows_from_json_lines(text, path), digest
    if _looks_like_json_lines(text):
        return _rows_from_json_lines(text, path), digest
    return _rows_from_official(_parse_json(text, path), path, version_2), digest


def _dataset_columns(ds: datasets.Dataset) -> dict[str, list]:
    return {name: ds[name] for name in ds.column_names}


def _read_with_datasets(reader, path: Path, kind: str, **kwargs: Any) -> datasets.Dataset:
    try:
        return reader(str(path), **kwargs)
    except Exception as err:  # datasets wraps parser errors in several exception types
        raise BertTasksError(f"cannot read {kind} file: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=path) from None


def _read_csv(path: Path) -> datasets.Dataset:
    """CSV, or TSV by its suffix, with the Hub squad columns; a file without them is refused before parsing."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        header = next(csv.reader(f, delimiter=delimiter), [])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise BertTasksError(f"missing column(s) {', '.join(missing)}; a SQuAD table needs the Hub squad columns "
                             f"{', '.join(REQUIRED_COLUMNS)} (or use official SQuAD JSON)", file=path, record="line 1")
    # Every column as text: pandas would otherwise turn an answer like "NA" into NaN.
    features = datasets.Features({name: datasets.Value("string") for name in header})
    kind = "TSV" if delimiter == "\t" else "CSV"
    return _read_with_datasets(datasets.Dataset.from_csv, path, kind, features=features, keep_default_na=False,
                               sep=delimiter)


def _load_saved(path: Path, split_hint: str) -> datasets.Dataset:
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:
        raise BertTasksError(f"not a folder written by save_to_disk: {str(err).splitlines()[0]}", file=path) from None
    if isinstance(loaded, datasets.DatasetDict):
        if split_hint in loaded:
            return loaded[split_hint]
        if len(loaded) == 1:
            return next(iter(loaded.values()))
        raise BertTasksError(f"has no split {split_hint!r}; splits: {', '.join(loaded)}", file=path)
    return loaded


def _load_hub(name: str, split_hint: str) -> datasets.Dataset:
    require_hub(f"--dataset {name}")
    try:
        return datasets.load_dataset(name, split=split_hint)
    except Exception as err:  # offline mode, DNS failure, proxy errors: all mean the Hub is out of reach
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BertTasksError(
            f"--dataset {name} ({split_hint} split): cannot reach the Hugging Face Hub ({reason}); {QUICKSTART_HINT}"
        ) from None


def _check_rows(rows: Iterable[Row], path: Path | None, *, version_2: bool, skip_bad_examples: bool) -> tuple[dict[str, list], int]:
    columns: dict[str, list] = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    first_seen: dict[str, str] = {}
    skipped = 0
    for qid, title, context, question, texts, starts, where in rows:
        if isinstance(qid, int) and not isinstance(qid, bool):
            qid = str(qid)
        if not isinstance(qid, str) or not qid.strip():
            raise BertTasksError("'id' is empty or not text", file=path, record=where)
        if qid in first_seen:
            raise BertTasksError(f"duplicate id {qid!r} (first used at {first_seen[qid]})", file=path, record=where)
        first_seen[qid] = where
        if not isinstance(context, str) or not context.strip():
            raise BertTasksError("'context' is empty or not text", file=path, record=where)
        if not isinstance(question, str) or not question.strip():
            raise BertTasksError("'question' is empty or not text", file=path, record=where)
        if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
            raise BertTasksError("'answers' needs 'text' and 'answer_start' lists of the same length", file=path, record=where)
        if not texts and not version_2:
            raise BertTasksError(
                "answerable SQuAD v1.1 question has no answers; for SQuAD 2.0 data pass --version-2-with-negative",
                file=path,
                record=where,
            )
        problem = _misaligned_answer(context, texts, starts)
        if problem:
            if skip_bad_examples:
                skipped += 1
                continue
            raise BertTasksError(f"{problem}; fix it or pass --skip-bad-examples", file=path, record=where)
        columns["id"].append(qid)
        columns["title"].append(title if isinstance(title, str) else "")
        columns["context"].append(context)
        columns["question"].append(question)
        columns["answers"].append({"text": texts, "answer_start": starts})
    return columns, skipped


def _misaligned_answer(context: str, texts: list, starts: list) -> str | None:
    for k, (text, start) in enumerate(zip(texts, starts)):
        if not isinstance(text, str) or not text.strip():
            return f"answer {k} has empty, whitespace-only or non-text 'text'"
        if not isinstance(start, int) or isinstance(start, bool):
            return f"answer {k} has non-integer answer_start {start!r}"
        if start < 0 or start + len(text) > len(context):
            return f"answer {k} {text!r}: answer_start {start} is outside the context ({len(context)} characters)"
        found = context[start : start + len(text)]
        if found != text:
            return f"answer {k} {text!r} does not match the context at answer_start {start} ({found!r})"
    return None


def load_squad_examples(
    source: str | os.PathLike,
    *,
    version_2: bool,
    skip_bad_examples: bool = False,
    split_hint: str = "validation",
) -> datasets.Dataset:
    """Read ``source`` (file, ``save_to_disk`` folder or Hub name) into checked examples.

    Impossible SQuAD 2.0 questions get empty answers. With ``skip_bad_examples`` an example
    whose answer does not match its context is dropped and counted in a warning instead of
    stopping the run.
    """
    name = os.fspath(source)
    path = Path(name)
    if path.is_dir():
        saved = _load_saved(path, split_hint)
        rows, identity = _rows_from_columns(_dataset_columns(saved), path, lambda i: f"record {i}"), saved._fingerprint
    elif path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".json", ".jsonl", ".ndjson"):
            rows, identity = _read_json_file(path, version_2)
        elif suffix == ".parquet":
            table = _read_with_datasets(datasets.Dataset.from_parquet, path, "Parquet")
            rows, identity = _rows_from_columns(_dataset_columns(table), path, lambda i: f"record {i}"), table._fingerprint
        elif suffix in (".csv", ".tsv"):
            table = _read_csv(path)
            rows, identity = _rows_from_columns(_dataset_columns(table), path, lambda i: f"line {i + 2}"), table._fingerprint
        else:
            raise BertTasksError(
                "unsupported file type; use official SQuAD .json, .jsonl, .parquet, .csv or a save_to_disk folder", file=path
            )
    elif (problem := input_problem(path)) not in (None, "does not exist"):  # a FIFO, socket or device: never opened
        raise BertTasksError(problem, file=path)
    elif name in HUB_DATASETS:
        hub = _load_hub(name, split_hint)
        path = None
        rows, identity = _rows_from_columns(_dataset_columns(hub), Path(name), lambda i: f"record {i}"), hub._fingerprint
    elif os.sep in name or path.suffix:
        raise BertTasksError("no such file or folder", file=path)
    else:
        raise BertTasksError(
            f"unknown dataset {name!r}: not a file or folder, and not one of the Hub datasets {', '.join(HUB_DATASETS)}"
        )

    columns, skipped = _check_rows(rows, path, version_2=version_2, skip_bad_examples=skip_bad_examples)
    if not columns["id"]:
        why = f" (all {skipped} skipped: their answers do not match their contexts)" if skipped else ""
        raise BertTasksError(f"contains no usable examples{why}", file=name)
    if skipped:
        log.warning("%s: skipped %d examples with misaligned answers", name, skipped)
    fingerprint = hashlib.sha256(
        json.dumps([LOADER_VERSION, identity, version_2, skip_bad_examples]).encode()
    ).hexdigest()[:16]
    table = datasets.table.InMemoryTable.from_pydict(columns, schema=EXAMPLE_FEATURES.arrow_schema)
    return datasets.Dataset(table, info=datasets.DatasetInfo(features=EXAMPLE_FEATURES), split=split_hint, fingerprint=fingerprint)


def load_from_config(cfg: SquadDataConfig, *, train: bool) -> datasets.Dataset:
    """Load the training or evaluation split a config names, cut to ``max_*_samples`` examples."""
    split = "train" if train else "validation"
    source = cfg.train_file if train else cfg.validation_file
    source = source or cfg.dataset
    if source is None:
        flag = "--train-file" if train else "--validation-file"
        raise BertTasksError(f"no {split} data: pass --dataset or {flag}; {QUICKSTART_HINT}", record="data config")
    examples = load_squad_examples(
        source, version_2=cfg.version_2_with_negative, skip_bad_examples=cfg.skip_bad_examples, split_hint=split
    )
    limit = cfg.max_train_samples if train else cfg.max_eval_samples
    if limit is not None and limit < len(examples):
        examples = examples.select(range(limit))
    return examples

"""Reading the user's tabular files, shared by the sentence tasks: CSV, TSV and JSON Lines as numbered records.

Every function reports bad input as one :class:`~bert_tasks.errors.BertTasksError` naming the file, the line and
the reason: not UTF-8, an unreadable row, a row of the wrong width, a repeated column, a record that is not a
JSON object, an index out of range.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from ..errors import BertTasksError, shown
from ..io import input_problem

#: the label of an example that has none (a test file's)
UNLABELED = -1


def json_records(path: Path) -> tuple[list[str], Iterator[tuple[int, dict]]]:
    lines = [(n, line) for n, line in enumerate(read_text(path).split("\n"), start=1) if line.strip()]
    if not lines:
        raise BertTasksError("file is empty", file=path, record="line 1")
    records = []
    for n, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BertTasksError(f"not a JSON object per line: {exc.msg}", file=path, record=f"line {n}") from None
        except RecursionError:
            raise BertTasksError("JSON nested too deeply", file=path, record=f"line {n}") from None
        if not isinstance(record, dict):
            raise BertTasksError("not a JSON object per line", file=path, record=f"line {n}")
        records.append((n, record))
    columns = list(records[0][1])
    for n, record in records:
        absent = [c for c in columns if c not in record]
        if absent:
            raise BertTasksError(f"missing key {absent[0]!r} present in the first record", file=path, record=f"line {n}")
    return columns, iter(records)


def read_text(path: Path) -> str:
    problem = input_problem(path)
    if problem is not None and problem != "does not exist":
        raise BertTasksError(problem, file=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BertTasksError("missing file", file=path) from None
    except IsADirectoryError:
        raise BertTasksError("expected a file, found a folder", file=path) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BertTasksError("not UTF-8 text", file=path, record=f"line {line}") from None


def delimited_rows(path: Path, *, delimiter: str, quoting: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each non-blank row; an empty file is an error."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter, quoting=quoting)
    seen = False
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise BertTasksError(f"unreadable row: {exc}", file=path, record=f"line {reader.line_num}") from None
        if not any(f.strip() for f in fields):
            continue
        seen = True
        yield reader.line_num, fields
    if not seen:
        raise BertTasksError("file is empty", file=path, record="line 1")


def read_header(rows: Iterator[tuple[int, list[str]]], path: Path) -> list[str]:
    _, header = next(rows)
    header = [c.strip() for c in header]
    if len(set(header)) != len(header):
        raise BertTasksError("repeated column name in the header", file=path, record="line 1")
    return header


def check_width(fields: list[str], width: int, path: Path, line: int, where: str = "as in the header") -> list[str]:
    if len(fields) != width:
        raise BertTasksError(f"expected {width} columns {where}, got {len(fields)}", file=path, record=f"line {line}")
    return fields


def named_rows(rows: Iterator[tuple[int, list[str]]], header: list[str], path: Path) -> Iterator[tuple[int, dict]]:
    for line, fields in rows:
        yield line, dict(zip(header, check_width(fields, len(header), path, line)))


#: an index is stored as a 64-bit integer
INDEX_RANGE = (-(2**63), 2**63 - 1)


def parse_index(value: Any, column: str, where: dict) -> int:
    try:
        index = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        raise BertTasksError(f"{column} {shown(value)} is not an integer", **where) from None
    if not INDEX_RANGE[0] <= index <= INDEX_RANGE[1]:
        raise BertTasksError(f"{column} {shown(value)} is out of range for a 64-bit index", **where)
    return index

"""Pretraining text in, fixed-length token sequences out.

:func:`load_corpus` reads plain-text files (one document a line) or JSON Lines
(one object a line, text in ``cfg.text_column``) or a Hub dataset into a
``DatasetDict`` of ``train``/``validation`` splits with one ``text`` column.
Local files go through one validating reader, so a bad byte or a broken JSON
line is reported with its file and line number, and streaming and in-memory
runs see exactly the same documents.

Validation split without ``validation_file``: the *first* documents are held
out (``validation_split`` of them; a streamed corpus, whose length is
unknown, holds out its first ``streaming_validation_lines``). A contiguous
block keeps neighbouring paragraphs of one article on the same side and works
the same way whether or not the corpus is streamed.

:func:`tokenize_and_pack` concatenates documents (a [SEP] between two) and cuts
the stream into ``[CLS] … [SEP]`` sequences of exactly ``max_seq_length``; only
the very last sequence may be shorter, so no token is dropped.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import datasets
import numpy as np
from datasets.exceptions import DatasetGenerationError
from datasets.fingerprint import Hasher

from ...checkpoint.hub import require_hub
from ...errors import BertTasksError
from ...io import input_problem
from .config import MlmDataConfig

JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson")
# Bump when the generated rows change for the same input, so stale caches are not reused.
CORPUS_FORMAT_VERSION = 1
PACKING_FORMAT_VERSION = 1
MAP_BATCH_SIZE = 1000

PACKED_FEATURES = datasets.Features(
    {
        "input_ids": datasets.List(datasets.Value("int32")),
        "token_type_ids": datasets.List(datasets.Value("int8")),
        "attention_mask": datasets.List(datasets.Value("int8")),
        "special_tokens_mask": datasets.List(datasets.Value("int8")),
        "word_starts": datasets.List(datasets.Value("int8")),
    }
)
TEXT_FEATURES = datasets.Features({"text": datasets.Value("string")})

Corpus = datasets.DatasetDict | datasets.IterableDatasetDict


# ---------------------------------------------------------------- reading files


def _is_json_lines(path: str) -> bool:
    return Path(path).suffix.lower() in JSON_LINES_SUFFIXES


def _check_readable(path: str) -> None:
    problem = input_problem(path)
    if problem == "does not exist":
        raise BertTasksError("file not found", file=path)
    if problem == "is a folder, not a file":
        raise BertTasksError("is a folder; expected a text or JSON Lines file", file=path)
    if problem is not None:
        raise BertTasksError(problem, file=path)


def _text_of_json_line(line: str, path: str, line_no: int, text_column: str) -> str:
    try:
        record = json.loads(line)
    except RecursionError:
        raise BertTasksError("JSON nested too deeply", file=path, record=f"line {line_no}") from None
    except json.JSONDecodeError as err:
        hint = "; expected JSON Lines (one object a line), not a JSON array" if line_no == 1 and line.lstrip().startswith("[") else ""
        raise BertTasksError(f"invalid JSON: {err.msg} at column {err.colno}{hint}", file=path, record=f"line {line_no}") from None
    if not isinstance(record, dict):
        raise BertTasksError(f"expected a JSON object, got {type(record).__name__}", file=path, record=f"line {line_no}")
    if text_column not in record:
        raise BertTasksError(f"no {text_column!r} field (fields: {', '.join(record) or 'none'})", file=path, record=f"line {line_no}")
    text = record[text_column]
    if not isinstance(text, str):
        raise BertTasksError(f"field {text_column!r} is {type(text).__name__}, not a string", file=path, record=f"line {line_no}")
    return text


def iter_documents(path: str, *, text_column: str = "text") -> Iterator[str]:
    """Non-blank documents of one file, one a line; bad bytes and bad JSON raise with the line number."""
    json_lines = _is_json_lines(path)
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            if b"\x00" in raw:
                raise BertTasksError("binary data (NUL byte); expected UTF-8 text", file=path, record=f"line {line_no}")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise BertTasksError(
                    f"not UTF-8 text: byte 0x{raw[err.start]:02x} at column {err.start + 1}", file=path, record=f"line {line_no}"
                ) from None
            if line_no == 1:
                line = line.removeprefix("\ufeff")
            if json_lines:
                if not line.strip():
                    continue
                line = _text_of_json_line(line, path, line_no, text_column)
            text = line.rstrip("\r\n")
            if text.strip():
                yield text


def _generate_rows(sources: list[tuple], text_column: str) -> Iterator[dict[str, str]]:
    # each source is (path, size, mtime): the stats are there only to change the cache key when the file changes
    for path, *_ in sources:
        for text in iter_documents(path, text_column=text_column):
            yield {"text": text}


def _load_files(paths: list[str], cfg: MlmDataConfig) -> datasets.Dataset | datasets.IterableDataset:
    for path in paths:
        _check_readable(path)
    # reads only up to the first document, so a stream fails here rather than mid-training
    if all(next(iter_documents(path, text_column=cfg.text_column), None) is None for path in paths):
        raise BertTasksError("no text: every line is blank", file=", ".join(paths))
    sources = [(str(Path(p).resolve()), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]
    gen_kwargs = {"sources": sources, "text_column": cfg.text_column}
    if cfg.streaming:
        return datasets.IterableDataset.from_generator(_generate_rows, features=TEXT_FEATURES, gen_kwargs=gen_kwargs)
    fingerprint = Hasher.hash([CORPUS_FORMAT_VERSION, sources, cfg.text_column])
    try:
        return datasets.Dataset.from_generator(_generate_rows, features=TEXT_FEATURES, gen_kwargs=gen_kwargs, fingerprint=fingerprint)
    except DatasetGenerationError as err:
        if isinstance(err.__cause__, BertTasksError):
            raise err.__cause__ from None
        raise


# ---------------------------------------------------------------- Hub datasets


def _load_hub(cfg: MlmDataConfig) -> Corpus:
    require_hub(f"dataset {cfg.dataset!r}")
    try:
        loaded = datasets.load_dataset(cfg.dataset, cfg.dataset_config, streaming=cfg.streaming)
    except (OSError, ValueError) as err:  # ConnectionError and DatasetNotFoundError are OSErrors
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BertTasksError(f"cannot load the dataset: {reason}", file=cfg.dataset) from None
    if "train" not in loaded:
        raise BertTasksError(f"dataset has no 'train' split (it has: {', '.join(loaded)})", file=cfg.dataset)
    return type(loaded)({name: _text_only(split, cfg) for name, split in loaded.items() if name in ("train", "validation")})


def _keep_non_blank(texts: list[str]) -> list[bool]:
    return [bool(t and t.strip()) for t in texts]


def _text_only(split, cfg: MlmDataConfig):
    """The text column alone, renamed to ``text``, blank rows dropped."""
    columns = split.column_names
    if columns is not None:
        if cfg.text_column not in columns:
            raise BertTasksError(f"no column {cfg.text_column!r} (columns: {', '.join(columns)}); set text_column", file=cfg.dataset)
        feature = split.features[cfg.text_column] if split.features else None
        if feature is not None and getattr(feature, "dtype", None) not in ("string", "large_string"):
            raise BertTasksError(f"column {cfg.text_column!r} holds {feature!r}, not text", file=cfg.dataset)
        split = split.select_columns([cfg.text_column])
    if cfg.text_column != "text":
        split = split.rename_column(cfg.text_column, "text")
    return split.filter(_keep_non_blank, batched=True, input_columns="text")


# ---------------------------------------------------------------- splits


def _split_head(train, cfg: MlmDataConfig, where: str):
    """Hold out the first documents as validation (see the module docstring for why the head)."""
    if cfg.streaming:
        held_out = cfg.streaming_validation_lines
        validation, train = train.take(held_out), train.skip(held_out)
        if next(iter(train), None) is None:
            raise BertTasksError(
                f"the streamed corpus has no more than {held_out} documents, all held out for validation; "
                "give a validation_file or lower streaming_validation_lines",
                file=where,
            )
        return train, validation
    n = len(train)
    if n < 2:
        raise BertTasksError(f"only {n} document(s): too few to hold out a validation split; give a validation_file", file=where)
    held_out = max(1, math.ceil(n * cfg.validation_split))
    words = np.cumsum([len(text.split()) for text in train["text"][: n // 2]])
    if len(words) and words[min(held_out, len(words)) - 1] < cfg.validation_min_words:  # the floor, within half the corpus
        held_out = max(held_out, min(int(np.searchsorted(words, cfg.validation_min_words)) + 1, n // 2))
    held_out = min(n - 1, held_out)
    return train.select(range(held_out, n)), train.select(range(held_out))


def load_corpus(cfg: MlmDataConfig) -> Corpus:
    """``train`` and ``validation`` splits with one ``text`` column; streamed when ``cfg.streaming``."""
    if cfg.dataset:
        corpus = _load_hub(cfg)
        train, validation = corpus["train"], corpus.get("validation")
        where = cfg.dataset
        if not cfg.streaming and len(train) == 0:
            raise BertTasksError(f"no text: every {cfg.text_column!r} of the train split is blank", file=where)
    else:
        if not cfg.train_files:
            raise BertTasksError("no training text: give train_files or dataset")
        train, validation = _load_files(list(cfg.train_files), cfg), None
        where = ", ".join(cfg.train_files)
    if cfg.validation_file:
        validation = _load_files([cfg.validation_file], cfg)
    elif validation is None:
        train, validation = _split_head(train, cfg, where)
    container = datasets.IterableDatasetDict if cfg.streaming else datasets.DatasetDict
    return container({"train": train, "validation": validation})


# ---------------------------------------------------------------- tokenizing and packing


def _word_starts(word_ids: list[int | None]) -> list[int]:
    """1 where a new word (or a special token) begins, from the fast tokenizer's word ids."""
    return [int(i == 0 or word is None or word != word_ids[i - 1]) for i, word in enumerate(word_ids)]


def _encode(texts: list[str], tokenizer, **kwargs) -> tuple[list[list[int]], list[list[int]]]:
    encoding = tokenizer(texts, return_attention_mask=False, return_token_type_ids=False, verbose=False, **kwargs)
    return encoding["input_ids"], [_word_starts(encoding.word_ids(i)) for i in range(len(texts))]


def _rows(sequences: list[tuple[list[int], list[int]]], special_ids: frozenset[int]) -> dict[str, list[list[int]]]:
    rows: dict[str, list[list[int]]] = {name: [] for name in PACKED_FEATURES}
    for ids, starts in sequences:
        rows["input_ids"].append(ids)
        rows["token_type_ids"].append([0] * len(ids))
        rows["attention_mask"].append([1] * len(ids))
        rows["special_tokens_mask"].append([int(t in special_ids) for t in ids])
        rows["word_starts"].append(starts)
    return rows


class _SequencePacker:
    """Turns a stream of tokenized documents into ``[CLS] … [SEP]`` sequences of ``max_seq_length``.

    The unfinished sequence is carried over between calls, so sequences span
    document and batch boundaries; :meth:`flush` emits the short last one.
    """

    def __init__(self, tokenizer, max_seq_length: int, *, document_separator: bool = True):
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise BertTasksError("the tokenizer has no [CLS]/[SEP] tokens, which packed sequences need; use line_by_line")
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.content_length = max_seq_length - 2
        self.document_separator = document_separator
        self.ids: list[int] = []
        self.starts: list[int] = []

    def add(self, ids: list[int], starts: list[int]) -> list[tuple[list[int], list[int]]]:
        # a separator that would open a sequence separates nothing there, so it is left out
        if self.document_separator and self.ids and ids:
            self.ids.append(self.sep)
            self.starts.append(1)
        self.ids.extend(ids)
        self.starts.extend(starts)
        full, taken = [], 0
        while len(self.ids) - taken >= self.content_length:
            full.append(self._sequence(taken, taken + self.content_length))
            taken += self.content_length
        del self.ids[:taken], self.starts[:taken]
        return full

    def flush(self) -> list[tuple[list[int], list[int]]]:
        last = [self._sequence(0, len(self.ids))] if self.ids else []
        self.ids, self.starts = [], []
        return last

    def _sequence(self, begin: int, end: int) -> tuple[list[int], list[int]]:
        starts = self.starts[begin:end]
        starts[0] = 1  # a word cut by the previous sequence starts afresh here
        return [self.cls, *self.ids[begin:end], self.sep], [1, *starts, 1]


def _packing_fingerprint(dataset, tokenizer, max_seq_length: int, line_by_line: bool, document_separator: bool) -> str:
    tokenizer_state = json.loads(tokenizer.backend_tokenizer.to_str())
    for per_call_setting in ("truncation", "padding"):  # transformers rewrites these on every call
        tokenizer_state.pop(per_call_setting, None)
    return Hasher.hash([dataset._fingerprint, PACKING_FORMAT_VERSION, tokenizer_state, max_seq_length, line_by_line, document_separator])


def tokenize_and_pack(
    dataset: datasets.Dataset | datasets.IterableDataset,
    tokenizer,
    max_seq_length: int,
    *,
    line_by_line: bool = False,
    document_separator: bool = True,
) -> datasets.Dataset | datasets.IterableDataset:
    """Token sequences with ``input_ids``, ``token_type_ids``, ``attention_mask``, ``special_tokens_mask``, ``word_starts``.

    Packed (default): documents are concatenated, a [SEP] between two when
    ``document_separator``, and cut into sequences of exactly
    ``max_seq_length``; only the last is shorter. ``line_by_line``: one
    sequence per document, truncated to ``max_seq_length``.
    ``tokenizer`` must be a fast tokenizer: word boundaries come from its word ids.
    """
    if max_seq_length < 3:
        raise BertTasksError(f"max_seq_length {max_seq_length} leaves no room for text between [CLS] and [SEP]")
    special_ids = frozenset(tokenizer.all_special_ids)
    streaming = isinstance(dataset, datasets.IterableDataset)
    text_columns = dataset.column_names or ["text"]

    if line_by_line:

        def encode_lines(batch: dict[str, list]) -> dict[str, list]:
            ids, starts = _encode(batch["text"], tokenizer, truncation=True, max_length=max_seq_length)
            return _rows(list(zip(ids, starts)), special_ids)

        kwargs: dict[str, Any] = {} if streaming else {
            "new_fingerprint": _packing_fingerprint(dataset, tokenizer, max_seq_length, True, document_separator),
            "desc": "Tokenizing lines",
        }
        return dataset.map(encode_lines, batched=True, batch_size=MAP_BATCH_SIZE, remove_columns=text_columns, features=PACKED_FEATURES, **kwargs)

    if streaming:
        documents = dataset.map(
            lambda batch: dict(zip(("ids", "starts"), _encode(batch["text"], tokenizer, add_special_tokens=False))),
            batched=True,
            batch_size=MAP_BATCH_SIZE,
            remove_columns=text_columns,
        )
        _SequencePacker(tokenizer, max_seq_length)  # fail now, not on first iteration, if [CLS]/[SEP] are missing
        return datasets.IterableDataset.from_generator(
            _packed_stream,
            features=PACKED_FEATURES,
            gen_kwargs={"documents": documents, "tokenizer": tokenizer, "max_seq_length": max_seq_length, "document_separator": document_separator},
        )

    packer = _SequencePacker(tokenizer, max_seq_length, document_separator=document_separator)
    last_index = len(dataset) - 1

    def pack(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        ids, starts = _encode(batch["text"], tokenizer, add_special_tokens=False)
        sequences = [seq for doc in zip(ids, starts) for seq in packer.add(*doc)]
        if indices[-1] == last_index:
            sequences += packer.flush()
        return _rows(sequences, special_ids)

    # batches are fed in order by one process: the packer's carry-over depends on it
    return dataset.map(
        pack,
        batched=True,
        batch_size=MAP_BATCH_SIZE,
        with_indices=True,
        remove_columns=text_columns,
        features=PACKED_FEATURES,
        new_fingerprint=_packing_fingerprint(dataset, tokenizer, max_seq_length, False, document_separator),
        desc=f"Packing {max_seq_length}-token sequences",
    )


def _packed_stream(documents, tokenizer, max_seq_length: int, document_separator: bool) -> Iterator[dict[str, list[int]]]:
    special_ids = frozenset(tokenizer.all_special_ids)
    packer = _SequencePacker(tokenizer, max_seq_length, document_separator=document_separator)

    def emit(sequences):
        rows = _rows(sequences, special_ids)
        for i in range(len(sequences)):
            yield {name: column[i] for name, column in rows.items()}

    for document in documents:
        yield from emit(packer.add(document["ids"], document["starts"]))
    yield from emit(packer.flush())

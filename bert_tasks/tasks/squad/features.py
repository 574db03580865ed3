"""Turn SQuAD examples into model features: overlapping windows over long contexts.

Each (question, context) pair is tokenized by a fast tokenizer into windows of at most
``max_seq_length`` tokens that overlap by ``doc_stride``; offset mappings tie every
token back to its characters in the context.

Training features carry ``start_positions``/``end_positions``; a window that does not
hold the whole first answer, and every unanswerable question, points at the CLS token.

Evaluation features carry ``example_id`` and ``offset_mapping``. Tokens outside the
context (question, special tokens) get the pair ``[-1, -1]`` instead of ``None`` so the
column is a plain integer list that converts to numpy without Python loops.

Nothing is padded here; the task's collate pads each batch to its longest feature.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Any

import datasets

from ...errors import BertTasksError

from .config import SquadDataConfig

#: Offset pair of a token that is not part of the context.
NOT_CONTEXT = [-1, -1]
# Bumped whenever the feature layout changes, so stale caches are never reused.
FEATURES_VERSION = "1"


def _check_tokenizer(tokenizer: Any) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise BertTasksError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; SQuAD windowing needs offset mappings "
            "(load it with use_fast=True or ship a tokenizer.json)"
        )


def _context_first(tokenizer: Any) -> bool:
    # Models padded on the left (XLNet-style) read the context first, as in HF run_qa.py.
    return getattr(tokenizer, "padding_side", "right") == "left"


def _cut_questions(questions: list[str], tokenizer: Any, max_query_length: int) -> list[str]:
    """Strip leading whitespace and cut each question to ``max_query_length`` tokens."""
    questions = [q.lstrip() for q in questions]
    # A token covers at least one byte, so only questions longer than the limit in bytes can be too long.
    long = [i for i, q in enumerate(questions) if len(q.encode("utf-8")) > max_query_length]
    if not long:
        return questions
    encoded = tokenizer(
        [questions[i] for i in long],
        add_special_tokens=False,
        truncation=True,
        max_length=max_query_length,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
    )
    for i, offsets in zip(long, encoded["offset_mapping"]):
        if len(offsets) == max_query_length:
            questions[i] = questions[i][: offsets[-1][1]]
    return questions


def _encode_windows(batch: dict[str, list], tokenizer: Any, cfg: SquadDataConfig) -> tuple[Any, int]:
    _check_tokenizer(tokenizer)
    questions = _cut_questions(batch["question"], tokenizer, cfg.max_query_length)
    contexts = batch["context"]
    context_first = _context_first(tokenizer)
    encoded = tokenizer(
        contexts if context_first else questions,
        questions if context_first else contexts,
        truncation="only_first" if context_first else "only_second",
        max_length=cfg.max_seq_length,
        stride=cfg.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    return encoded, 0 if context_first else 1


def _context_span(sequence_ids: list[int | None], context_sequence: int, example_id: Any = None) -> tuple[int, int]:
    if context_sequence not in sequence_ids:  # a context of invisible characters (zero-width spaces) has no tokens
        raise BertTasksError("the context gives no tokens at all (only invisible or unknown characters?); fix or drop "
                             "this question", record=f"question {example_id}")
    first = sequence_ids.index(context_sequence)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(context_sequence)
    return first, last


def _cls_index(input_ids: list[int], tokenizer: Any) -> int:
    cls_id = tokenizer.cls_token_id
    return input_ids.index(cls_id) if cls_id is not None and cls_id in input_ids else 0


def answer_token_span(
    offsets: list[tuple[int, int]], first: int, last: int, start_char: int, end_char: int
) -> tuple[int, int] | None:
    """Token indices of the answer's first and last tokens, or None if the window misses part of it.

    ``first``..``last`` are the window's context tokens; ``end_char`` is exclusive.
    """
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return None
    starts = [offsets[t][0] for t in range(first, last + 1)]
    ends = [offsets[t][1] for t in range(first, last + 1)]
    start_token = first + bisect_right(starts, start_char) - 1
    end_token = first + bisect_left(ends, end_char)
    if end_token < start_token:
        return None
    return start_token, end_token


def prepare_train_features(batch: dict[str, list], tokenizer: Any, cfg: SquadDataConfig) -> dict[str, list]:
    """Windows labelled with the first answer's token span, or the CLS index when it is not inside."""
    encoded, context_sequence = _encode_windows(batch, tokenizer, cfg)
    sample_of_window = encoded.pop("overflow_to_sample_mapping")
    all_offsets = encoded.pop("offset_mapping")
    starts, ends = [], []
    for window, sample in enumerate(sample_of_window):
        cls_index = _cls_index(encoded["input_ids"][window], tokenizer)
        answers = batch["answers"][sample]
        span = None
        if answers["text"]:
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            first, last = _context_span(encoded.sequence_ids(window), context_sequence, batch["id"][sample])
            span = answer_token_span(all_offsets[window], first, last, start_char, end_char)
        start, end = span or (cls_index, cls_index)
        starts.append(start)
        ends.append(end)
    encoded["start_positions"] = starts
    encoded["end_positions"] = ends
    return dict(encoded)


def prepare_eval_features(batch: dict[str, list], tokenizer: Any, cfg: SquadDataConfig) -> dict[str, list]:
    """Windows that remember their example and the character span of each context token."""
    encoded, context_sequence = _encode_windows(batch, tokenizer, cfg)
    sample_of_window = encoded.pop("overflow_to_sample_mapping")
    all_offsets = encoded.pop("offset_mapping")
    example_ids, offset_columns = [], []
    for window, sample in enumerate(sample_of_window):
        example_ids.append(batch["id"][sample])
        sequence_ids = encoded.sequence_ids(window)
        offset_columns.append(
            [list(o) if s == context_sequence else NOT_CONTEXT for s, o in zip(sequence_ids, all_offsets[window])]
        )
    encoded["example_id"] = example_ids
    encoded["offset_mapping"] = offset_columns
    return dict(encoded)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of everything in the tokenizer that can change the features: vocab, rules, special tokens."""
    _check_tokenizer(tokenizer)
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    # Truncation and padding are per-call state that the backend remembers from the last call.
    state.pop("truncation", None)
    state.pop("padding", None)
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode("utf-8"))
    digest.update(json.dumps([type(tokenizer).__name__, tokenizer.padding_side, tokenizer.cls_token_id]).encode())
    return digest.hexdigest()


def features_fingerprint(dataset: datasets.Dataset, tokenizer: Any, cfg: SquadDataConfig, *, train: bool) -> str:
    settings = [FEATURES_VERSION, dataset._fingerprint, tokenizer_fingerprint(tokenizer), train]
    settings += [cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length]
    return hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:16]


def tokenize_examples(
    dataset: datasets.Dataset,
    tokenizer: Any,
    cfg: SquadDataConfig,
    *,
    train: bool,
    cache_dir: str | Path | None = None,
) -> datasets.Dataset:
    """Map examples to features, reusing a cached result only for the same data, tokenizer and settings.

    Datasets backed by files cache next to them; an in-memory dataset caches in
    ``cache_dir`` when one is given and is recomputed otherwise.
    """
    fingerprint = features_fingerprint(dataset, tokenizer, cfg, train=train)
    options: dict[str, Any] = {}
    if not dataset.cache_files and cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        options["cache_file_name"] = str(Path(cache_dir) / f"squad-features-{fingerprint}.arrow")
    return dataset.map(
        prepare_train_features if train else prepare_eval_features,
        batched=True,
        remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": tokenizer, "cfg": cfg},
        num_proc=cfg.preprocessing_num_workers,
        new_fingerprint=fingerprint,
        desc="Windowing train examples" if train else "Windowing eval examples",
        **options,
    )

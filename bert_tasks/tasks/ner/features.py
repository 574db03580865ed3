"""Words to model features and back: sub-token alignment, windows over long sentences, one score per word.

Each sentence is tokenized as words (``is_split_into_words=True``); the fast tokenizer's ``word_ids()`` says which
word each sub-token belongs to. The first sub-token of a word carries its tag; the others get -100 (ignored by the
loss), or with ``label_all_tokens`` the word's tag with B- turned to I- (run_ner.py's rule). A sentence longer than
``max_seq_length`` becomes overlapping windows, ``doc_stride`` tokens shared by consecutive ones: nothing is cut.
Every word is scored exactly once, from the window where its first sub-token has the most context on its shorter
side (SQuAD's rule for spans), so no word, and no entity, is lost or counted twice.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import BertTasksError, shown

IGNORE = -100


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one sequence ([CLS] and [SEP]; RoBERTa's <s> and </s>)."""
    probe = tokenizer(["x"], is_split_into_words=True)
    words = probe.word_ids()
    first = words.index(0)
    last = len(words) - 1 - words[::-1].index(0)
    return list(probe["input_ids"][:first]), list(probe["input_ids"][last + 1:])


def windows(length: int, body: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) spans of at most ``body`` tokens covering ``length``, consecutive ones sharing ``stride``."""
    if length <= body:
        return [(0, length)]
    step = body - stride
    spans, start = [], 0
    while True:
        spans.append((start, min(start + body, length)))
        if start + body >= length:
            return spans
        start += step


def continuation_labels(labels: Sequence[str]) -> list[int]:
    """Label id -> the id a word's later sub-tokens train on with ``label_all_tokens``: B-X -> I-X (when the set has it)."""
    ids = {name: i for i, name in enumerate(labels)}
    return [ids.get("I-" + name[2:], i) if name.startswith("B-") else i for i, name in enumerate(labels)]


def encode(sentences: Sequence[Sequence[str]], tokenizer: Any, *, max_seq_length: int, doc_stride: int,
           tags: Sequence[Sequence[int]] | None = None, label_all_tokens: bool = False,
           continuation: Sequence[int] | None = None, sources: Sequence[dict] | None = None) -> dict[str, list]:
    """Feature columns for ``sentences`` (lists of words): input_ids, attention_mask, token_type_ids, length,
    sentence (its index), word_index (per token: the word it scores, or -1), and labels when ``tags`` are given.

    ``sources`` (per sentence: file and record) name a word the tokenizer turns into nothing."""
    prefix, suffix = special_tokens(tokenizer)
    body = max_seq_length - len(prefix) - len(suffix)
    if body - doc_stride < 1:
        raise BertTasksError(f"doc_stride {doc_stride} leaves no new tokens in a window of {max_seq_length}",
                             record="key data.doc_stride")
    encoded = tokenizer([list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False,
                        verbose=False)
    columns: dict[str, list] = {k: [] for k in ("input_ids", "attention_mask", "token_type_ids", "length", "sentence",
                                                "word_index", *(["labels"] if tags is not None else []))}
    for n, words in enumerate(sentences):
        ids, word_of = encoded["input_ids"][n], encoded.word_ids(n)
        first: dict[int, int] = {}
        for position, word in enumerate(word_of):
            first.setdefault(word, position)
        if len(first) != len(words):
            missing = next(i for i in range(len(words)) if i not in first)
            raise BertTasksError(f"word {missing} ({shown(words[missing])}) is no token at all for this tokenizer; "
                                 "drop it or replace it", **(sources[n] if sources else {}))
        spans = windows(len(ids), body, doc_stride)
        best: dict[int, tuple[float, int]] = {}  # word -> (context, window)
        for w, (start, end) in enumerate(spans):
            for word, position in first.items():
                if start <= position < end:
                    context = min(position - start, end - 1 - position)
                    if word not in best or context > best[word][0]:
                        best[word] = (context, w)
        for w, (start, end) in enumerate(spans):
            piece = range(start, end)
            scored = [word_of[p] if first[word_of[p]] == p and best[word_of[p]][1] == w else -1 for p in piece]
            pad = [-1] * len(prefix), [-1] * len(suffix)
            columns["input_ids"].append(prefix + ids[start:end] + suffix)
            size = len(prefix) + (end - start) + len(suffix)
            columns["attention_mask"].append([1] * size)
            columns["token_type_ids"].append([0] * size)
            columns["length"].append(size)
            columns["sentence"].append(n)
            columns["word_index"].append(pad[0] + scored + pad[1])
            if tags is not None:
                labels = []
                for p in piece:
                    tag = tags[n][word_of[p]]
                    labels.append(tag if first[word_of[p]] == p else
                                  (continuation[tag] if continuation is not None else tag) if label_all_tokens else IGNORE)
                columns["labels"].append([IGNORE] * len(prefix) + labels + [IGNORE] * len(suffix))
    return columns


def word_logits(features: Any, logits: Sequence[np.ndarray], word_counts: Sequence[int]) -> list[np.ndarray]:
    """Per sentence, the [words, K] logits of each word's first sub-token in the window that scores it."""
    out = [np.full((count, logits[0].shape[-1]), np.nan, dtype=np.float32) if len(logits) else None
           for count in word_counts]
    for sentence, word_index, values in zip(features["sentence"], features["word_index"], logits):
        for position, word in enumerate(word_index[: len(values)]):
            if word >= 0:
                out[sentence][word] = values[position]
    for n, values in enumerate(out):
        if values is not None and np.isnan(values).any():  # a word no window scored: a bug, never a silent loss
            raise RuntimeError(f"sentence {n}: a word was scored by no window")
    return out

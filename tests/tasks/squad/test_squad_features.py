"""Windowing: which window holds the answer, what the labels point at, and when the cache is reused."""

from __future__ import annotations

import copy

import datasets
import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.squad.config import SquadDataConfig
from bert_tasks.tasks.squad.data import load_squad_examples
from bert_tasks.tasks.squad.features import (
    features_fingerprint,
    prepare_eval_features,
    prepare_train_features,
    tokenize_examples,
)
from bert_tasks.tasks.squad.synthetic import write_synthetic_squad

# [CLS] where ? [SEP] context... [SEP]: 32 - 5 = 27 context tokens per window, windows start 19 tokens apart
CFG = SquadDataConfig(max_seq_length=32, doc_stride=8, max_query_length=8)
FIRST_CONTEXT_TOKEN = 4


@pytest.fixture(scope="module")
def words(tokenizer):
    """Lower-case words that are one token each, so token i of the context is word i."""
    vocab = sorted((i, w) for w, i in tokenizer.get_vocab().items() if w.isalpha() and w.islower() and len(w) >= 4)
    return [w for _, w in vocab[1000:1080]]


def example(words, first, last, qid="e1", question="Where?"):
    context = " ".join(words)
    answer = " ".join(words[first : last + 1])
    return {"id": [qid], "title": [""], "question": [question], "context": [context],
            "answers": [{"text": [answer], "answer_start": [context.index(answer)]}]}


def windows(batch, tokenizer):
    train = prepare_train_features(batch, tokenizer, CFG)
    evaluation = prepare_eval_features(batch, tokenizer, CFG)
    assert train["input_ids"] == evaluation["input_ids"]
    return train, evaluation


def labelled_text(train, evaluation, window, context):
    s, e = train["start_positions"][window], train["end_positions"][window]
    offsets = evaluation["offset_mapping"][window]
    return context[offsets[s][0] : offsets[e][1]]


def test_answer_inside_the_first_window_only(tokenizer, words):
    batch = example(words, 2, 4)
    train, evaluation = windows(batch, tokenizer)
    assert len(train["input_ids"]) == 4  # 80 words, 27 per window, 19 apart
    assert (train["start_positions"][0], train["end_positions"][0]) == (FIRST_CONTEXT_TOKEN + 2, FIRST_CONTEXT_TOKEN + 4)
    assert labelled_text(train, evaluation, 0, batch["context"][0]) == batch["answers"][0]["text"][0]
    assert tokenizer.decode(train["input_ids"][0][6:9]) == batch["answers"][0]["text"][0]
    assert train["start_positions"][1:] == [0, 0, 0] and train["end_positions"][1:] == [0, 0, 0]


def test_answer_straddling_a_window_end_is_labelled_in_the_next_window(tokenizer, words):
    batch = example(words, 24, 29)  # window 0 holds words 0-26, window 1 words 19-45
    train, evaluation = windows(batch, tokenizer)
    assert (train["start_positions"][0], train["end_positions"][0]) == (0, 0)
    assert (train["start_positions"][1], train["end_positions"][1]) == (FIRST_CONTEXT_TOKEN + 5, FIRST_CONTEXT_TOKEN + 10)
    assert labelled_text(train, evaluation, 1, batch["context"][0]) == batch["answers"][0]["text"][0]


def test_answer_longer_than_any_window_points_at_cls_everywhere(tokenizer, words):
    train, _ = windows(example(words, 10, 40), tokenizer)
    assert set(train["start_positions"]) == {0} and set(train["end_positions"]) == {0}


def test_impossible_question_points_at_cls(tokenizer, words):
    batch = example(words, 2, 4)
    batch["answers"] = [{"text": [], "answer_start": []}]
    train, _ = windows(batch, tokenizer)
    assert set(train["start_positions"]) == {0} and set(train["end_positions"]) == {0}


def test_eval_offsets_cover_only_context_tokens(tokenizer, words):
    batch = example(words, 2, 4, question="   Where?")
    train, evaluation = windows(batch, tokenizer)
    assert evaluation["example_id"] == ["e1"] * 4
    for ids, offsets in zip(evaluation["input_ids"], evaluation["offset_mapping"]):
        assert offsets[:FIRST_CONTEXT_TOKEN] == [[-1, -1]] * FIRST_CONTEXT_TOKEN and offsets[-1] == [-1, -1]
        for token, (a, b) in zip(ids[FIRST_CONTEXT_TOKEN:-1], offsets[FIRST_CONTEXT_TOKEN:-1]):
            assert batch["context"][0][a:b] == tokenizer.convert_ids_to_tokens(token)
    assert "start_positions" not in evaluation and "offset_mapping" not in train


def test_long_questions_are_cut_to_max_query_length(tokenizer, words):
    batch = example(words, 2, 4, question=" ".join(words[:20]) + "?")
    train, evaluation = windows(batch, tokenizer)
    first_sep = train["input_ids"][0].index(tokenizer.sep_token_id)
    assert train["input_ids"][0][1:first_sep] == tokenizer.convert_tokens_to_ids(words[: CFG.max_query_length])
    assert labelled_text(train, evaluation, 0, batch["context"][0]) == batch["answers"][0]["text"][0]


@pytest.mark.parametrize("kind", ["wordpiece", "byte-level-bpe"])
def test_labels_decode_to_answers_across_a_synthetic_set(tmp_path, tokenizer, kind):
    """WordPiece (BERT) and byte-level BPE (RoBERTa): the labelled span's offsets give the answer text exactly."""
    if kind == "byte-level-bpe":
        from toy import bpe_tokenizer

        tokenizer = bpe_tokenizer(tmp_path / "bpe")
    examples = load_squad_examples(write_synthetic_squad(tmp_path / "s.json", n_articles=4, seed=3, version_2=True), version_2=True)
    cfg = SquadDataConfig(max_seq_length=48, doc_stride=16, max_query_length=16)
    train = tokenize_examples(examples, tokenizer, cfg, train=True)
    evaluation = tokenize_examples(examples, tokenizer, cfg, train=False)
    assert len(train) == len(evaluation) > len(examples)  # contexts are split into several windows
    by_id = {e["id"]: e for e in examples}
    labelled = 0
    for t, e in zip(train, evaluation):
        answers = by_id[e["example_id"]]["answers"]
        if t["start_positions"] == 0:
            continue
        labelled += 1
        context = by_id[e["example_id"]]["context"]
        span = context[e["offset_mapping"][t["start_positions"]][0] : e["offset_mapping"][t["end_positions"]][1]]
        assert span == answers["text"][0]
    assert labelled >= sum(1 for a in examples["answers"] if a["text"])  # every answer fits in some window here


def test_left_padding_tokenizer_reads_context_first(tokenizer, words):
    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    batch = example(words, 2, 4)
    train = prepare_train_features(batch, left, CFG)
    evaluation = prepare_eval_features(batch, left, CFG)
    assert train["input_ids"][0][1] == tokenizer.convert_tokens_to_ids(words[0])  # context right after [CLS]
    assert labelled_text(train, evaluation, 0, batch["context"][0]) == batch["answers"][0]["text"][0]


def test_slow_tokenizers_are_rejected(words):
    class Slow:
        is_fast = False

    with pytest.raises(BertTasksError, match="not a fast tokenizer"):
        prepare_train_features(example(words, 2, 4), Slow(), CFG)


def test_cache_is_reused_only_for_the_same_data_tokenizer_and_settings(tmp_path, tokenizer, words):
    examples = datasets.Dataset.from_dict(example(words, 2, 4))
    cache = tmp_path / "cache"
    first = tokenize_examples(examples, tokenizer, CFG, train=True, cache_dir=cache)
    again = tokenize_examples(examples, tokenizer, CFG, train=True, cache_dir=cache)
    assert first.cache_files and again.cache_files == first.cache_files
    assert len(list(cache.glob("squad-features-*.arrow"))) == 1

    base = features_fingerprint(examples, tokenizer, CFG, train=True)
    left = copy.deepcopy(tokenizer)
    left.padding_side = "left"
    grown = copy.deepcopy(tokenizer)
    grown.add_tokens(["zzyzx"])
    changed = [
        features_fingerprint(examples, tokenizer, CFG, train=False),
        features_fingerprint(examples, tokenizer, SquadDataConfig(max_seq_length=32, doc_stride=9, max_query_length=8), train=True),
        features_fingerprint(examples, left, CFG, train=True),
        features_fingerprint(examples, grown, CFG, train=True),
        features_fingerprint(examples.select([0]).map(lambda r: {"question": "Why?"}), tokenizer, CFG, train=True),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
    wider = tokenize_examples(examples, tokenizer, SquadDataConfig(max_seq_length=64, doc_stride=8, max_query_length=8), train=True, cache_dir=cache)
    assert len(list(cache.glob("squad-features-*.arrow"))) == 2 and len(wider) < len(first)

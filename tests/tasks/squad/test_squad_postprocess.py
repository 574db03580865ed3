"""Answer extraction from window logits: legal spans, cross-window choice, the SQuAD 2.0 null rule, and
bit-for-bit agreement with the reference algorithm of HF run_qa.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.squad_pipeline import reference_postprocess
from bert_tasks.tasks.squad.postprocess import postprocess_predictions, write_prediction_files

CONTEXT = "alpha beta gamma delta epsilon"
WORDS = [(0, 5), (6, 10), (11, 16), (17, 22), (23, 30)]
NO = [-1, -1]
# [CLS] q q [SEP] alpha beta gamma delta epsilon [SEP]
OFFSETS = [NO, NO, NO, NO, *map(list, WORDS), NO]


def logits(peaks: dict[int, float], n: int = 10) -> np.ndarray:
    row = np.zeros(n, dtype=np.float32)
    for i, v in peaks.items():
        row[i] = v
    return row


def run(start, end, offsets=(OFFSETS,), ids=("q",), contexts=(CONTEXT,), example_of=None, **settings):
    examples = {"id": list(ids), "context": list(contexts)}
    features = {"example_id": example_of or [ids[0]] * len(offsets), "offset_mapping": list(offsets)}
    return postprocess_predictions(examples, features, start, end, **settings)


def test_best_legal_span_wins_over_illegal_higher_scores():
    start = [logits({1: 10, 6: 5, 4: 3})]  # token 1 is question text: never a start
    end = [logits({5: 5, 7: 4, 2: 9})]  # token 5 ends before gamma (token 6) starts
    result = run(start, end)
    assert result.predictions == {"q": "gamma delta"}  # (6, 7): 5 + 4 beats (4, 5): 3 + 5
    texts = [e["text"] for e in result.nbest["q"]]
    assert texts[:3] == ["gamma delta", "alpha beta", "alpha beta gamma delta"]
    assert result.answer_offsets["q"] == (11, 22) and result.nbest["q"][0]["start"] == 11
    assert sum(e["probability"] for e in result.nbest["q"]) == pytest.approx(1.0)


def test_max_answer_length_counts_tokens():
    start, end = [logits({4: 6, 5: 2})], [logits({8: 6, 6: 1, 5: 0.5})]
    assert run(start, end).predictions["q"] == "alpha beta gamma delta epsilon"  # (4, 8): 12
    assert run(start, end, max_answer_length=4).predictions["q"] == "beta gamma delta epsilon"  # (5, 8): 8 > (4, 6): 7
    assert run(start, end, max_answer_length=2).predictions["q"] == "alpha beta"  # (4, 5): 6.5 > (5, 6): 3


def test_best_span_is_chosen_across_windows():
    second = [NO, NO, NO, NO, NO, NO, *map(list, WORDS[2:]), NO, NO][:10]  # window 2 holds gamma..epsilon
    start = [logits({4: 2}), logits({7: 3})]
    end = [logits({5: 2}), logits({8: 3})]
    result = run(start, end, offsets=(OFFSETS, second))
    assert result.predictions["q"] == "delta epsilon"
    assert [e["text"] for e in result.nbest["q"]][:2] == ["delta epsilon", "alpha beta"]


def test_v2_uses_the_lowest_null_score_and_the_threshold():
    start = [logits({0: 3.0, 6: 2.0}), logits({0: 1.0})]
    end = [logits({0: 3.0, 7: 1.5}), logits({0: 0.5})]
    result = run(start, end, offsets=(OFFSETS, OFFSETS), version_2_with_negative=True)
    # null = min(6.0, 1.5) = 1.5; best span gamma delta = 3.5; odds = 1.5 - 2.0 - 1.5 = -2.0
    assert result.null_odds["q"] == -2.0 and result.predictions["q"] == "gamma delta"
    assert "" in [e["text"] for e in result.nbest["q"]]
    assert run(start, end, offsets=(OFFSETS, OFFSETS), version_2_with_negative=True, null_score_diff_threshold=-2.5).predictions["q"] == ""
    assert run(start, end, offsets=(OFFSETS, OFFSETS), version_2_with_negative=True, null_score_diff_threshold=-2.0).predictions["q"] == "gamma delta"


def test_no_legal_span_gives_empty_like_the_reference():
    no_context = [[-1, -1]] * 10
    start, end = [logits({4: 1})], [logits({5: 1})]
    v1 = run(start, end, offsets=(no_context,))
    assert v1.predictions["q"] == "empty" and v1.nbest["q"][0]["probability"] == 1.0
    v2 = run(start, end, offsets=(no_context,), version_2_with_negative=True)
    assert [(e["text"], e["start"]) for e in v2.nbest["q"]] == [("empty", -1), ("", -1)]
    assert v2.predictions["q"] == "empty" and v2.null_odds["q"] == 0.0  # odds 0 is not above threshold 0
    v2 = run([logits({0: 1.0, 4: 1})], end, offsets=(no_context,), version_2_with_negative=True)
    assert v2.predictions["q"] == "" and v2.null_odds["q"] == 1.0 and v2.answer_offsets["q"] is None


def random_case(seed, n_examples=30, ties=False):
    """Examples with 1-3 windows of varied length over random contexts, and logits (optionally coarse, to force ties)."""
    rng = np.random.default_rng(seed)
    ids, contexts, example_of, offsets, start, end = [], [], [], [], [], []
    for x in range(n_examples):
        n_words = int(rng.integers(3, 40))
        context = " ".join(f"w{x}_{i}" for i in range(n_words))
        ids.append(f"e{x}")
        contexts.append(context)
        spans, at = [], 0
        for i in range(n_words):
            word = f"w{x}_{i}"
            spans.append([at, at + len(word)])
            at += len(word) + 1
        for w in range(int(rng.integers(1, 4))):
            lo = int(rng.integers(0, n_words))
            window = spans[lo : lo + int(rng.integers(1, 30))]
            mapping = [NO, NO, NO] + window + [NO]
            n = len(mapping)
            example_of.append(f"e{x}")
            offsets.append(mapping)
            s, e = rng.normal(0, 3, n), rng.normal(0, 3, n)
            if ties:
                s, e = np.round(s), np.round(e)
            start.append(s.astype(np.float32))
            end.append(e.astype(np.float32))
    order = rng.permutation(len(example_of))  # an example's windows need not be adjacent
    pick = lambda seq: [seq[i] for i in order]
    return {"id": ids, "context": contexts}, {"example_id": pick(example_of), "offset_mapping": pick(offsets)}, pick(start), pick(end)


class _Rows:
    """Row access like a datasets.Dataset, which the reference expects of its features."""

    def __init__(self, columns):
        self.columns = columns

    def __len__(self):
        return len(self.columns["example_id"])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.columns.items()}


class _Examples(_Rows):
    def __len__(self):
        return len(self.columns["id"])

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.columns[key]
        return {k: v[key] for k, v in self.columns.items()}


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("version_2", [False, True])
@pytest.mark.parametrize("n_best_size, max_answer_length", [(20, 30), (3, 4)])
def test_identical_to_the_reference_algorithm(ties, version_2, n_best_size, max_answer_length):
    settings = dict(n_best_size=n_best_size, max_answer_length=max_answer_length, version_2_with_negative=version_2, null_score_diff_threshold=0.5)
    for seed in range(3):
        examples, features, start, end = random_case(seed, ties=ties)
        ours = postprocess_predictions(examples, features, start, end, **settings)
        answers, nbest, odds = reference_postprocess(_Examples(examples), _Rows(features), start, end, **settings)
        assert ours.predictions == answers
        assert ours.null_odds == odds
        for example_id, entries in nbest.items():
            got = [{k: e[k] for k in ("text", "probability", "start_logit", "end_logit")} for e in ours.nbest[example_id]]
            assert got == [{k: e[k] for k in ("text", "probability", "start_logit", "end_logit")} for e in entries]


def test_hf_style_none_offsets_and_padded_logit_matrix_give_the_same_answers():
    examples, features, start, end = random_case(7)
    expected = postprocess_predictions(examples, features, start, end, version_2_with_negative=True)
    hf_style = dict(features, offset_mapping=[[None if p == NO else p for p in row] for row in features["offset_mapping"]])
    width = max(len(r) for r in start)
    pad = lambda rows: np.stack([np.pad(r, (0, width - len(r)), constant_values=-1e4) for r in rows])
    again = postprocess_predictions(examples, hf_style, pad(start), pad(end), version_2_with_negative=True)
    assert again.predictions == expected.predictions and again.null_odds == expected.null_odds


def test_dataset_features_work_and_prediction_files_are_written(tmp_path):
    import datasets

    examples, features, start, end = random_case(3, n_examples=5)
    ds_examples, ds_features = datasets.Dataset.from_dict(examples), datasets.Dataset.from_dict(features)
    result = postprocess_predictions(ds_examples, ds_features, start, end, version_2_with_negative=True)
    assert result.predictions == postprocess_predictions(examples, features, start, end, version_2_with_negative=True).predictions
    paths = write_prediction_files(tmp_path, result, version_2=True)
    assert [p.name for p in paths] == ["predictions.json", "nbest_predictions.json", "null_odds.json"]
    assert json.loads(paths[0].read_text()) == result.predictions
    assert json.loads(paths[2].read_text()) == result.null_odds
    assert json.loads(paths[1].read_text())["e0"][0]["text"] == result.nbest["e0"][0]["text"]
    assert len(write_prediction_files(tmp_path / "v1", result, version_2=False)) == 2

"""The bundled SQuAD v1.1 / v2.0 metrics against hand-computed scores of the official scripts."""

from __future__ import annotations

import pytest

from bert_tasks.metrics import load_metric
from bert_tasks.tasks.squad.scoring import score_predictions


def ref(qid, *golds):
    return {"id": qid, "answers": {"text": list(golds), "answer_start": [0] * len(golds)}}


def v1(pairs):
    """pairs: [(prediction, [golds])] -> (exact_match, f1)"""
    result = load_metric("squad").compute(
        predictions=[{"id": str(i), "prediction_text": p} for i, (p, _) in enumerate(pairs)],
        references=[ref(str(i), *g) for i, (_, g) in enumerate(pairs)],
    )
    return result["exact_match"], result["f1"]


@pytest.mark.parametrize(
    "prediction, golds, exact, f1",
    [
        ("The Cat!", ["cat"], 100.0, 100.0),  # case, article, punctuation
        ("an apple, a pear", ["apple pear"], 100.0, 100.0),
        ("U.S.A.", ["usa"], 100.0, 100.0),
        ("theatre", ["atre"], 0.0, 0.0),  # articles only as whole words
        ("the big red cat", ["red cat sat"], 0.0, 100 * 2 / 3),  # 2 common of 3 and 3 tokens
        ("red", ["red cat sat"], 0.0, 50.0),  # P 1, R 1/3 -> 2 * 1/3 / (4/3) = 0.5
        ("red cat", ["dog", "red cat sat", "red"], 0.0, 100 * 0.8),  # best gold: P 1, R 2/3 -> 0.8; "red": P 1/2 R 1 -> 2/3
        ("Café", ["café"], 100.0, 100.0),  # lower-casing keeps accents
        ("cafe", ["café"], 0.0, 0.0),  # ...and never strips them
        ("東京 タワー", ["東京"], 0.0, 100 * 2 / 3),  # CJK splits on whitespace only: P 1/2, R 1
        ("red red", ["red"], 0.0, 100 * 2 / 3),  # counts clip: common 1, P 1/2, R 1
    ],
)
def test_v11_exact_and_f1_by_hand(prediction, golds, exact, f1):
    got_exact, got_f1 = v1([(prediction, golds)])
    assert got_exact == pytest.approx(exact) and got_f1 == pytest.approx(f1)


def test_v11_averages_over_questions_and_counts_missing_as_zero():
    assert v1([("cat", ["cat"]), ("dog", ["cat"])]) == (50.0, 50.0)
    result = load_metric("squad").compute(predictions=[{"id": "a", "prediction_text": "cat"}, {"id": "x", "prediction_text": "cat"}], references=[ref("a", "cat"), ref("b", "cat")])
    assert result == {"exact_match": 50.0, "f1": 50.0}


def v2(rows, **kwargs):
    """rows: [(prediction, no_answer_probability, [golds])]"""
    return load_metric("squad_v2").compute(
        predictions=[{"id": str(i), "prediction_text": p, "no_answer_probability": na} for i, (p, na, _) in enumerate(rows)],
        references=[ref(str(i), *g) for i, (_, _, g) in enumerate(rows)],
        **kwargs,
    )


def test_v2_empty_prediction_is_right_only_for_impossible_questions():
    result = v2([("", 0.0, []), ("x", 0.0, []), ("", 0.0, ["cat"]), ("the cat", 0.0, ["cat", "a"])])
    # gold "a" normalises to nothing and is dropped; question 4 matches "cat"
    assert result["NoAns_exact"] == 50.0 and result["NoAns_f1"] == 50.0 and result["NoAns_total"] == 2
    assert result["HasAns_exact"] == 50.0 and result["HasAns_total"] == 2
    assert result["exact"] == 50.0 and result["f1"] == 50.0 and result["total"] == 4


def test_v2_gold_that_normalises_to_nothing_counts_as_no_answer_but_stays_has_answer():
    result = v2([("", 0.0, ["the"])])
    assert result["HasAns_total"] == 1 and result["exact"] == 100.0 and "NoAns_total" not in result


def test_v2_partial_f1_by_hand():
    result = v2([("big red cat", 0.0, ["red cat sat"]), ("", 0.0, [])])
    assert result["f1"] == pytest.approx((100 * 2 / 3 + 100) / 2)
    assert result["HasAns_f1"] == pytest.approx(100 * 2 / 3)


def test_v2_best_threshold_search_by_hand():
    rows = [("cat", 0.1, ["cat"]), ("x", 0.5, []), ("dog", 0.8, ["cat"])]
    result = v2(rows)
    # start at 1 (the no-answer question right); na 0.1 answers q0 (+1 -> 2, best); q1 wrong answer (-1); q2 +0
    assert result["best_exact"] == pytest.approx(200 / 3) and result["best_exact_thresh"] == 0.1
    assert result["best_f1"] == pytest.approx(200 / 3) and result["best_f1_thresh"] == 0.1
    # with the official default threshold 1.0 nothing is overruled: q0 right only
    assert result["exact"] == pytest.approx(100 / 3)


def test_v2_threshold_turns_confident_no_answers_into_empty_predictions():
    rows = [("cat", 0.9, ["cat"]), ("x", 0.95, [])]
    assert v2(rows)["exact"] == 50.0
    assert v2(rows, no_answer_threshold=0.92)["exact"] == 100.0  # q1 becomes "" (right), q0 stays right
    assert v2(rows, no_answer_threshold=0.5)["exact"] == 50.0  # q0 becomes "" (wrong), q1 "" (right)


def test_score_predictions_v1_and_v2_keys_and_values():
    examples = [ref("a", "the cat"), ref("b", "dog"), ref("c")]
    v1_scores = score_predictions(examples[:2], {"a": "cat", "b": "dogs"})
    assert v1_scores == {"exact_match": 50.0, "f1": 50.0, "total": 2}

    scores = score_predictions(examples, {"a": "cat", "b": "", "c": ""}, null_odds={"a": -3.0, "b": 2.0, "c": 5.0}, version_2=True)
    assert scores["exact_match"] == pytest.approx(200 / 3) and scores["total"] == 3
    assert scores["HasAns_exact"] == 50.0 and scores["NoAns_exact"] == 100.0
    # thresholds: start 1; -3.0 answers a (+1 -> 2); 2.0 b has empty prediction (+0); 5.0 c empty (+0)
    assert scores["best_exact"] == pytest.approx(200 / 3) and scores["best_exact_thresh"] == -3.0
    assert set(scores) >= {"HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"}
    assert scores["answered"] == 1  # only "a" got a non-empty answer
    # null odds above the official 1.0 must not overrule the final answers
    assert score_predictions(examples, {"a": "cat", "b": "dog", "c": ""}, null_odds={"a": 9.0, "b": 9.0, "c": 9.0}, version_2=True)["exact_match"] == 100.0


def test_v1_metric_refuses_questions_without_gold():
    with pytest.raises(ValueError, match="no gold answer"):
        v1([("x", [])])

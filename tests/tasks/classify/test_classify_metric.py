"""The classify metric against a direct computation on small cases."""

from __future__ import annotations

import numpy as np
import pytest

from bert_tasks.metrics import load_metric


def test_single_label_per_class_and_averages_by_hand():
    # gold 0 0 1 1 2 ; predicted 0 1 1 1 0
    found = load_metric("classify", "single_label_classification").compute(
        predictions=[0, 1, 1, 1, 0], references=[0, 0, 1, 1, 2], num_labels=4)
    assert found["accuracy"] == pytest.approx(3 / 5)
    # class 0: tp 1, fp 1, fn 1 -> p=r=f1=1/2; class 1: tp 2, fp 1, fn 0 -> p 2/3, r 1, f1 0.8; classes 2, 3: 0
    assert found["per_class"]["0"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert found["per_class"]["1"]["f1"] == pytest.approx(0.8) and found["per_class"]["3"]["support"] == 0
    assert found["macro_f1"] == pytest.approx((0.5 + 0.8 + 0 + 0) / 4)
    assert found["micro_f1"] == pytest.approx(3 / 5)  # single-label: micro F1 is accuracy


def test_multi_label_micro_macro_and_subset_by_hand():
    gold = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    pred = [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    found = load_metric("classify", "multi_label_classification").compute(predictions=pred, references=gold)
    # tp 3 (a@1, b@2, a@3), fp 1 (c@3), fn 2 (c@1, b@3)
    assert found["micro_precision"] == pytest.approx(3 / 4) and found["micro_recall"] == pytest.approx(3 / 5)
    assert found["micro_f1"] == pytest.approx(2 * 3 / (4 + 5))
    assert found["subset_accuracy"] == pytest.approx(1 / 3)
    per_label = [1.0, 2 * 1 / (1 + 2), 0.0]  # a: perfect; b: tp 1, 1 predicted, 2 gold; c: tp 0
    assert found["macro_f1"] == pytest.approx(np.mean(per_label))


def test_regression_by_hand():
    found = load_metric("classify", "regression").compute(predictions=[1.0, 2.0, 4.0], references=[1.0, 3.0, 5.0])
    assert found["mse"] == pytest.approx((0 + 1 + 1) / 3)
    assert found["spearmanr"] == pytest.approx(1.0)
    x, y = np.array([1.0, 2, 4]), np.array([1.0, 3, 5])
    assert found["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_threshold_tuning_picks_the_best_micro_f1():
    from bert_tasks.tasks.classify.task import tune_threshold

    probabilities = np.array([[0.3, 0.9], [0.25, 0.1], [0.35, 0.8]])
    gold = np.array([[1, 1], [0, 0], [1, 1]])
    # from 0.3 up the second row's 0.25 is out and row 1's 0.3 in until 0.35; 0.3 scores all four positives right
    assert tune_threshold(probabilities, gold) == pytest.approx(0.3)

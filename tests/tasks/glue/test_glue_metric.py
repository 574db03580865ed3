"""The offline GLUE metric against independent scikit-learn / scipy computations."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bert_tasks.metrics import load_metric, metric_path


def classes(seed: int, n: int = 200, k: int = 2):
    rng = np.random.default_rng(seed)
    references = rng.integers(0, k, n)
    # mostly right, so the scores are far from chance and from each other
    predictions = np.where(rng.random(n) < 0.7, references, rng.integers(0, k, n))
    return predictions, references


def test_loads_offline_from_the_package():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert metric_path("glue").is_file()
    source = metric_path("glue").read_text()
    assert "\nimport evaluate\n" in source and "\nimport datasets\n" in source


def test_cola_matthews():
    predictions, references = classes(0)
    result = load_metric("glue", "cola").compute(predictions=predictions, references=references)
    assert result == {"matthews_correlation": pytest.approx(matthews_corrcoef(references, predictions))}


@pytest.mark.parametrize("task, k", [("sst2", 2), ("mnli", 3), ("qnli", 2), ("rte", 2), ("wnli", 2)])
def test_accuracy_tasks(task, k):
    predictions, references = classes(1, k=k)
    result = load_metric("glue", task).compute(predictions=predictions, references=references)
    assert result == {"accuracy": pytest.approx(accuracy_score(references, predictions))}


@pytest.mark.parametrize("task", ["mrpc", "qqp"])
def test_f1_and_accuracy_tasks(task):
    predictions, references = classes(2)
    result = load_metric("glue", task).compute(predictions=predictions, references=references)
    assert result == {"f1": pytest.approx(f1_score(references, predictions)), "accuracy": pytest.approx(accuracy_score(references, predictions))}
    assert result["f1"] != pytest.approx(result["accuracy"])


def test_stsb_correlations_and_batches():
    rng = np.random.default_rng(3)
    references = rng.uniform(0, 5, 300).astype(np.float32)
    predictions = (references + rng.normal(0, 1.0, 300)).astype(np.float32)
    metric = load_metric("glue", "stsb")
    metric.add_batch(predictions=predictions[:100], references=references[:100])
    result = metric.compute(predictions=predictions[100:], references=references[100:])
    assert result["pearson"] == pytest.approx(pearsonr(predictions, references)[0], rel=1e-5)
    assert result["spearmanr"] == pytest.approx(spearmanr(predictions, references)[0], rel=1e-5)


def test_stsb_column_predictions_are_flattened_not_broadcast():
    rng = np.random.default_rng(4)
    references = rng.uniform(0, 5, 64)
    predictions = references + rng.normal(0, 0.5, 64)
    metric = load_metric("glue", "stsb")
    flat = metric.compute(predictions=predictions, references=references)
    column = metric.compute(predictions=predictions[:, None], references=references)
    assert column == pytest.approx(flat)
    assert flat["pearson"] > 0.9
    with pytest.raises(ValueError, match="shape"):
        metric.compute(predictions=np.zeros((64, 2)), references=references)


def test_unknown_task_is_refused():
    with pytest.raises(KeyError, match="unknown GLUE task"):
        load_metric("glue", "squad")

"""The GLUE score, the results table and the leaderboard submission files."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from bert_tasks.tasks.glue.report import glue_score, render_glue_table, submission_name, task_results, write_submission
from bert_tasks.tasks.glue.spec import TASK_NAMES

RESULTS = {
    "cola": {"matthews_correlation": 0.55},
    "mrpc": {"f1": 0.9, "accuracy": 0.8},
    "mnli": {"accuracy_m": 0.8, "accuracy_mm": 0.6},
    "stsb": {"pearson": 0.9, "spearmanr": 0.74},
}


def test_glue_score_averages_two_metric_tasks_first():
    # (0.55 + (0.9 + 0.8) / 2 + (0.8 + 0.6) / 2 + (0.9 + 0.74) / 2) / 4
    assert glue_score(RESULTS) == pytest.approx(0.73)
    assert glue_score({**RESULTS, "ax": {"matthews_correlation": 0.0}}) == pytest.approx(0.73)
    assert glue_score({"sst2": {"accuracy": 0.9, "loss": 7.0}}) == pytest.approx(0.9)
    with pytest.raises(KeyError, match="mnli results lack accuracy_mm"):
        glue_score({"mnli": {"accuracy_m": 0.8}})


def test_task_results_keeps_mnli_dev_sets_apart():
    merged = task_results({"validation_matched": {"accuracy": 0.8}, "validation_mismatched": {"accuracy": 0.6}})
    assert merged == {"accuracy_m": 0.8, "accuracy_mm": 0.6}
    assert task_results({"validation": {"f1": 0.5, "accuracy": 0.25}}) == {"f1": 0.5, "accuracy": 0.25}


def test_table_shows_percentages_and_the_average():
    console = Console(record=True, width=120)
    console.print(render_glue_table(RESULTS))
    text = console.export_text()
    for expected in ("CoLA", "55.0", "MRPC", "F1/Acc", "90.0/80.0", "85.0", "MNLI", "80.0/60.0", "70.0", "STS-B", "90.0/74.0", "82.0", "Average", "73.0"):
        assert expected in text, expected


def test_submission_names_are_fixed_by_the_spec():
    assert [submission_name(t) for t in TASK_NAMES] == [
        "CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv",
    ]
    assert submission_name("mnli", "test_mismatched") == "MNLI-mm.tsv"
    assert submission_name("mnli", "ax") == "AX.tsv"
    with pytest.raises(ValueError):
        submission_name("sst2", "../../etc/passwd")


def test_classification_submission_uses_glue_label_names(tmp_path):
    path = write_submission("rte", np.array([1, 0, 1]), [10, 11, 12], tmp_path)
    assert path == tmp_path / "RTE.tsv"
    assert path.read_text() == "index\tprediction\n10\tnot_entailment\n11\tentailment\n12\tnot_entailment\n"
    assert write_submission("sst2", [0, 1], [0, 1], tmp_path).read_text() == "index\tprediction\n0\t0\n1\t1\n"
    for split, name in (("test_matched", "MNLI-m.tsv"), ("test_mismatched", "MNLI-mm.tsv"), ("ax", "AX.tsv")):
        out = write_submission("mnli", [2, 1, 0], [0, 1, 2], tmp_path, split=split)
        assert out.name == name
        assert out.read_text().splitlines()[1:] == ["0\tcontradiction", "1\tneutral", "2\tentailment"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "RTE.tsv", "SST-2.tsv"]


def test_stsb_submission_is_clipped_with_three_decimals(tmp_path):
    path = write_submission("stsb", np.array([[-0.4], [2.71828], [5.6]], dtype=np.float32), [0, 1, 2], tmp_path)
    assert path.read_text() == "index\tprediction\n0\t0.000\n1\t2.718\n2\t5.000\n"


def test_bad_predictions_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one prediction per index"):
        write_submission("sst2", [0, 1], [0], tmp_path)
    with pytest.raises(ValueError, match="class ids"):
        write_submission("sst2", [0, 2], [0, 1], tmp_path)
    with pytest.raises(ValueError, match="class ids"):
        write_submission("mnli", [0.2, 0.7], [0, 1], tmp_path)
    assert list(tmp_path.iterdir()) == []

"""Expected calibration error: a by-hand case, and ``ece`` in the eval results of GLUE classification runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bert_tasks.cli import main
from bert_tasks.metrics.calibration import expected_calibration_error, softmax
from test_bad_inputs import sst2_dir


def test_ece_by_hand():
    # confidences 0.85, 0.7, 0.62, 0.55 fall in four different bins of width 1/15; right, wrong, right, wrong
    probs = np.array([[0.85, 0.15], [0.7, 0.3], [0.38, 0.62], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    assert expected_calibration_error(probs, labels) == pytest.approx((0.15 + 0.7 + 0.38 + 0.55) / 4)
    # two in one bin (0.9 and 0.92 -> bin 14 of 15): their mean accuracy 0.5 against mean confidence 0.91
    probs = np.array([[0.9, 0.1], [0.08, 0.92], [0.3, 0.7]])
    labels = np.array([0, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(2 / 3 * abs(0.5 - 0.91) + 1 / 3 * abs(1 - 0.7))
    assert expected_calibration_error(np.eye(3), np.arange(3)) == 0.0  # sure and right: perfectly calibrated
    assert softmax(np.array([[0.0, np.log(3.0)]])) == pytest.approx(np.array([[0.25, 0.75]]))


def test_glue_classification_reports_ece_and_can_select_by_it(tiny_model, tmp_path):
    folder = sst2_dir(tmp_path / "glue", train="sentence\tlabel\n" + "a fine film\t1\na dull film\t0\n" * 8)
    out = tmp_path / "out"
    assert main(["finetune", "glue", "--task", "sst2", "--data-dir", str(folder), "--model", str(tiny_model),
                 "--output-dir", str(out), "--max-steps", "4", "--eval-steps", "2", "--select-best", "ece",
                 "--set", "train.num_threads=1"]) == 0
    results = json.loads((out / "eval_results.json").read_text())
    evals = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if '"eval"' in line]
    assert 0.0 <= results["ece"] <= 1.0 and all("ece" in r for r in evals)
    assert results["best_metric"] == min(r["ece"] for r in evals)  # lower is better
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    labels = [("negative", "positive").index(r["label"]) for r in rows]  # the file's probabilities give the same ECE
    assert expected_calibration_error(np.array([r["probabilities"] for r in rows]), np.array(labels)) == pytest.approx(
        results["ece"], abs=1e-5)


def test_the_fitted_temperature_recovers_a_known_one():
    from bert_tasks.metrics.calibration import fit_temperature, nll

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 3))
    probs = softmax(logits / 2.0)  # the labels are drawn as if the true temperature were 2
    labels = np.array([rng.choice(3, p=p) for p in probs])
    found = fit_temperature(logits, labels)
    assert found == pytest.approx(2.0, rel=0.1)
    assert nll(logits, labels, found) <= min(nll(logits, labels, t) for t in (1.0, 1.5, 2.5, 3.0))


def test_eval_calibrate_keeps_a_temperature_that_predict_applies(tiny_model, tmp_path, capsys):
    import shutil

    folder = sst2_dir(tmp_path / "glue", train="sentence\tlabel\n" + "a fine film\t1\na dull film\t0\n" * 8)
    raw = tmp_path / "raw"
    assert main(["finetune", "glue", "--task", "sst2", "--data-dir", str(folder), "--model", str(tiny_model),
                 "--output-dir", str(raw), "--max-steps", "3", "--learning-rate", "1e-3", "--set", "train.num_threads=1"]) == 0
    calibrated = tmp_path / "calibrated"
    shutil.copytree(raw, calibrated)
    assert main(["eval", "glue", "--task", "sst2", "--model", str(calibrated), "--data-dir", str(folder), "--calibrate"]) == 0
    assert "predict glue applies it" in capsys.readouterr().out
    temperature = json.loads((calibrated / "config.json").read_text())["calibration_temperature"]
    results = json.loads((calibrated / "eval" / "eval_results.json").read_text())
    assert results["temperature"] == temperature and results["nll_calibrated"] <= results["nll"] + 1e-12
    assert 0 <= results["ece_calibrated"] <= 1

    def positive(model):
        assert main(["predict", "glue", "--model", str(model), "--text", "a fine film", "--json"]) == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])["probabilities"]["positive"]

    logit = lambda p: np.log(p / (1 - p))  # noqa: E731  two classes: the log-odds are divided by T
    assert logit(positive(calibrated)) == pytest.approx(logit(positive(raw)) / temperature, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("task, expect", [("stsb", "stsb is a regression"), ("all", "pass --task")])
def test_calibrate_refuses_what_has_no_class_probabilities(task, expect, tiny_model, tmp_path, capsys):
    from test_bad_inputs import Case, assert_one_clear_line

    case = Case(f"calibrate-{task}", lambda tmp, model: ["eval", "glue", "--task", task, "--model", str(model),
                                                         "--data-dir", str(tmp), "--calibrate"], ("--calibrate", expect))
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)


def test_plot_draws_a_reliability_diagram_whose_ece_is_the_metric(tmp_path):
    from bert_tasks.viz.plots import plot_run, predictions_confidence, reliability_figure

    rng = np.random.default_rng(2)
    probs = softmax(rng.normal(0, 2, (60, 3)))
    labels = rng.integers(0, 3, 60)
    names = ["a", "b", "c"]
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_log.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0, "learning_rate": 1e-3}) + "\n")
    (run / "eval_predictions.jsonl").write_text("".join(
        json.dumps({"idx": i, "prediction": names[int(p.argmax())], "label": names[y], "probabilities": p.tolist()}) + "\n"
        for i, (p, y) in enumerate(zip(probs, labels))))
    confidence, correct = predictions_confidence(run / "eval_predictions.jsonl")
    assert confidence == pytest.approx(probs.max(axis=1)) and correct.sum() == (probs.argmax(axis=1) == labels).sum()
    title = reliability_figure(confidence, correct).axes[0].get_title()
    assert f"ECE {expected_calibration_error(probs, labels):.4f}" in title
    assert run / "reliability.png" in plot_run(run)

"""classify end to end through the CLI on a tiny model: GLUE's own path, multi-label, regression, eval, predict."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bert_tasks.cli import main

FAST = ["--max-steps", "3", "--batch-size", "4", "--eval-batch-size", "5", "--max-seq-length", "32", "--seed", "3"]
WORDS = "good bad film plot actor slow funny dull warm cold music story long short great awful".split()


def run(*argv) -> int:
    return main([str(a) for a in argv])


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify-data")
    glue = root / "SST-2"
    glue.mkdir()
    rows = {split: [(s, int("good" in s or "great" in s)) for s in sentences(n, seed)]
            for split, n, seed in (("train", 23, 1), ("dev", 11, 2))}
    for split, items in rows.items():  # the same sentences, as GLUE's TSV (0/1) and as a CSV with label names
        write(glue / f"{split}.tsv", "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in items))
        write(root / f"{split}.csv", "text,label\n" + "".join(f"{s},{['negative', 'positive'][y]}\n" for s, y in items))
        write(root / f"{split}-multi.jsonl", "".join(
            json.dumps({"text": s, "labels": [w for w in ("good", "film", "music") if w in s]}) + "\n"
            for s, _ in items))
        write(root / f"{split}-score.csv", "sentence1,sentence2,score\n" + "".join(
            f"{s},{s[::-1]},{len(s) % 5 + 0.5}\n" for s, _ in items))
    return root


def test_sst2_as_a_csv_with_label_names_trains_the_very_weights_of_finetune_glue(files, tiny_model, tmp_path):
    assert run("finetune", "glue", "--task", "sst2", "--model", tiny_model, "--data-dir", files / "SST-2",
               "--output-dir", tmp_path / "glue", *FAST) == 0
    assert run("finetune", "classify", "--model", tiny_model, "--train-file", files / "train.csv",
               "--validation-file", files / "dev.csv", "--output-dir", tmp_path / "mine", *FAST) == 0
    glue, mine = tmp_path / "glue", tmp_path / "mine"
    assert (glue / "model.safetensors").read_bytes() == (mine / "model.safetensors").read_bytes()
    ours = json.loads((mine / "eval_results.json").read_text())
    theirs = json.loads((glue / "eval_results.json").read_text())
    assert ours["accuracy"] == theirs["accuracy"] and ours["precision"] == "fp32"
    assert {"macro_f1", "micro_f1"} <= set(ours)
    config = json.loads((mine / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["problem_type"] == "single_label_classification"
    table = json.loads((mine / "eval_per_class.json").read_text())
    assert set(table) == {"negative", "positive"} and sum(r["support"] for r in table.values()) == 11
    assert run("plot", mine) == 0 and (mine / "confusion_matrix.png").is_file()


@pytest.fixture(scope="module")
def multi_run(files, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "multi"
    assert run("finetune", "classify", "--model", tiny_model, "--train-file", files / "train-multi.jsonl",
               "--validation-file", files / "dev-multi.jsonl", "--output-dir", out, *FAST) == 0
    return out


def test_multi_label_folder_loads_in_the_pipeline_with_our_probabilities(multi_run, capsys):
    from transformers import pipeline

    config = json.loads((multi_run / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert list(config["id2label"].values()) == ["film", "good", "music"]
    results = json.loads((multi_run / "eval_results.json").read_text())
    assert 0 < results["threshold"] < 1 and {"micro_f1", "macro_f1", "subset_accuracy"} <= set(results)
    capsys.readouterr()
    assert run("predict", "classify", "--model", multi_run, "--text", "good music", "--json") == 0
    ours = json.loads(capsys.readouterr().out)
    assert ours["threshold"] == results["threshold"]
    assert ours["labels"] == [n for n, p in ours["probabilities"].items() if p >= results["threshold"]]
    theirs = pipeline("text-classification", model=str(multi_run), top_k=None)(["good music"])[0]
    assert {r["label"]: pytest.approx(r["score"], abs=1e-5) for r in theirs} == ours["probabilities"]


def test_eval_scores_at_the_trained_threshold_and_agrees_with_training(multi_run, files, tmp_path):
    assert run("eval", "classify", "--model", multi_run, "--validation-file", files / "dev-multi.jsonl",
               "--output-dir", tmp_path / "e") == 0
    trained = json.loads((multi_run / "eval_results.json").read_text())
    again = json.loads((tmp_path / "e" / "eval_results.json").read_text())
    for key in ("micro_f1", "macro_f1", "subset_accuracy", "threshold"):
        assert again[key] == pytest.approx(trained[key], abs=1e-6), key
    rows = [json.loads(line) for line in (tmp_path / "e" / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 11 and all(isinstance(r["prediction"], list) for r in rows)


def test_eval_calibrate_keeps_a_temperature_that_predict_applies(files, tiny_model, tmp_path, capsys):
    """The temperature fitted on the dev logits goes in config.json; predict's log-odds shrink by it, its label stays."""
    import shutil

    import numpy as np

    raw = tmp_path / "raw"
    assert run("finetune", "classify", "--model", tiny_model, "--train-file", files / "train.csv", "--validation-file",
               files / "dev.csv", "--output-dir", raw, "--learning-rate", "1e-3", *FAST) == 0
    assert "calibration_temperature" not in json.loads((raw / "config.json").read_text())
    calibrated = tmp_path / "calibrated"
    shutil.copytree(raw, calibrated)
    capsys.readouterr()
    assert run("eval", "classify", "--model", calibrated, "--validation-file", files / "dev.csv", "--calibrate") == 0
    assert "predict classify applies it" in capsys.readouterr().out
    temperature = json.loads((calibrated / "config.json").read_text())["calibration_temperature"]
    results = json.loads((calibrated / "eval" / "eval_results.json").read_text())
    assert results["temperature"] == temperature != 1.0 and results["nll_calibrated"] <= results["nll"] + 1e-12
    assert 0 <= results["ece"] <= 1 and 0 <= results["ece_calibrated"] <= 1

    def predicted(model) -> dict:
        assert run("predict", "classify", "--model", model, "--text", "a good film", "--json") == 0
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    before, after = predicted(raw), predicted(calibrated)
    assert after["label"] == before["label"] and after["probabilities"] != before["probabilities"]
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731  two classes: the log-odds are divided by T
    assert logit(after["probabilities"]["positive"]) == pytest.approx(
        logit(before["probabilities"]["positive"]) / temperature, rel=1e-3, abs=1e-6)
    pytest.importorskip("onnxruntime")
    assert run("export", calibrated, "--output-dir", tmp_path / "onnx") == 0  # the export keeps the temperature
    capsys.readouterr()
    onnx = predicted(tmp_path / "onnx")
    assert onnx["label"] == after["label"] and onnx["probabilities"] == pytest.approx(after["probabilities"], abs=1e-5)


def test_calibrate_refuses_a_multi_label_model_in_one_line(multi_run, files, tmp_path, tiny_model, capsys):
    from test_bad_inputs import Case, assert_one_clear_line

    case = Case("calibrate-multi-label", lambda tmp, model: ["eval", "classify", "--model", str(multi_run),
                                                             "--validation-file", str(files / "dev-multi.jsonl"),
                                                             "--calibrate"],
                ("--calibrate", "single-label", "is multi-label", multi_run.name))
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)
    assert "calibration_temperature" not in json.loads((multi_run / "config.json").read_text())
    assert not (multi_run / "eval").exists()


def test_regression_eval_and_predict_and_seeds(files, tiny_model, tmp_path, capsys):
    out = tmp_path / "score"
    assert run("finetune", "classify", "--model", tiny_model, "--train-file", files / "train-score.csv",
               "--validation-file", files / "dev-score.csv", "--label-column", "score", "--output-dir", out,
               "--seeds", "1,2", *FAST) == 0
    summary = json.loads((out / "seeds_summary.json").read_text())
    assert len(summary["metrics"]["pearson"]["values"]) == 2 and "mse" in summary["metrics"]
    seed = out / "seed-1"
    assert json.loads((seed / "config.json").read_text())["problem_type"] == "regression"
    capsys.readouterr()
    assert run("predict", "classify", "--model", seed, "--text", "good film", "--text-pair", "mlif doog", "--json") == 0
    assert isinstance(json.loads(capsys.readouterr().out)["score"], float)
    assert run("predict", "classify", "--model", seed, "--text", "good film") == 2  # a pair model needs the pair


def test_do_predict_writes_one_prediction_per_test_row_and_class_weights_show(files, tiny_model, tmp_path):
    test = write(tmp_path / "test.csv", "text\ngood film\ndull plot\nwarm music\n")
    out = tmp_path / "p"
    assert run("finetune", "classify", "--model", tiny_model, "--train-file", files / "train.csv",
               "--validation-file", files / "dev.csv", "--test-file", test, "--do-predict",
               "--class-weights", "auto", "--output-dir", out, *FAST) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["text_a"] for r in rows] == ["good film", "dull plot", "warm music"]
    assert all(r["prediction"] in ("negative", "positive") and len(r["probabilities"]) == 2 for r in rows)
    assert "class_weights" in (out / "README.md").read_text()


def test_auto_class_weights_by_hand():
    import numpy as np

    from bert_tasks.tasks.classify.data import MULTI, SINGLE, LabelSpace
    from bert_tasks.tasks.classify.task import class_weight_tensor

    single = class_weight_tensor("auto", LabelSpace(SINGLE, ("a", "b")), np.array([0, 0, 0, 1]), 4)
    assert single.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    multi = class_weight_tensor("auto", LabelSpace(MULTI, ("a", "b")), np.array([[1, 0], [1, 1], [0, 0]]), 3)
    assert multi.tolist() == pytest.approx([1 / 2, 2 / 1])  # negatives / positives per label
    assert class_weight_tensor("b=2,a=0.5", LabelSpace(SINGLE, ("a", "b")), np.array([0, 1]), 2).tolist() == [0.5, 2]

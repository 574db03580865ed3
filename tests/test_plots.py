"""Run plots: figure contents through the Figure API, PNG files, bad logs, and the `plot` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bert_tasks.cli import main
from bert_tasks.errors import BertTasksError
from bert_tasks.viz.plots import (confusion_counts, confusion_figure, eval_figure, metric_names, plot_run,
                              predictions_confusion, read_jsonl, read_train_log, training_figure)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def train_records(n=6):
    return [{"step": 10 * s, "epoch": s / 3, "loss": 1.0 / s, "learning_rate": 1e-4 * (n - s + 1) / n,
             "tokens_per_second": 900.0, "elapsed_seconds": float(s)} for s in range(1, n + 1)]


def eval_records():
    return [{"eval": True, "step": step, "accuracy": acc, "f1": acc - 0.05, "eval_samples": 408, "total": 408,
             "split": "validation"} for step, acc in ((20, 0.6), (40, 0.7), (60, 0.75))]


def write_lines(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")


def make_run(tmp_path, predictions=None, id2label=None, evals=True):
    run = tmp_path / "run"
    run.mkdir()
    write_lines(run / "train_log.jsonl", train_records()[:3] + (eval_records()[:1] if evals else []) + train_records()[3:])
    if id2label is not None:
        (run / "config.json").write_text(json.dumps({"model_type": "bert", "id2label": id2label}))
    if predictions is not None:
        write_lines(run / "eval_predictions.jsonl", predictions)
    return run


def test_training_figure_has_loss_and_lr_panels_over_steps():
    records = train_records()
    fig = training_figure(records)
    assert len(fig.axes) == 2
    loss_line, lr_line = fig.axes[0].lines[0], fig.axes[1].lines[0]
    assert list(loss_line.get_xdata()) == [r["step"] for r in records]
    assert np.allclose(loss_line.get_ydata(), [r["loss"] for r in records])
    assert np.allclose(lr_line.get_ydata(), [r["learning_rate"] for r in records])


def test_eval_figure_has_one_panel_per_metric_and_skips_bookkeeping():
    records = eval_records()
    records[0].update(eval_samples_m=9, HasAns_total=4)
    assert metric_names(records) == ["accuracy", "f1"]  # no counts (step, samples, totals), nor the string split
    fig = eval_figure(records)
    assert [ax.get_title() for ax in fig.axes] == ["accuracy", "f1"]
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [0.6, 0.7, 0.75])
    assert list(fig.axes[1].lines[0].get_xdata()) == [20, 40, 60]


def test_eval_figure_grid_removes_unused_cells():
    records = [{"eval": True, "step": 1, **{f"m{i}": i / 10 for i in range(4)}}]
    assert len(eval_figure(records).axes) == 4  # a 2 x 3 grid less its two empty cells


def test_confusion_figure_annotates_counts_and_colours_by_row():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
    preds = [0, 1, 0, 1, 2, 2, 2, 0, 2, 0]
    counts = confusion_counts(labels, preds, 3)
    expected = np.zeros((3, 3), dtype=int)
    for y, p in zip(labels, preds):
        expected[y, p] += 1
    assert (counts == expected).all()
    fig = confusion_figure(counts, ["entailment", "neutral", "contradiction"])
    ax = fig.axes[0]
    shown = np.zeros((3, 3), dtype=int)
    for text in ax.texts:
        x, y = text.get_position()
        shown[round(y), round(x)] = int(text.get_text().split("\n")[0])
    assert (shown == expected).all()
    assert np.allclose(np.asarray(ax.images[0].get_array()).sum(axis=1), 1.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["entailment", "neutral", "contradiction"]


def test_plot_run_writes_pngs_with_label_names(tmp_path):
    predictions = [{"idx": i, "prediction": i % 2, "label": int(i % 3 == 0)} for i in range(9)]
    run = make_run(tmp_path, predictions, id2label={"0": "not_equivalent", "1": "equivalent"})
    paths = plot_run(run, tmp_path / "out")
    assert [p.name for p in paths] == ["training.png", "eval_metrics.png", "confusion_matrix.png"]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    counts, names = predictions_confusion(run / "eval_predictions.jsonl", {0: "not_equivalent", 1: "equivalent"})[""]
    assert names == ["not_equivalent", "equivalent"] and counts.tolist() == [[3, 3], [2, 1]]


def test_predictions_by_name_and_split_as_the_glue_runner_writes_them(tmp_path):
    names = {0: "entailment", 1: "neutral", 2: "contradiction"}
    rows = [{"idx": 0, "split": "validation_matched", "prediction": "neutral", "label": "entailment"},
            {"idx": 1, "split": "validation_matched", "prediction": "neutral", "label": "neutral"},
            {"idx": 0, "split": "validation_mismatched", "prediction": "contradiction", "label": "contradiction"},
            {"idx": 1, "split": "validation_mismatched", "prediction": 0, "label": -1}]  # unlabelled: left out
    run = make_run(tmp_path, rows, id2label={str(k): v for k, v in names.items()})
    matrices = predictions_confusion(run / "eval_predictions.jsonl", names)
    assert matrices["validation_matched"][0].tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert matrices["validation_mismatched"][0].sum() == 1
    assert [p.name for p in plot_run(run)][2:] == ["confusion_matrix_validation_matched.png",
                                                   "confusion_matrix_validation_mismatched.png"]
    with pytest.raises(BertTasksError, match="line 1: unknown label 'neutral'"):
        predictions_confusion(run / "eval_predictions.jsonl", {0: "entailment", 1: "other", 2: "contradiction"})


def test_plot_run_skips_regression_and_missing_eval(tmp_path):
    predictions = [{"idx": i, "prediction": float(i), "label": 3.0} for i in range(5)]  # STS-B scores, integral
    run = make_run(tmp_path, predictions, evals=False)
    assert [p.name for p in plot_run(run)] == ["training.png"]
    assert (run / "training.png").is_file()


def test_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "train_log.jsonl"
    write_lines(path, train_records(3), tail='{"step": 40, "epoch": 1.3, "lo')
    assert [r["step"] for r in read_jsonl(path)] == [10, 20, 30]
    write_lines(path, train_records(3), tail="\n\n")  # blank lines are not records
    assert len(read_jsonl(path)) == 3


def test_malformed_inner_line_names_file_and_line(tmp_path):
    path = tmp_path / "train_log.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo\n{"step": 3, "loss": 0.5}\n')
    with pytest.raises(BertTasksError, match=r"train_log\.jsonl: line 2: not valid JSON"):
        read_jsonl(path)
    path.write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(BertTasksError, match="line 2: expected a JSON object"):
        read_jsonl(path)


def test_resumed_run_keeps_the_later_record_of_a_step(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    first, resumed = train_records(4), [dict(r, loss=9.0) for r in train_records(4)[2:]]
    write_lines(run / "train_log.jsonl", first + resumed)
    train, evals = read_train_log(run)
    assert [r["step"] for r in train] == [10, 20, 30, 40] and not evals
    assert [r["loss"] for r in train][2:] == [9.0, 9.0]


def test_folder_without_log_is_an_error_naming_it(tmp_path):
    with pytest.raises(BertTasksError, match=f"{tmp_path}: no train_log.jsonl"):
        plot_run(tmp_path)


def test_plot_command_prints_paths_and_fails_in_one_line(tmp_path, capsys):
    run = make_run(tmp_path)
    assert main(["plot", str(run), "--out", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "plots" / "training.png"), str(tmp_path / "plots" / "eval_metrics.png")]

    assert main(["plot", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "nope" in err

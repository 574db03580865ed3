"""``bert-tasks compare``: the paired bootstrap against a direct numpy computation, the rank test, the verdicts, and
the refusals (different dev sets, no per-example predictions), on run folders written here (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, pearsonr

from bert_tasks.cli import main
from bert_tasks.runner.compare import RESAMPLES, paired_bootstrap, rank_test, verdict
from test_bad_inputs import Case, assert_one_clear_line

LABELS = ["positive", "negative"]


def run(folder: Path, labels: list, predictions: list, ids: list[int] | None = None, **metrics) -> Path:
    folder.mkdir(parents=True)
    ids = ids if ids is not None else list(range(len(labels)))
    rows = [{"idx": i, "prediction": p, "label": y} for i, p, y in zip(ids, predictions, labels)]
    (folder / "eval_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    correct = float(np.mean([p == y for p, y in zip(predictions, labels)]))
    (folder / "eval_results.json").write_text(json.dumps({"accuracy": correct, "eval_samples": len(labels), **metrics}))
    return folder


def flip(labels: list, wrong: np.ndarray) -> list:
    return [LABELS[1 - LABELS.index(y)] if w else y for y, w in zip(labels, wrong)]


@pytest.fixture
def gold():
    rng = np.random.default_rng(0)
    return [LABELS[i] for i in rng.integers(0, 2, 200)], rng


def test_the_bootstrap_matches_a_direct_resampling(gold):
    labels, rng = gold
    a = [flip(labels, rng.random(200) < 0.2), flip(labels, rng.random(200) < 0.25)]
    b = [flip(labels, rng.random(200) < 0.3)]
    got = paired_bootstrap(labels, a, b)
    per_example = (np.mean([[p == y for p, y in zip(r, labels)] for r in a], axis=0)
                   - np.mean([[p == y for p, y in zip(r, labels)] for r in b], axis=0))
    assert got["difference"] == pytest.approx(per_example.mean())
    idx = np.random.default_rng(7).integers(0, 200, (RESAMPLES, 200))
    low, high = np.percentile(per_example[idx].mean(axis=1), [2.5, 97.5])
    assert (got["low"], got["high"]) == pytest.approx((low, high), abs=0.01)
    assert got["statistic"] == "accuracy" and got["examples"] == 200


@pytest.mark.parametrize("low, high, said", [(0.004, 0.02, "A is better by 1.2 points, 95% CI [0.4, 2.0]"),
                                             (-0.02, -0.004, "B is better by 1.2 points, 95% CI [0.4, 2.0]"),
                                             (-0.009, 0.014, "cannot be told apart: 95% CI [-0.9, 1.4] for A - B")])
def test_a_verdicts_interval_has_the_sign_of_its_claim(low, high, said):
    diff = 0.012 if low > 0 else -0.012 if high < 0 else 0.002
    boot = {"low": low, "high": high, "difference": diff, "confidence": 0.95, "statistic": "accuracy", "examples": 9}
    assert verdict(boot) == f"{said} (accuracy, paired bootstrap over 9 dev examples)"


def test_regression_compares_pearson():
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 5, 60)
    a, b = gold + rng.normal(0, 0.5, 60), gold + rng.normal(0, 2.0, 60)
    got = paired_bootstrap(gold.tolist(), [a.tolist()], [b.tolist()])
    assert got["statistic"] == "pearson"
    assert got["difference"] == pytest.approx(pearsonr(a, gold)[0] - pearsonr(b, gold)[0])
    assert got["low"] > 0  # a is much closer


def test_the_rank_test_is_scipys():
    a, b = [0.81, 0.83, 0.85], [0.78, 0.79, 0.80]
    got = rank_test(a, b)
    direct = mannwhitneyu(a, b, alternative="two-sided")
    assert (got["u"], got["p_value"]) == (direct.statistic, direct.pvalue) and rank_test([0.8], b) is None


def test_compare_seeds_roots_through_the_cli(gold, tmp_path, capsys):
    labels, rng = gold
    for seed in (1, 2, 3):
        run(tmp_path / "good" / f"seed-{seed}", labels, flip(labels, rng.random(200) < 0.1))
        run(tmp_path / "bad" / f"seed-{seed}", labels, flip(labels, rng.random(200) < 0.4))
    assert main(["compare", str(tmp_path / "good"), str(tmp_path / "bad")]) == 0
    out = capsys.readouterr().out
    assert "A is better by" in out and "95% CI [" in out and "Mann-Whitney U over seeds (accuracy, 3 vs 3)" in out
    assert main(["compare", str(tmp_path / "good"), str(tmp_path / "good" / "seed-1"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    medians = [json.loads((tmp_path / "good" / f"seed-{s}" / "eval_results.json").read_text())["accuracy"] for s in (1, 2, 3)]
    assert result["metrics"]["accuracy"]["median_a"] == np.median(medians)
    assert result["rank_test"] is None and len(result["a"]) == 3 and len(result["b"]) == 1
    assert main(["compare", str(tmp_path / "good" / "seed-1"), str(tmp_path / "good" / "seed-1")]) == 0
    assert "cannot be told apart: 95% CI [0.0, 0.0]" in capsys.readouterr().out


def compare_case(name: str, make, *expect: str) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        labels = ["positive", "negative", "positive", "negative"]
        a = run(tmp / "a", labels, labels)
        return ["compare", str(a), str(make(tmp, labels))]

    return Case(f"compare-{name}", build, expect)


def squad_run(tmp: Path, labels) -> Path:
    folder = tmp / "squad"
    folder.mkdir()
    (folder / "eval_results.json").write_text('{"f1": 50.0}')
    (folder / "predictions.json").write_text('{"q1": "Ada"}')
    return folder


CASES = [
    compare_case("other-example-ids", lambda tmp, y: run(tmp / "b", y, y, ids=[0, 1, 2, 9]), "different dev sets",
                 "example ids"),
    compare_case("other-labels", lambda tmp, y: run(tmp / "b", y[::-1], y), "different dev sets", "labels"),
    compare_case("squad-without-its-dev-file", squad_run, "recipe.yaml", "names none"),
    compare_case("not-a-run", lambda tmp, y: tmp.joinpath("empty").mkdir() or tmp / "empty", "not a finished run"),
    compare_case("missing", lambda tmp, y: tmp / "nowhere", "no such run folder"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_comparisons_are_one_line(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)


def squad_dev(tmp: Path) -> Path:
    names = ["Ada", "Bob", "Cy", "Dee"]
    paragraphs = [{"context": f"{n} wrote the program in {1900 + i}.", "qas": [
        {"id": f"q{i}", "question": "Who wrote it?", "answers": [{"text": n, "answer_start": 0}]}]}
        for i, n in enumerate(names * 5)]
    path = tmp / "dev.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": paragraphs}]}))
    return path


def squad_folder(folder: Path, dev: Path, answers: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text(f"task: squad\ndata:\n  validation_file: {dev}\n  version_2_with_negative: false\n")
    (folder / "predictions.json").write_text(json.dumps(answers))
    (folder / "eval_results.json").write_text(json.dumps({"exact_match": 0.0, "f1": 0.0, "total": len(answers)}))
    return folder


def test_squad_runs_compare_f1_per_question(tmp_path):
    from bert_tasks.metrics.squad.squad import f1_score
    from bert_tasks.runner.compare import compare

    dev = squad_dev(tmp_path)
    gold = {f"q{i}": n for i, n in enumerate(["Ada", "Bob", "Cy", "Dee"] * 5)}
    good = {qid: (name if i % 4 else f"{name} wrote") for i, (qid, name) in enumerate(gold.items())}
    bad = {qid: (name if i % 2 else "the program") for i, (qid, name) in enumerate(gold.items())}
    result = compare(squad_folder(tmp_path / "good", dev, good), squad_folder(tmp_path / "bad", dev, bad))
    direct = np.mean([f1_score(good[q], gold[q]) - f1_score(bad[q], gold[q]) for q in gold])
    assert result["bootstrap"]["statistic"] == "f1" and result["bootstrap"]["difference"] == pytest.approx(direct)
    assert result["verdict"].startswith("A is better by")
    stranger = squad_folder(tmp_path / "stranger", dev, {**good, "q99": "Ada"})
    from bert_tasks.errors import BertTasksError

    with pytest.raises(BertTasksError, match="q99"):
        compare(stranger, tmp_path / "good")

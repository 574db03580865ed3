"""``bert-tasks compare RUN_A RUN_B``: whether one set of runs beats another on the same dev set, honestly.

A side is a run folder, a seed folder, a ``--seeds`` root (every ``seed-N``) or a ``--grid`` root (the chosen
point's seeds). For every metric both report: the medians over each side's seeds and their difference. Over the
dev examples: a paired bootstrap confidence interval (:func:`scipy.stats.bootstrap`, 10,000 resamples, seeded) of
the difference in accuracy (classification; a per-seed mean) or Pearson correlation (regression), from each run's
``eval_predictions.jsonl`` (GLUE, classify), or SQuAD F1 per question from ``predictions.json`` and the dev file the
run's recipe.yaml names. Over seeds, where both sides have several: the Mann-Whitney U test
(:func:`scipy.stats.mannwhitneyu`) of the main metric. Then one verdict line, in points (x100).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BertTasksError
from ..checkpoint.modelcard import is_score
from .statistics import flat_metrics

PREDICTIONS = "eval_predictions.jsonl"
RESAMPLES = 10_000


def run_folders(path: Path) -> list[Path]:
    """The run folders a side names: itself, its ``seed-N`` folders, or a grid's chosen point's."""
    path = Path(path)
    if not path.is_dir():
        raise BertTasksError("no such run folder", file=path)
    grid = path / "grid_summary.json"
    if grid.is_file():
        best = json.loads(grid.read_text(encoding="utf-8")).get("best")
        if not best:
            raise BertTasksError("this grid chose no point (none finished with a score)", file=grid)
        return run_folders(Path(best["folder"]))
    if (path / "eval_results.json").is_file():
        return [path]
    seeds = sorted((p for p in path.glob("seed-*") if (p / "eval_results.json").is_file()), key=lambda p: p.name)
    if not seeds:
        raise BertTasksError("not a finished run: no eval_results.json here nor in seed-N folders", file=path)
    return seeds


def squad_predictions(folder: Path) -> tuple[list[tuple], list[Any], list[Any]]:
    """A SQuAD run's (keys, gold answer texts, predicted text) from its ``predictions.json`` and the dev file its
    recipe.yaml names (unanswerable SQuAD 2.0 questions: no gold text, predicted "")."""
    from ..config import trained_recipe
    from ..tasks.squad.data import load_squad_examples

    data = trained_recipe(folder)["data"]
    source = data.get("validation_file") or data.get("dataset")
    if not source:
        raise BertTasksError("compare reads a SQuAD run's gold answers from the dev file its recipe.yaml names "
                             "(data.validation_file); this folder names none", file=folder)
    try:
        predicted = json.loads((folder / "predictions.json").read_text(encoding="utf-8"))
    except ValueError:
        raise BertTasksError("unreadable predictions", file=folder / "predictions.json") from None
    examples = load_squad_examples(source, version_2=bool(data.get("version_2_with_negative")),
                                   skip_bad_examples=bool(data.get("skip_bad_examples")), split_hint="validation")
    golds = {qid: tuple(answers["text"]) for qid, answers in zip(examples["id"], examples["answers"])}
    unknown = next((qid for qid in predicted if qid not in golds), None)
    if unknown is not None:
        raise BertTasksError(f"predictions.json answers question {unknown!r}, which the dev file {source} lacks: "
                             "these predictions are of another dev set", file=folder / "predictions.json")
    keys = [("", qid) for qid in predicted]
    return keys, [golds.get(qid) for qid in predicted], [str(predicted[qid]) for qid in predicted]


def read_predictions(folder: Path) -> tuple[list[tuple], list[Any], list[Any]]:
    """(keys, labels, predictions) of one run's dev examples, in file order; keys are (split, idx)."""
    path = folder / PREDICTIONS
    if not path.is_file() and (folder / "predictions.json").is_file():
        return squad_predictions(folder)
    if not path.is_file():
        raise BertTasksError(f"compare needs per-example predictions ({PREDICTIONS} of glue and classify runs, "
                             "predictions.json of squad runs)", file=folder)
    keys, labels, predictions = [], [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            keys.append((row.get("split", ""), row["idx"]))
            labels.append(row["label"])
            predictions.append(row["prediction"])
        except (ValueError, KeyError, TypeError):
            raise BertTasksError("not a row with idx, prediction and label", file=path, record=f"line {number}") from None
    return keys, labels, predictions


def dev_set(folders: list[Path]) -> tuple[list[tuple], list[Any], list[list[Any]]]:
    """The one dev set every folder was scored on, and each folder's predictions in its order."""
    keys = labels = None
    predictions = []
    for folder in folders:
        k, y, p = read_predictions(folder)
        order = {key: i for i, key in enumerate(k)}
        if keys is None:
            keys, labels, first = k, y, folder
        elif set(order) != set(keys) or any(y[order[key]] != label for key, label in zip(keys, labels)):
            what = "example ids" if set(order) != set(keys) else "labels"
            raise BertTasksError(f"these runs were scored on different dev sets (different {what}) than {first}: "
                                 "compare only runs of one dev set", file=folder / PREDICTIONS)
        predictions.append([p[order[key]] for key in keys])
    return keys, labels, predictions


def _pearson(pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis (``pred`` [..., n], ``gold`` broadcast to it)."""
    p = pred - pred.mean(axis=-1, keepdims=True)
    g = gold - gold.mean(axis=-1, keepdims=True)
    return (p * g).sum(axis=-1) / np.sqrt((p * p).sum(axis=-1) * (g * g).sum(axis=-1))


def example_statistic(labels: list[Any], a: list[list[Any]], b: list[list[Any]]):
    """The per-run dev statistic compared (accuracy, or Pearson for float labels), and a function of resampled
    example indices [..., n] giving mean-over-A-seeds minus mean-over-B-seeds."""
    if any(isinstance(y, tuple) for y in labels):  # SQuAD: gold answer texts; F1 per question
        from ..metrics.squad.squad import best_over_golds, f1_score

        def f1s(run: list[Any]) -> list[float]:
            return [best_over_golds(f1_score, p, golds) if golds else float(p == "") for p, golds in zip(run, labels)]
        delta = np.mean([f1s(run) for run in a], axis=0) - np.mean([f1s(run) for run in b], axis=0)
        return "f1", lambda idx: delta[idx].mean(axis=-1)
    regression = all(isinstance(y, (int, float)) and not isinstance(y, bool) for y in labels) and any(
        isinstance(y, float) for y in labels)
    if regression:
        gold = np.asarray(labels, dtype=np.float64)
        pa, pb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)

        def difference(idx: np.ndarray) -> np.ndarray:
            return (np.mean([_pearson(p[idx], gold[idx]) for p in pa], axis=0)
                    - np.mean([_pearson(p[idx], gold[idx]) for p in pb], axis=0))
        return "pearson", difference
    ca = np.asarray([[p == y for p, y in zip(run, labels)] for run in a], dtype=np.float64).mean(axis=0)
    cb = np.asarray([[p == y for p, y in zip(run, labels)] for run in b], dtype=np.float64).mean(axis=0)
    delta = ca - cb  # accuracy is a mean over examples: the paired difference per example
    return "accuracy", lambda idx: delta[idx].mean(axis=-1)


def paired_bootstrap(labels: list[Any], a: list[list[Any]], b: list[list[Any]], *, seed: int = 0,
                     confidence: float = 0.95) -> dict[str, Any]:
    """The A-minus-B difference on the dev set and its percentile bootstrap interval, resampling examples (both
    sides together: paired)."""
    from scipy.stats import bootstrap

    name, difference = example_statistic(labels, a, b)
    n = len(labels)
    result = bootstrap((np.arange(n),), lambda idx, axis=-1: difference(idx), vectorized=True, n_resamples=RESAMPLES, batch=500,
                       confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return {"statistic": name, "difference": float(difference(np.arange(n))), "confidence": confidence,
            "low": float(result.confidence_interval.low), "high": float(result.confidence_interval.high),
            "resamples": RESAMPLES, "examples": n}


def rank_test(a: list[float], b: list[float]) -> dict[str, Any] | None:
    """Mann-Whitney U over the seeds' scores (two-sided), where both sides have at least two."""
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy.stats import mannwhitneyu

    test = mannwhitneyu(a, b, alternative="two-sided")
    return {"u": float(test.statistic), "p_value": float(test.pvalue), "seeds_a": len(a), "seeds_b": len(b)}


def verdict(boot: dict[str, Any]) -> str:
    low, high, diff = 100 * boot["low"], 100 * boot["high"], 100 * boot["difference"]
    ci = f"{boot['confidence']:.0%} CI [{low:.1f}, {high:.1f}]"
    what = f"{boot['statistic']}, paired bootstrap over {boot['examples']} dev examples"
    if low > 0:
        return f"A is better by {diff:.1f} points, {ci} ({what})"
    if high < 0:  # the interval of B - A, so that a verdict's interval has the sign of its claim
        return f"B is better by {-diff:.1f} points, {boot['confidence']:.0%} CI [{-high:.1f}, {-low:.1f}] ({what})"
    return f"cannot be told apart: {ci} for A - B ({what})"


def compare(path_a: Path, path_b: Path) -> dict[str, Any]:
    """Everything ``bert-tasks compare`` says, as one dict (``--json`` prints it)."""
    folders_a, folders_b = run_folders(path_a), run_folders(path_b)
    _, labels, predictions = dev_set(folders_a + folders_b)
    a, b = predictions[:len(folders_a)], predictions[len(folders_a):]
    results_a = [flat_metrics(json.loads((f / "eval_results.json").read_text(encoding="utf-8"))) for f in folders_a]
    results_b = [flat_metrics(json.loads((f / "eval_results.json").read_text(encoding="utf-8"))) for f in folders_b]
    names = [k for k in results_a[0] if is_score(k) and all(k in r for r in results_a + results_b)]
    metrics = {}
    for name in names:
        va, vb = [r[name] for r in results_a], [r[name] for r in results_b]
        metrics[name] = {"median_a": float(np.median(va)), "median_b": float(np.median(vb)),
                         "difference": float(np.median(va) - np.median(vb)), "values_a": va, "values_b": vb}
    boot = paired_bootstrap(labels, a, b)
    main = boot["statistic"] if boot["statistic"] in metrics else (names[0] if names else None)
    ranks = rank_test(metrics[main]["values_a"], metrics[main]["values_b"]) if main else None
    return {"a": [str(f) for f in folders_a], "b": [str(f) for f in folders_b], "metrics": metrics,
            "bootstrap": boot, "rank_test": ranks and {"metric": main, **ranks}, "verdict": verdict(boot)}


def against_runner_up(chosen: Path, runner_up: Path, name: Any) -> dict[str, Any]:
    """Whether a sweep's chosen run (a grid point, a search trial) can be told apart on the dev set from the second
    best, ``name``; or why that cannot be said (no per-example predictions)."""
    try:
        found = compare(chosen, runner_up)
    except BertTasksError as exc:
        return {"runner_up": name, "verdict": f"not compared: {exc.reason}"}
    return {"runner_up": name, "verdict": found["verdict"], "bootstrap": found["bootstrap"],
            "rank_test": found["rank_test"]}

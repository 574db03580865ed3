"""benchmarks/search_trainer and glue_seeds' Trainer folders, without training: the one space (the 12-point grid
inside the optuna ranges, the grid flags expanding to exactly those points) and ``bert-tasks compare`` reading a
Trainer run written by glue_seeds.write_predictions against one of ours."""

from __future__ import annotations

import itertools
import json

import numpy as np

from benchmarks import glue_seeds, search_trainer
from bert_tasks.cli.options import parse_grid
from bert_tasks.runner.compare import compare
from bert_tasks.runner.search import parse_space
from bert_tasks.tasks.glue.spec import id2label


def test_the_grid_is_twelve_points_of_the_optuna_space():
    points = search_trainer.grid()
    assert len(points) == 12 and len({tuple(p.values()) for p in points}) == 12
    space = parse_space(list(search_trainer.OURS_SPACE))
    lr, batch, warmup = space["train.learning_rate"], space["train.batch_size"], space["train.warmup_ratio"]
    assert lr.kind == "loguniform" and warmup.kind == "uniform" and batch.kind == "choice"
    for p in points:
        assert lr.low <= p["learning_rate"] <= lr.high and p["batch_size"] in batch.choices
        assert warmup.low <= p["warmup_ratio"] <= warmup.high
    assert (lr.low, lr.high) == (min(search_trainer.LRS), max(search_trainer.LRS))


def test_the_grid_flags_expand_to_exactly_the_grid(tmp_path):
    args = search_trainer.parse_args(["--data", str(tmp_path)])
    flags = search_trainer.grid_flags(args)
    grid = parse_grid(flags[1::2])
    assert all(isinstance(v, (int, float)) for values in grid.values() for v in values), grid  # numbers, not strings
    expanded = {tuple(float(x) for x in v) for v in itertools.product(*grid.values())}
    assert expanded == {tuple(float(x) for x in p.values()) for p in search_trainer.grid()}
    quick = search_trainer.parse_args(["--quick"])
    assert quick.no_record and quick.tasks == "sst2" and len(search_trainer.points(quick)) == 2


def test_the_search_score_is_the_glue_score():
    assert search_trainer.score("mrpc", {"eval_f1": 0.8, "eval_accuracy": 0.6}, "eval_") == 0.7
    assert search_trainer.score("sst2", {"accuracy": 0.9}) == 0.9


def test_compare_reads_a_trainer_folder_beside_ours(tmp_path):
    names = id2label("mrpc", names="hub")
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 60)
    dev = {"idx": list(range(100, 160)), "label": gold.tolist()}
    for seed in (1, 2):
        ours = tmp_path / "mrpc-no" / f"seed-{seed}"
        ours.mkdir(parents=True)
        right = rng.random(60) < 0.9  # ours: 90% right; the Trainer: about half
        predicted = np.where(right, gold, 1 - gold)
        rows = [{"idx": i, "prediction": names[int(p)], "label": names[int(y)]} for i, p, y in zip(dev["idx"], predicted, gold)]
        (ours / "eval_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (ours / "eval_results.json").write_text(json.dumps({"accuracy": float(right.mean()), "f1": 0.5}))
        logits = rng.normal(size=(60, 2))
        accuracy = float((logits.argmax(-1) == gold).mean())
        glue_seeds.write_predictions("mrpc", dev, logits, {"accuracy": accuracy, "f1": 0.4, "runtime": 1.0},
                                     glue_seeds.trainer_folder("mrpc", seed, tmp_path))
    found = compare(tmp_path / "mrpc-no", tmp_path / "trainer-mrpc")
    assert len(found["b"]) == 2 and found["bootstrap"]["examples"] == 60
    assert found["verdict"].startswith("A is better"), found["verdict"]
    assert set(found["metrics"]) >= {"accuracy", "f1"} and "runtime" not in found["metrics"]

"""--seeds and --grid through the real CLI on tiny data: the summaries against an independent computation,
a failed seed reported while the others finish, resume per seed, and the grid's choice."""

from __future__ import annotations

import json
import statistics as stats
from pathlib import Path

import numpy as np
import pytest

from bert_tasks.runner import template as runner
from bert_tasks.runner.outputs import current
from bert_tasks.cli import main
from bert_tasks.errors import BertTasksError

WORDS = "good bad fine dull great awful film plot actors story music long short".split()


@pytest.fixture(scope="module")
def sst(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    folder = tmp_path_factory.mktemp("sst")
    for name, size in (("train.tsv", 48), ("dev.tsv", 24)):
        rows = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 8)))) for _ in range(size)]
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{r}\t{int('good' in r or 'great' in r)}\n" for r in rows))
    return folder


def args(model, data, out, *extra):
    return ["finetune", "glue", "--task", "sst2", "--model", str(model), "--data-dir", str(data), "--output-dir", str(out),
            "--batch-size", "4", "--max-seq-length", "32", "--learning-rate", "3e-3", "--logging-steps", "5",
            "--set", "train.num_threads=1", *extra]


def seed_results(root: Path) -> dict[int, dict]:
    return {int(p.name[5:]): json.loads((p / "eval_results.json").read_text()) for p in root.glob("seed-*")
            if (p / "eval_results.json").exists()}


def test_seeds_summary_matches_an_independent_computation(tiny_model, sst, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(args(tiny_model, sst, out, "--max-steps", "6", "--seeds", "3,1,2")) == 0
    summary = json.loads((out / "seeds_summary.json").read_text())
    per_seed = seed_results(out)
    assert sorted(per_seed) == [1, 2, 3] and summary["seeds"] == {str(s): str(out / f"seed-{s}") for s in (1, 2, 3)}
    values = [per_seed[s]["accuracy"] for s in summary["metrics"]["accuracy"]["seeds"]]
    accuracy = summary["metrics"]["accuracy"]
    assert accuracy["values"] == values
    assert accuracy["median"] == stats.median(values) and accuracy["mean"] == pytest.approx(stats.mean(values))
    assert accuracy["std"] == pytest.approx(stats.stdev(values)) and (accuracy["min"], accuracy["max"]) == (min(values), max(values))
    assert summary["failed"] == {}
    assert len({json.loads((out / f"seed-{s}" / "recipe.yaml").read_text().split("seed: ")[1].split()[0]) for s in (1, 2, 3)}) == 3
    assert "median" in capsys.readouterr().out  # the printed table


def test_a_failed_seed_is_reported_and_the_others_finish(tiny_model, sst, tmp_path, capsys, monkeypatch):
    real = runner.train_one

    def fails_for_seed_2(task, recipe, **kwargs):
        if recipe.train.seed == 2:
            current().trainings_started += 1  # as if training had begun, then diverged
            raise BertTasksError("loss became nan at step 3")
        return real(task, recipe, **kwargs)

    monkeypatch.setattr(runner, "train_one", fails_for_seed_2)
    out = tmp_path / "runs"
    assert main(args(tiny_model, sst, out, "--max-steps", "4", "--seeds", "1,2,3")) == 2
    err = capsys.readouterr().err
    assert "error: " in err and "1 of 3 seeds failed (seed-2)" in err and "seed-2 failed: loss became nan at step 3" in err
    summary = json.loads((out / "seeds_summary.json").read_text())
    assert summary["failed"] == {"2": "loss became nan at step 3"} and summary["metrics"]["accuracy"]["seeds"] == [1, 3]


def test_resume_continues_each_seed_where_it_stopped(tiny_model, sst, tmp_path, capsys):
    out = tmp_path / "runs"
    command = args(tiny_model, sst, out, "--max-steps", "6", "--save-steps", "3", "--seeds", "1,2")
    assert main(command) == 0
    finished = json.loads((out / "seeds_summary.json").read_text())
    # seed 2 "was interrupted" after its step-3 checkpoint: its final model and results are gone
    for name in ("model.safetensors", "train_results.json", "eval_results.json"):
        (out / "seed-2" / name).unlink()
    for step in (out / "seed-2" / "checkpoints").glob("step-6"):
        import shutil

        shutil.rmtree(step)
    capsys.readouterr()
    assert main([*command, "--resume-from", "latest"]) == 0
    printed = capsys.readouterr()
    assert f"already trained in {out / 'seed-1'}" in printed.out
    assert "resumed from" in printed.out + printed.err and "seed-2" in printed.out + printed.err
    resumed = json.loads((out / "seeds_summary.json").read_text())
    assert resumed["metrics"]["accuracy"]["values"] == finished["metrics"]["accuracy"]["values"]  # exact resume


def test_the_grid_picks_the_best_median_on_the_dev_set(tiny_model, sst, tmp_path, capsys):
    out = tmp_path / "grid"
    assert main(args(tiny_model, sst, out, "--max-steps", "4", "--seeds", "1,2",
                     "--grid", "train.learning_rate=3e-3,1e-5")) == 0
    summary = json.loads((out / "grid_summary.json").read_text())
    medians = {}
    for point in summary["points"]:
        folder = Path(point["folder"])
        medians[point["point"]] = stats.median(r["accuracy"] for r in seed_results(folder).values())
        assert point["main_metric_median"] == medians[point["point"]]
    assert set(medians) == {"learning_rate=0.003", "learning_rate=1e-05"}
    assert summary["best"]["point"] == max(medians, key=medians.get)
    printed = capsys.readouterr().out
    assert summary["chosen_on"].startswith("the dev set") and "chosen on the dev set" in printed
    # whether the chosen point can be told apart from the runner-up (bert-tasks compare's verdict)
    against = summary["best_vs_runner_up"]
    assert against["runner_up"] == next(p for p in medians if p != summary["best"]["point"]) and against["rank_test"]["seeds_a"] == 2
    assert against["verdict"].startswith(("A is better", "B is better", "cannot be told apart"))
    assert f"against the runner-up {against['runner_up']}" in printed


@pytest.mark.parametrize("extra, message", [
    (["--seeds", ""], "comma-separated list of seeds"),
    (["--seeds", "1,1"], "given twice"),
    (["--seeds", "1,-2"], "non-negative integers"),
    (["--grid", "train.learnig_rate=1e-4,5e-5"], "no setting 'train.learnig_rate' (did you mean 'train.learning_rate'?)"),
    (["--grid", "train.batch_size=8,big"], "key 'train.batch_size' must be int, got 'big'"),
    (["--grid", "train.batch_size="], "key=value1,value2"),
    (["--grid", "train=1,2"], "'train' is a section"),
    (["--grid", "train.mixed_precision=no,bf16"], "Accelerate fixes the precision once per process"),
])
def test_bad_seeds_and_grids_are_one_line(extra, message, tiny_model, sst, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(args(tiny_model, sst, out, "--max-steps", "2", *extra)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()

"""``--search optuna``: seeded TPE trials, each a run folder, the study in search.db resumable after Ctrl-C, the median
pruner, and every malformed search a one-line error. Skipped where the optional ``search`` extra is not installed
(except the error that says how to install it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bert_tasks.cli import main
from bert_tasks.training import loop
from test_bad_inputs import Case, assert_one_clear_line, glue_run
from test_selection import stsb  # noqa: F401  the fixture

SPACE = ("--search-space", "train.learning_rate=loguniform:1e-4:1e-2", "--search-space", "train.warmup_ratio=uniform:0:0.3")


def args(model, data, out, *extra, space=SPACE):
    return ["finetune", "glue", "--task", "stsb", "--model", str(model), "--data-dir", str(data), "--output-dir", str(out),
            "--batch-size", "4", "--max-seq-length", "32", "--max-steps", "6", "--eval-steps", "3", "--mixed-precision",
            "no", "--set", "train.num_threads=1", "--search", "optuna", *space, *extra]


def trial_params(summary: dict) -> list[dict]:
    return [row["params"] for row in summary["trials"]]


def test_a_seeded_search_keeps_every_trial_and_picks_the_best(tiny_model, stsb, tmp_path):  # noqa: F811
    pytest.importorskip("optuna")
    out = tmp_path / "search"
    assert main(args(tiny_model, stsb, out, "--trials", "4")) == 0
    summary = json.loads((out / "search_summary.json").read_text())
    assert (out / "search.db").is_file() and len(summary["trials"]) == 4
    complete = [row for row in summary["trials"] if row["state"] == "complete"]
    assert summary["best"] == max(complete, key=lambda row: row["value"]) and summary["direction"] == "maximize"
    for row in complete:
        results = json.loads((Path(row["folder"]) / "eval_results.json").read_text())
        assert results["best_metric"] == row["value"] and Path(row["folder"]).name == f"trial-{row['trial']}"
        recipe = (Path(row["folder"]) / "recipe.yaml").read_text()
        assert f"learning_rate: {row['params']['train.learning_rate']}" in recipe
    assert len(complete) >= 2  # the seeded draws finish at least two: the plots and the runner-up are all there
    for name in ("search_history.png", "search_importance.png"):
        assert summary["plots"][name] == str(out / name) and (out / name).read_bytes()[:4] == b"\x89PNG"
    against = summary["best_vs_runner_up"]
    runner_up = max((row for row in complete if row["trial"] != summary["best"]["trial"]), key=lambda row: row["value"])
    assert against["runner_up"] == f"trial {runner_up['trial']}" and against["verdict"].startswith(
        ("cannot be told apart", "A is better", "B is better"))
    again = tmp_path / "again"
    assert main(args(tiny_model, stsb, again, "--trials", "2")) == 0
    assert trial_params(json.loads((again / "search_summary.json").read_text())) == trial_params(summary)[:2]  # seeded


def test_seeds_train_the_best_point_again_and_the_summary_reports_their_median(tiny_model, stsb, tmp_path, capsys):  # noqa: F811
    """A trial is one seed: with --seeds the best point runs once per seed into best/seed-N, and its median is reported."""
    pytest.importorskip("optuna")
    import statistics

    out = tmp_path / "search"
    assert main(args(tiny_model, stsb, out, "--trials", "3", "--seeds", "5,6,7")) == 0
    summary = json.loads((out / "search_summary.json").read_text())
    best, over = summary["best"], summary["best_over_seeds"]
    assert over["folder"] == str(out / "best") and over["seeds"] == [5, 6, 7]
    scores = []
    for seed in (5, 6, 7):
        folder = out / "best" / f"seed-{seed}"
        recipe = (folder / "recipe.yaml").read_text()
        assert f"learning_rate: {best['params']['train.learning_rate']}" in recipe and f"seed: {seed}" in recipe
        results = json.loads((folder / "eval_results.json").read_text())
        assert results["best_metric_name"] == summary["metric"]  # kept at its best evaluation, as a trial is scored
        scores.append(results["best_metric"])
    assert over["metrics"]["best_metric"]["median"] == pytest.approx(statistics.median(scores))
    printed = capsys.readouterr().out
    assert "the best trial's point over 3 seeds: " + summary["metric"] in printed


def test_a_search_space_can_be_written_as_calls():
    pytest.importorskip("optuna")
    from bert_tasks.runner.search import parse_space

    calls = parse_space(["train.learning_rate=log(1e-5,1e-3)", "train.batch_size=choice(16,32)",
                         "train.warmup_ratio=float(0, 0.2)", "train.epochs=int(1,4)"])
    colons = parse_space(["train.learning_rate=loguniform:1e-5:1e-3", "train.batch_size=choice:16,32",
                          "train.warmup_ratio=uniform:0:0.2", "train.epochs=int:1:4"])
    assert calls == colons and calls["train.batch_size"].choices == (16, 32)


def recipe_with_search(tmp_path: Path, block: str) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text("task: stsb\ntrain:\n  learning_rate: 1.0e-3\n" + block)
    return path


def test_a_recipes_search_block_runs_the_search_and_the_flags_extend_it(tiny_model, stsb, tmp_path):  # noqa: F811
    pytest.importorskip("optuna")
    recipe = recipe_with_search(tmp_path, "search:\n  trials: 2\n  space:\n    train.learning_rate: log(1e-4,1e-2)\n"
                                          "    train.warmup_ratio: float(0,0.3)\n")
    base = [a for a in args(tiny_model, stsb, tmp_path / "unused", space=()) if a not in ("--search", "optuna")]
    base = base[:base.index("--output-dir")] + base[base.index("--output-dir") + 2:]
    out = tmp_path / "from-recipe"
    assert main([*base, "--recipe", str(recipe), "--output-dir", str(out)]) == 0
    summary = json.loads((out / "search_summary.json").read_text())
    assert len(summary["trials"]) == 2 and all(set(row["params"]) == {"train.learning_rate", "train.warmup_ratio"}
                                               for row in summary["trials"])
    for saved in (out / "recipe.yaml", out / "trial-0" / "recipe.yaml"):
        assert "search:" not in saved.read_text()  # a run's recipe.yaml holds the run, not the search
    # --trials wins over the block's; a --search-space key replaces the block's, the others stay
    flagged = tmp_path / "flagged"
    assert main([*base, "--recipe", str(recipe), "--output-dir", str(flagged), "--trials", "3",
                 "--search-space", "train.warmup_ratio=choice(0.0,0.1)"]) == 0
    rows = json.loads((flagged / "search_summary.json").read_text())["trials"]
    assert len(rows) == 3 and all(row["params"]["train.warmup_ratio"] in (0.0, 0.1) for row in rows)


def test_recipes_validate_shows_the_search_block_it_read(stsb, tmp_path, capsys):  # noqa: F811
    recipe = recipe_with_search(tmp_path, f"data:\n  data_dir: {stsb}\nsearch:\n  trials: 4\n  space:\n"
                                          "    train.learning_rate: log(1e-5,1e-3)\n")
    assert main(["recipes", "validate", str(recipe)]) == 0
    shown = capsys.readouterr().out
    assert shown.endswith("search:\n  trials: 4\n  space:\n    train.learning_rate: log(1e-5,1e-3)\n"), shown


@pytest.mark.parametrize("block, expect", [
    ("search: 3\n", "search: must be a mapping"),
    ("search:\n  trials: 0\n  space:\n    train.learning_rate: log(1e-4,1e-2)\n", "search.trials must be a whole number"),
    ("search:\n  trials: 2\n  space: {}\n", "search.space must map recipe keys"),
    ("search:\n  trails: 2\n", "unknown key 'trails'"),
])
def test_a_bad_search_block_is_one_line_naming_the_recipe(block, expect, tiny_model, stsb, tmp_path, capsys):  # noqa: F811
    recipe = recipe_with_search(tmp_path, block)
    base = [a for a in args(tiny_model, stsb, tmp_path / "out", space=()) if a not in ("--search", "optuna")]
    assert main([*base, "--recipe", str(recipe)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {recipe}: key search") and expect in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_search_resumes_after_ctrl_c(tiny_model, stsb, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("optuna")
    out = tmp_path / "search"
    real, calls = loop._run_eval, []

    def ctrl_c_in_the_third_trial(evaluate, model, accelerator, step, *rest):
        calls.append(step)
        if len(calls) == 5:  # trials 0 and 1 evaluate at steps 3 and 6 (unless pruned: then sooner)
            raise KeyboardInterrupt
        return real(evaluate, model, accelerator, step, *rest)

    monkeypatch.setattr(loop, "_run_eval", ctrl_c_in_the_third_trial)
    assert main(args(tiny_model, stsb, out, "--trials", "3")) == 130
    monkeypatch.setattr(loop, "_run_eval", real)
    assert (out / "search.db").is_file()
    assert main([*args(tiny_model, stsb, out, "--trials", "3"), "--resume-from", "latest"]) == 0
    summary = json.loads((out / "search_summary.json").read_text())
    states = [row["state"] for row in summary["trials"]]
    assert states.count("fail") == 1 and len([s for s in states if s in ("complete", "pruned")]) == 3
    failed = next(row for row in summary["trials"] if row["state"] == "fail")
    assert summary["trials"][-1]["params"] == failed["params"]  # the interrupted point is run again


def test_a_diverging_trial_is_recorded_with_its_reason_and_the_search_goes_on(tiny_model, stsb, tmp_path, capsys,  # noqa: F811
                                                                                 monkeypatch):
    """A learning rate of 1e30 makes the loss nan at step 2: that trial fails, named, and the other points still run;
    and nothing (a failed trial's traceback, optuna) holds a trial's model once the next begins. The garbage
    collector is off, so a model left in a reference cycle is freed only by the search's own collection."""
    pytest.importorskip("optuna")
    import gc
    import weakref

    from bert_tasks.runner import template

    out, models, real_build = tmp_path / "search", [], template.build_model

    def build_model(*a, **k):
        assert all(ref() is None for ref in models), "the last trial's model is still held"
        model = real_build(*a, **k)
        models.append(weakref.ref(model))
        return model

    monkeypatch.setattr(template, "build_model", build_model)
    space = ("--search-space", "train.learning_rate=choice:0.001,1.0e+30")
    gc.disable()
    try:
        assert main(args(tiny_model, stsb, out, "--trials", "4", space=space)) == 0
    finally:
        gc.enable()
    printed = capsys.readouterr().out
    summary = json.loads((out / "search_summary.json").read_text())
    assert len(summary["trials"]) == 4 == len(models)
    diverged = [row for row in summary["trials"] if row["params"]["train.learning_rate"] == 1e30]
    others = [row for row in summary["trials"] if row not in diverged]
    assert diverged and others  # the seeded draws hold both points
    for row in diverged:
        assert row["state"] == "fail" and row["value"] is None and "loss became nan" in row["reason"]
        assert f"trial {row['trial']}: failed (" in printed and f"trial {row['trial']}: fail ({row['reason']})" in printed
    assert all(row["state"] in ("complete", "pruned") and row["reason"] is None for row in others)
    assert summary["best"]["params"]["train.learning_rate"] == 0.001
    # a resumed search counts the failed trials as run: nothing is left to do
    assert main([*args(tiny_model, stsb, out, "--trials", "4", space=space), "--resume-from", "latest"]) == 0
    assert len(json.loads((out / "search_summary.json").read_text())["trials"]) == 4 == len(models)


def search_case(name: str, extra: tuple[str, ...], *expect: str) -> Case:
    return Case(f"search-{name}", lambda tmp, model: glue_run(tmp, model, *extra), expect)


CASES = [
    search_case("unknown-kind", ("--search", "optuna", "--trials", "2", "--search-space", "train.learning_rate=normal:1:2"),
                "--search-space", "uniform:LOW:HIGH"),
    search_case("low-above-high", ("--search", "optuna", "--trials", "2", "--search-space",
                                   "train.learning_rate=uniform:1e-3:1e-4"), "LOW < HIGH"),
    search_case("log-of-zero", ("--search", "optuna", "--trials", "2", "--search-space",
                                "train.learning_rate=loguniform:0:1e-4"), "both positive"),
    search_case("int-not-integer", ("--search", "optuna", "--trials", "2", "--search-space",
                                    "train.batch_size=int:2.5:8"), "both integers"),
    search_case("unknown-key", ("--search", "optuna", "--trials", "2", "--search-space",
                                "train.learnig_rate=uniform:1e-4:1e-3"), "no setting 'train.learnig_rate'",
                "train.learning_rate"),
    search_case("value-out-of-bounds", ("--search", "optuna", "--trials", "2", "--search-space",
                                        "train.warmup_ratio=uniform:0.5:1.5"), "--search-space", "warmup_ratio"),
    search_case("no-space", ("--search", "optuna", "--trials", "2"), "at least one --search-space"),
    search_case("no-trials", ("--search", "optuna", "--search-space", "train.learning_rate=uniform:1e-4:1e-3"),
                "--trials N"),
    search_case("trials-without-search", ("--trials", "3"), "--trials needs --search optuna"),
    search_case("other-search", ("--search", "grid", "--trials", "3"), "the one search is optuna"),
    search_case("search-with-grid", ("--search", "optuna", "--trials", "2", "--grid", "train.batch_size=4,8",
                                     "--search-space", "train.learning_rate=uniform:1e-4:1e-3"), "drop --grid"),
    search_case("call-of-unknown-kind", ("--search", "optuna", "--trials", "2", "--search-space",
                                         "train.learning_rate=normal(1,2)"), "--search-space", "log(LOW,HIGH)"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_searches_are_one_line(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)


def test_without_optuna_the_error_says_how_to_install_it(tmp_path, tiny_model, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a))
    case = search_case("optuna-missing", ("--search", "optuna", "--trials", "2", "--search-space",
                                          "train.learning_rate=uniform:1e-4:1e-3"), "pip install 'bert-tasks[search]'")
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)

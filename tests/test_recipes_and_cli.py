"""Packaged recipes and the CLI as people meet it: validate, dry-run, copy, help, version, model cards."""

from __future__ import annotations

import pytest
import yaml

from bert_tasks import __version__
from bert_tasks.cli import main
from bert_tasks.config import list_recipes, read_yaml
from bert_tasks.tasks import resolve_recipe

RECIPES = list_recipes()
COMMAND = {"squad": ["finetune", "squad"], "squad_v2": ["finetune", "squad"], "mlm": ["pretrain", "mlm"],
           "classify": ["finetune", "classify"], "ner": ["finetune", "ner"]}


def command_for(task: str) -> list[str]:
    return COMMAND.get(task, ["finetune", "glue"])


def test_recipes_cover_every_job():
    names = {p.stem for p in RECIPES}
    glue = {f"glue-{t}" for t in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli", "all")}
    assert glue | {"mlm-tiny", "mlm-small", "mlm-base", "quickstart", "classify-minilm-cpu", "ner-minilm-cpu"} <= names
    squad = [read_yaml(p) for p in RECIPES if p.stem.startswith("squad")]
    models = {(r["task"], r["model"]["name_or_path"]) for r in squad}
    assert {("squad", "bert-base-uncased"), ("squad_v2", "bert-base-uncased"), ("squad", "minilm"), ("squad_v2", "minilm")} <= models


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_opens_with_its_command_validates_and_dry_runs(path, tmp_path, capsys):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# bert-tasks ") and f"--recipe {path.stem}" in first
    task = read_yaml(path)["task"]
    recipe = resolve_recipe(str(path), task=task)
    assert recipe.description
    out = tmp_path / "run"
    assert main([*command_for(task), "--recipe", path.stem, "--output-dir", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"task: {task}" in printed and "would train" in printed
    assert not out.exists()  # a dry run writes nothing


def test_recipe_overrides_and_flags_reach_the_resolved_config(tmp_path, capsys):
    assert main(["finetune", "glue", "--recipe", "glue-sst2", "--set", "train.learning_rate=5e-5", "--set", "train.seed=3",
                 "--seed", "9", "--output-dir", str(tmp_path / "x"), "--dry-run"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out.split("# would train")[0])
    assert resolved["train"]["learning_rate"] == 5e-5 and resolved["train"]["seed"] == 9


def test_recipes_cp_writes_a_file_that_loads_and_refuses_to_overwrite(tmp_path, capsys):
    target = tmp_path / "mine.yaml"
    assert main(["recipes", "cp", "glue-rte", str(target)]) == 0
    assert resolve_recipe(str(target), task="rte").train.epochs == read_yaml(target)["train"]["epochs"]
    assert main(["recipes", "cp", "glue-rte", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_recipes_list_show_validate(capsys):
    assert main(["recipes", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(p.stem in listing for p in RECIPES)
    assert main(["recipes", "show", "quickstart"]) == 0
    assert capsys.readouterr().out.startswith("# bert-tasks finetune squad --recipe quickstart")
    assert main(["recipes", "validate", "mlm-tiny", "--set", "train.max_steps=7"]) == 0
    assert "max_steps: 7" in capsys.readouterr().out


COMMANDS = [["finetune", "squad"], ["finetune", "glue"], ["eval", "squad"], ["eval", "glue"], ["predict", "squad"],
            ["predict", "glue"], ["pretrain", "mlm"], ["recipes", "list"], ["recipes", "cp"], ["plot"], ["attention"], ["env"], ["export"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "Example" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bert-tasks {__version__}"


def test_env_reports_versions_and_the_bundled_model(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch threads" in out and "offline" in out and "sha256 ok" in out


def test_unknown_command_is_one_line(capsys):
    assert main(["finetune", "ner"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")


def test_model_card_metadata_parses_with_results(tmp_path):
    from bert_tasks.config import Recipe
    from bert_tasks.model.heads import HEADS
    from bert_tasks.checkpoint.modelcard import read_card_metadata, write_model_card

    recipe = Recipe(task="squad_v2", output_dir=str(tmp_path / "squad2"))
    path = write_model_card(tmp_path, recipe, {"exact_match": 71.5, "f1": 74.25, "total": 100, "best_f1_thresh": -1.0},
                            head=HEADS["squad"])
    meta = read_card_metadata(path)
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    result = meta["model-index"][0]["results"][0]
    assert result["task"]["type"] == "question-answering"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"exact_match": 71.5, "f1": 74.25}

"""The GLUE commands' contracts that need no training: dry runs, refusals, one-line errors, recipes, help."""

from __future__ import annotations

import shutil

import pytest
import yaml

from bert_tasks.cli import main
from bert_tasks.config import list_recipes, read_yaml
from bert_tasks.tasks import resolve_recipe

GLUE_RECIPES = sorted(p for p in list_recipes() if p.stem.startswith("glue-"))


def run(*argv) -> int:
    return main([str(a) for a in argv])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_dry_run_prints_the_resolved_config_and_writes_nothing(glue_layout, tmp_path, capsys):
    root, _ = glue_layout
    out = tmp_path / "run"
    assert run("finetune", "glue", "--task", "mrpc", "--data-dir", root, "--output-dir", out, "--dry-run",
               "--set", "train.seed=7", "--epochs", "1") == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["task"] == "mrpc" and config["data"]["task"] == "mrpc"
    # run_glue's defaults < --set < explicit flags
    assert (config["train"]["learning_rate"], config["train"]["batch_size"], config["data"]["max_seq_length"]) == (2e-5, 32, 128)
    assert (config["train"]["seed"], config["train"]["epochs"]) == (7, 1.0)
    assert "would train task 'mrpc'" in printed
    assert not out.exists()


def test_task_all_dry_run_lists_the_tasks_found(glue_layout, tmp_path, capsys):
    root, _ = glue_layout
    assert run("finetune", "glue", "--task", "all", "--data-dir", root, "--output-dir", tmp_path / "all", "--dry-run") == 0
    assert "would train cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli into" in capsys.readouterr().out
    assert not (tmp_path / "all").exists()


def test_non_empty_output_dir_is_refused_without_overwrite(glue_layout, tmp_path, capsys):
    root, _ = glue_layout
    (tmp_path / "keep.txt").write_text("mine")
    assert run("finetune", "glue", "--task", "sst2", "--data-dir", root, "--output-dir", tmp_path) == 2
    assert "--overwrite-output-dir" in one_error_line(capsys)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_bad_data_file_is_one_line_naming_file_and_line(glue_layout, tmp_path, capsys):
    root, _ = glue_layout
    shutil.copytree(root / "SST-2", tmp_path / "SST-2")
    train = tmp_path / "SST-2" / "train.tsv"
    lines = train.read_text().splitlines()
    lines[2] = "a fine film\tmaybe"
    train.write_text("\n".join(lines) + "\n")
    assert run("finetune", "glue", "--task", "sst2", "--data-dir", tmp_path, "--output-dir", tmp_path / "out") == 2
    err = one_error_line(capsys)
    assert str(train) in err and "line 3" in err and "'maybe'" in err


def test_recipe_data_source_is_replaced_by_the_flag(glue_layout, tmp_path):
    from bert_tasks.cli.training import resolve_command_recipe
    from bert_tasks.tasks import FAMILIES

    def resolve_glue_recipe(recipe, sets, values):
        return resolve_command_recipe(FAMILIES["glue"], recipe, sets, values)

    root, _ = glue_layout
    recipe = resolve_glue_recipe("glue-sst2-minilm-cpu", None, {"data_dir": str(root / "SST-2")})
    assert (recipe.data.data_dir, recipe.data.dataset, recipe.data.task) == (str(root / "SST-2"), None, "sst2")
    # a recipe's top-level task names its data task, and --task overrides both
    recipe = resolve_glue_recipe("glue-rte", None, {"task": "wnli"})
    assert (recipe.task, recipe.data.task) == ("wnli", "wnli")
    assert resolve_glue_recipe("glue-rte", None, {}).data.task == "rte"


@pytest.mark.parametrize("path", GLUE_RECIPES, ids=lambda p: p.stem)
def test_glue_recipes_validate_and_say_how_to_run_them(path):
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("# bert-tasks finetune glue --recipe " + path.stem), first
    data = read_yaml(path)
    assert data["task"] and len(str(data["description"]).splitlines()) == 1
    recipe = resolve_recipe(str(path), task="glue")
    if recipe.data.task != "all":
        assert recipe.data.task == data["task"]
    expected_model = "minilm" if "minilm" in path.stem else "bert-base-cased"
    assert recipe.model.name_or_path == expected_model
    settings = [line for line in text.splitlines() if line.startswith("  ") and ":" in line and not line.strip().endswith(":")]
    assert all("#" in line for line in settings if not line.strip().startswith(("task:", "backend:"))), path


def test_expected_recipes_exist():
    names = {p.stem for p in GLUE_RECIPES}
    tasks = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
    assert {f"glue-{t}" for t in tasks} | {"glue-all", "glue-sst2-minilm-cpu"} <= names


def test_every_glue_command_documents_an_example(capsys):
    from bert_tasks.cli import glue, training

    training.attach_training_commands()
    for command in (training.COMMANDS["finetune", "glue"], glue.eval_glue, glue.predict_glue):
        assert "Example: bert-tasks " in command.__doc__
    for group in ("finetune", "eval", "predict"):
        assert run(group, "glue", "--help") == 0
        assert "Example: bert-tasks" in capsys.readouterr().out


def test_eval_without_a_task_or_recipe_is_one_line(tmp_path, capsys, glue_layout):
    root, _ = glue_layout
    assert run("eval", "glue", "--model", tmp_path, "--data-dir", root) == 2
    assert "--task" in one_error_line(capsys)


def test_predict_from_a_folder_without_labels_is_one_line(tmp_path, capsys, tokenizer):
    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertModel

    save_pretrained(BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                         intermediate_size=37)), tmp_path, tokenizer=tokenizer)
    assert run("predict", "glue", "--model", tmp_path, "--text", "hello") == 2
    assert "id2label" in one_error_line(capsys)

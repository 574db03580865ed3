"""Recipe loading: strict keys and types, layered overrides, safe YAML."""

from __future__ import annotations

import pytest

from bert_tasks.config import Recipe, TrainConfig, from_dict, parse_override, parse_scalar
from bert_tasks.tasks import resolve_recipe
from bert_tasks.errors import BertTasksError


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """\
# bert-tasks finetune glue --recipe r.yaml
task: sst2
model: {name_or_path: minilm}
data: {task: sst2, dataset: glue}
train: {learning_rate: 2.0e-5, batch_size: 32, epochs: 3}
output_dir: runs/x
"""


def test_recipe_validates_into_dataclasses(tmp_path):
    recipe = resolve_recipe(str(write(tmp_path, BASE)), task="glue")
    assert isinstance(recipe, Recipe) and isinstance(recipe.train, TrainConfig)
    assert recipe.train.learning_rate == 2e-5 and recipe.train.epochs == 3.0  # int accepted for float
    assert type(recipe.data).__name__ == "GlueDataConfig" and recipe.data.dataset == "glue"


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, BASE.replace("epochs: 3", "epochz: 3"))
    with pytest.raises(BertTasksError) as err:
        resolve_recipe(str(path), task="glue")
    message = err.value.one_line()
    assert str(path) in message and "unknown key 'train.epochz'" in message and "did you mean 'train.epochs'" in message


def test_wrong_type_names_key(tmp_path):
    path = write(tmp_path, BASE.replace("batch_size: 32", "batch_size: large"))
    with pytest.raises(BertTasksError, match=r"key 'train.batch_size' must be int, got 'large'"):
        resolve_recipe(str(path), task="glue")


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(BertTasksError, match="batch_size"):
        from_dict(TrainConfig, {"batch_size": True})


def test_overrides_then_flags_win(tmp_path):
    path = write(tmp_path, BASE)
    recipe = resolve_recipe(str(path), task="glue", overrides=["train.learning_rate=5e-5", "train.seed=7"],
                            flags={"train.seed": 11, "train.epochs": None})
    assert recipe.train.learning_rate == 5e-5  # --set beats the file
    assert recipe.train.seed == 11  # an explicit flag beats --set
    assert recipe.train.epochs == 3.0  # a flag that was not given changes nothing


def test_defaults_sit_below_the_recipe(tmp_path):
    recipe = resolve_recipe(str(write(tmp_path, BASE)), task="glue", defaults={"train.learning_rate": 1.0, "train.weight_decay": 0.5})
    assert recipe.train.learning_rate == 2e-5 and recipe.train.weight_decay == 0.5


def test_yaml_tags_cannot_construct_objects(tmp_path):
    path = write(tmp_path, BASE + "evil: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(BertTasksError, match="invalid YAML") as err:
        resolve_recipe(str(path), task="glue")
    assert str(path) in err.value.one_line()


def test_invalid_values_are_rejected(tmp_path):
    with pytest.raises(BertTasksError, match="mixed_precision"):
        resolve_recipe(str(write(tmp_path, BASE)), task="glue", overrides=["train.mixed_precision=fp8"])


def test_malformed_override():
    with pytest.raises(BertTasksError, match="key=value"):
        parse_override("train.learning_rate")
    assert parse_override("train.report_to=[tensorboard]") == (["train", "report_to"], ["tensorboard"])


@pytest.mark.parametrize("raw, value", [("1e-3", 0.001), ("5E-5", 5e-05), ("-3e2", -300.0), ("1.0e+30", 1e30),
                                        ("2", 2), ("0.1", 0.1), ("true", True), ("e5", "e5"), ("1e", "1e")])
def test_a_value_on_the_command_line_reads_1e_3_as_a_number(raw, value):
    """PyYAML (YAML 1.1) reads 1e-3 as a string; a grid, a search choice or an override must keep it a float."""
    assert parse_scalar(raw) == value and type(parse_scalar(raw)) is type(value)
    from bert_tasks.cli.options import parse_grid
    from bert_tasks.runner.search import parse_space

    assert parse_override(f"train.learning_rate={raw}")[1] == value
    assert parse_space([f"train.learning_rate=choice:{raw},0.5"])["train.learning_rate"].choices[0] == value
    assert parse_grid([f"train.learning_rate={raw},0.5"])["train.learning_rate"][0] == value


def test_unknown_task_is_one_clear_line(tmp_path):
    with pytest.raises(BertTasksError, match="unknown task 'sst3'; did you mean 'sst2'"):
        resolve_recipe(None, task="sst3")


def test_an_unquoted_no_in_yaml_is_the_choice_it_spells(tmp_path):
    """YAML 1.1 reads `mixed_precision: no` as False; the choice "no" is what the user wrote."""
    path = write(tmp_path, BASE.replace("epochs: 3", "epochs: 3, mixed_precision: no"))
    assert resolve_recipe(str(path), task="glue").train.mixed_precision == "no"
    recipe = resolve_recipe(str(path), task="glue", overrides=["train.mixed_precision=no"])
    assert recipe.train.mixed_precision == "no"
    with pytest.raises(BertTasksError, match="must be one of"):  # a bool with no choice spelled that way is refused
        resolve_recipe(str(path), task="glue", overrides=["train.lr_scheduler=off"])

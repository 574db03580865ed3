"""MlmDataConfig.validate rejects impossible settings with a one-line error naming the key."""

import dataclasses

import pytest

from bert_tasks.config import from_dict
from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.mlm.config import MlmDataConfig


def test_defaults_with_train_files_are_valid():
    cfg = MlmDataConfig(train_files=["a.txt"]).validate()
    assert cfg.mlm_probability == 0.15 and cfg.max_seq_length == 128 and cfg.vocab_size == 8192


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"mlm_probability": 0.0}, "mlm_probability"),
        ({"mlm_probability": 1.0}, "mlm_probability"),
        ({"mlm_probability": 1.5}, "mlm_probability"),
        ({"vocab_size": 20}, "vocab_size"),
        ({"max_seq_length": 7}, "max_seq_length"),
        ({"validation_split": 0.0}, "validation_split"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"max_eval_samples": 0}, "max_eval_samples"),
        ({"min_frequency": 0}, "min_frequency"),
        ({"train_files": []}, "train_files"),
        ({"dataset": "wikitext"}, "train_files"),
        ({"dataset_config": "raw"}, "dataset_config"),
        ({"streaming_validation_lines": 0}, "streaming_validation_lines"),
        ({"text_column": ""}, "text_column"),
    ],
)
def test_impossible_values_are_rejected(changes, key):
    cfg = MlmDataConfig(train_files=["a.txt"])
    for name, value in changes.items():
        setattr(cfg, name, value)
    with pytest.raises(BertTasksError) as err:
        from_dict(MlmDataConfig, dataclasses.asdict(cfg), file="recipe.yaml")  # a recipe file's data: section
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"recipe.yaml: key {key}: ")


def test_small_vocab_is_fine_when_a_tokenizer_is_given():
    MlmDataConfig(train_files=["a.txt"], tokenizer="some/folder", vocab_size=10).validate()


def test_hub_dataset_alone_is_a_source():
    MlmDataConfig(dataset="wikitext", dataset_config="wikitext-2-raw-v1").validate()


def test_from_dict_names_unknown_keys():
    with pytest.raises(BertTasksError, match="r.yaml: unknown key 'mlm_prob'"):
        from_dict(MlmDataConfig, {"train_files": ["a.txt"], "mlm_prob": 0.2}, file="r.yaml")
    assert from_dict(MlmDataConfig, {"train_files": "a.txt"}).train_files == ["a.txt"]

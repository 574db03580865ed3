"""A task added through the registry alone runs end to end through the real CLI.

The toy task below is all a new task needs: a settings class, a Task with its hooks, and one
``register`` call. Nothing in the CLI, the runner, the training loop or the checkpoint code knows
it; `bert-tasks finetune toy` exists because the family is registered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from toy import TINY, ToyTask, toy_dataset

from bert_tasks.cli import main, training
from bert_tasks.cli.app import finetune_app
from bert_tasks.config import DataSettings, require, setting
from bert_tasks.tasks import FAMILIES, TASK_FAMILY, TaskFamily, register
from bert_tasks.training import predict


@dataclass
class ToyDataConfig(DataSettings):
    size: int = setting(48, "How many toy sequences to train on.", at_least=8)
    eval_size: int = setting(31, "How many to evaluate on.", at_least=2)
    data_seed: int = setting(0, "Seed of the toy data.", cli=False)

    def check(self) -> None:
        require(self.eval_size <= 4 * self.size, "eval_size", "a toy evaluation set is at most four times the training set")


class RegisteredToyTask(ToyTask):
    """The toy classification task with the run hooks the template asks for."""

    name, head = "toy", "glue"

    def num_labels(self, cfg):
        return 2

    def read_data(self, recipe):
        cfg = recipe.data
        return {"train": toy_dataset(cfg.size, seed=cfg.data_seed), "validation": toy_dataset(cfg.eval_size, seed=9)}

    def train_features(self, data, tokenizer, recipe, run):
        return data["train"]

    def evaluator(self, data, tokenizer, cfg, batch_size):
        def evaluate(model, accelerator, output_dir):
            logits = np.stack(predict(model, self, data["validation"], batch_size=batch_size, accelerator=accelerator)["logits"])
            accuracy = float((logits.argmax(-1) == np.array(data["validation"]["labels"])).mean())
            return {"accuracy": accuracy, "eval_samples": len(logits)}

        return evaluate

    def model_labels(self, cfg):
        return {0: "low", 1: "high"}


@pytest.fixture
def toy_family(monkeypatch):
    family = TaskFamily(name="toy", command="finetune", config_class=ToyDataConfig, tasks={"toy": RegisteredToyTask},
                        default_task="toy", help="Fine-tune on the toy task.", examples=("bert-tasks finetune toy",))
    monkeypatch.setitem(FAMILIES, "toy", family)
    monkeypatch.setitem(TASK_FAMILY, "toy", "toy")
    register(family)
    yield family
    command = training.COMMANDS.pop(("finetune", "toy"), None)
    training.MADE_FROM.pop(("finetune", "toy"), None)
    finetune_app.registered_commands[:] = [c for c in finetune_app.registered_commands if c.callback is not command]


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory):
    """A tiny encoder whose vocabulary (99) covers the toy ids, with a small WordPiece tokenizer beside it."""
    import torch

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertModel
    from bert_tasks.tasks.mlm.tokenizer import train_wordpiece

    torch.manual_seed(0)
    tokenizer = train_wordpiece(["low high toy words " * 3] * 20, vocab_size=60, min_frequency=1)
    assert len(tokenizer) <= TINY["vocab_size"]
    folder = tmp_path_factory.mktemp("toy-model")
    save_pretrained(BertModel(BertConfig(**TINY)), folder, tokenizer=tokenizer)
    return folder


def test_a_registered_task_gets_a_command_with_its_own_options(toy_family, capsys):
    assert main(["finetune", "toy", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--size" in out and "--eval-size" in out and "--data-seed" not in out and "--learning-rate" in out


def test_a_registered_task_runs_end_to_end_through_the_cli(toy_family, toy_model, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["finetune", "toy", "--model", str(toy_model), "--output-dir", str(out), "--size", "32",
                 "--max-steps", "6", "--batch-size", "8", "--learning-rate", "5e-4", "--logging-steps", "2",
                 "--set", "train.num_threads=1"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "eval_results.json").read_text())
    assert results["eval_samples"] == 31 and 0.0 <= results["accuracy"] <= 1.0
    assert (out / "model.safetensors").is_file() and "task `toy`" in (out / "README.md").read_text()
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"] and config["id2label"] == {"0": "low", "1": "high"}
    assert f"toy ({out}): accuracy=" in capsys.readouterr().out
    # its settings are checked like every other task's: one line, exit 2
    assert main(["finetune", "toy", "--model", str(toy_model), "--output-dir", str(tmp_path / "bad"), "--size", "4"]) == 2
    assert "size must be at least 8" in capsys.readouterr().err

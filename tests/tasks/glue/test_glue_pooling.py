"""Pooling heads and class weights through the real CLI on tiny data: the run folder, eval and predict (both
backends) reading the pooled folder exactly, the pooling-weights picture, exact resume, and the weighted loss."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from bert_tasks.checkpoint import POOLED_WEIGHTS
from bert_tasks.cli import main
from bert_tasks.model import POOLING_KEY

TINY = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=128)
FAST = ["--batch-size", "4", "--eval-batch-size", "3", "--max-seq-length", "32", "--set", "train.num_threads=1"]
POOLED = ["--pooling", "attention", "--attention-score", "general"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tokenizer):
    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    save_pretrained(BertModel(BertConfig(**TINY)), folder, tokenizer=tokenizer)
    return folder


def run(*argv) -> int:
    return main([str(a) for a in argv])


def finetune(model, root, out, *extra) -> list[str]:
    return ["finetune", "glue", "--task", "sst2", "--model", model, "--data-dir", root, "--output-dir", out, *FAST, *extra]


@pytest.fixture(scope="module")
def pooled_run(glue_layout, tiny_model, tmp_path_factory):
    root, _ = glue_layout
    out = tmp_path_factory.mktemp("runs") / "sst2-attention"
    assert run(*finetune(tiny_model, root, out, *POOLED, "--max-steps", "3", "--learning-rate", "1e-3")) == 0
    return out, root


def test_the_run_folder_records_the_pooling(pooled_run):
    out, _ = pooled_run
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert-tasks-attention-pooling"
    assert config[POOLING_KEY] == {"pooling": "attention", "attention_score": "general", "attention_query": "learned"}
    assert (out / POOLED_WEIGHTS).is_file() and not (out / "model.safetensors").exists()
    assert any(k.startswith("pooling.score.w") for k in load_file(out / POOLED_WEIGHTS))
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["model"]["pooling"] == "attention" and recipe["model"]["attention_score"] == "general"
    card = (out / "README.md").read_text()
    assert "| pooling | attention (general score, learned query) |" in card
    assert "transformers refuses this folder" in card and "AutoModelForSequenceClassification" not in card


@pytest.mark.parametrize("backend", ["scratch", "hf"])
def test_eval_reproduces_the_training_score(pooled_run, tmp_path, backend):
    out, root = pooled_run
    assert run("eval", "glue", "--model", out, "--data-dir", root, "--task", "sst2", "--backend", backend,
               "--output-dir", tmp_path / "eval") == 0
    trained = json.loads((out / "eval_results.json").read_text())
    again = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert again["accuracy"] == trained["accuracy"]
    rows = lambda path: [json.loads(line) for line in path.read_text().splitlines()]  # noqa: E731
    assert rows(tmp_path / "eval" / "eval_predictions.jsonl") == rows(out / "eval_predictions.jsonl")


def test_predict_json_gives_the_pooling_weights(pooled_run, capsys):
    out, _ = pooled_run
    capsys.readouterr()
    assert run("predict", "glue", "--model", out, "--text", "a big red dog", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    weights = result["pooling_weights"]
    assert weights["tokens"] == ["[CLS]", "a", "big", "red", "dog", "[SEP]"]
    assert len(weights["weights"]) == 6 and abs(sum(weights["weights"]) - 1) < 1e-5 and min(weights["weights"]) > 0
    assert result["label"] in ("negative", "positive")


def test_attention_draws_the_pooling_weights(pooled_run, tmp_path, capsys):
    out, _ = pooled_run
    capsys.readouterr()
    assert run("attention", "--model", out, "--text", "the cat sat", "--pooling-weights", "--json",
               "--out", tmp_path / "pool.png") == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "pool.png").stat().st_size > 1000 and "prediction:" in printed
    drawn = json.loads((tmp_path / "pool.json").read_text())
    capsys.readouterr()
    run("predict", "glue", "--model", out, "--text", "the cat sat", "--json")
    predicted = json.loads(capsys.readouterr().out)
    assert drawn["weights"] == predicted["pooling_weights"]["weights"] and drawn["label"] == predicted["label"]


def test_a_pooled_run_resumes_exactly(glue_layout, tiny_model, tmp_path):
    root, _ = glue_layout
    steps = ["--max-steps", "4", "--save-steps", "2", "--learning-rate", "1e-3", "--pooling", "mean"]
    assert run(*finetune(tiny_model, root, tmp_path / "whole", *steps)) == 0
    assert run(*finetune(tiny_model, root, tmp_path / "cut", *steps)) == 0
    cut = tmp_path / "cut"
    for name in (POOLED_WEIGHTS, "eval_results.json", "train_results.json"):
        (cut / name).unlink()
    shutil.rmtree(cut / "checkpoints" / "step-4")
    assert run(*finetune(tiny_model, root, cut, *steps, "--resume-from", "latest")) == 0
    whole, resumed = load_file(tmp_path / "whole" / POOLED_WEIGHTS), load_file(cut / POOLED_WEIGHTS)
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_class_weights_auto_is_inverse_frequency_and_recorded(glue_layout, tiny_model, tmp_path):
    root, expected = glue_layout
    out = tmp_path / "weighted"
    assert run(*finetune(tiny_model, root, out, "--max-steps", "1", "--class-weights", "auto")) == 0
    labels = np.array([row[3] for row in expected["sst2"]["train"]])
    counts = np.bincount(labels, minlength=2)
    assert counts.min() > 0 and counts[0] != counts[1]  # the generated data is imbalanced, so the weights differ
    balanced = len(labels) / (2 * counts)
    assert yaml.safe_load((out / "recipe.yaml").read_text())["data"]["class_weights"] == "auto"
    card = (out / "README.md").read_text()
    assert f"| class_weights | negative {balanced[0]:.4g}, positive {balanced[1]:.4g} (auto) |" in card


def test_class_weights_weigh_the_loss():
    from bert_tasks.tasks.glue.task import GlueTask, class_weight_tensor

    task = GlueTask("mrpc")
    logits, labels = torch.randn(6, 2), torch.tensor([0, 1, 1, 1, 1, 0])
    plain = task.loss({"logits": logits}, {"labels": labels})
    assert torch.allclose(plain, torch.nn.functional.cross_entropy(logits, labels))
    task.class_weights = class_weight_tensor("equivalent=3,0=0.5", "mrpc", labels.numpy())
    assert task.class_weights.tolist() == [0.5, 3.0]  # not_equivalent (class 0) named by its id, in any order
    weighted = task.loss({"logits": logits}, {"labels": labels})
    by_hand = sum(w * torch.nn.functional.cross_entropy(logits[i:i + 1], labels[i:i + 1])
                  for i, w in enumerate(task.class_weights[labels])) / task.class_weights[labels].sum()
    assert torch.allclose(weighted, by_hand) and not torch.allclose(weighted, plain)
    auto = class_weight_tensor("auto", "mrpc", labels.numpy())
    assert torch.allclose(auto, torch.tensor([6 / (2 * 2), 6 / (2 * 4)]))


def test_class_weights_for_task_all_with_stsb_fail_before_anything_trains(glue_layout, tiny_model, tmp_path, capsys):
    root, _ = glue_layout
    out = tmp_path / "all"
    assert run("finetune", "glue", "--task", "all", "--model", tiny_model, "--data-dir", root, "--output-dir", out,
               "--class-weights", "auto", *FAST, "--max-steps", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stsb is a regression task" in err[0]
    assert not out.exists()


def test_a_pooled_folder_without_its_pooling_is_refused_and_a_cls_folder_takes_a_new_one(pooled_run, tmp_path, capsys):
    from safetensors.torch import save_file

    out, root = pooled_run
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    weights = load_file(broken / POOLED_WEIGHTS)
    save_file({k: v for k, v in weights.items() if not k.startswith("pooling.")}, broken / POOLED_WEIGHTS)
    capsys.readouterr()
    assert run("predict", "glue", "--model", broken, "--text", "a big red dog") == 2
    assert "no trained sequence-classification head" in capsys.readouterr().err
    # a saved mean-pooled model over the same folder as a cls one leaves no stale weights behind
    from bert_tasks.checkpoint import load_pretrained, save_pretrained

    cls = load_pretrained(out, task="glue", trained_head=True, pooling={"pooling": "cls", "attention_score": "additive",
                                                                        "attention_query": "learned"})
    save_pretrained(cls, broken)
    assert (broken / "model.safetensors").is_file() and not (broken / POOLED_WEIGHTS).exists()
    assert run("finetune", "glue", "--task", "sst2", "--model", broken, "--backend", "hf", "--pooling", "attention",
               "--data-dir", root, "--output-dir", tmp_path / "hf-attention", *FAST, "--max-steps", "1") == 0


def test_a_finished_pooled_seed_counts_as_trained_on_resume(glue_layout, tiny_model, tmp_path, capsys):
    root, _ = glue_layout
    out = tmp_path / "seeds"
    command = finetune(tiny_model, root, out, "--pooling", "mean", "--max-steps", "2", "--seeds", "1,2")
    assert run(*command) == 0
    capsys.readouterr()
    assert run(*command, "--resume-from", "latest") == 0
    printed = capsys.readouterr().out
    assert f"already trained in {out / 'seed-1'}" in printed and f"already trained in {out / 'seed-2'}" in printed

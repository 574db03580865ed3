"""GLUE end to end through the CLI on a tiny model: run folder, HF pipeline parity, hf backend, task all, MNLI, STS-B."""

from __future__ import annotations

import json
import shutil

import pytest

from bert_tasks.cli import main

TINY = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=128)
from cli_args import with_options

FAST = ["--max-steps", "2", "--batch-size", "4", "--eval-batch-size", "3", "--max-seq-length", "32"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, tokenizer):
    """A bare tiny encoder with MiniLM's real tokenizer: every task adds its own fresh head."""
    import torch

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    save_pretrained(BertModel(BertConfig(**TINY)), folder, tokenizer=tokenizer)
    return str(folder)


def subset_root(glue_layout, tmp_path_factory, *folders):
    """A GLUE root holding only some tasks, so `--task all` stays quick."""
    src, _ = glue_layout
    root = tmp_path_factory.mktemp("glue-subset")
    for folder in folders:
        shutil.copytree(src / folder, root / folder)
    return root


def run(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def sst2_run(glue_layout, tiny_model, tmp_path_factory):
    root, expected = glue_layout
    out = tmp_path_factory.mktemp("runs") / "sst2"
    code = run("finetune", "glue", "--task", "sst2", "--model", tiny_model, "--data-dir", root, "--output-dir", out,
               *with_options(FAST, "--max-steps", "3", "--eval-steps", "2", "--do-predict"))
    assert code == 0
    return out, root, expected


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_finetune_writes_a_complete_run_folder(sst2_run):
    out, _, expected = sst2_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "train_log.jsonl",
                 "train_results.json", "eval_results.json", "eval_predictions.jsonl", "README.md"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert config["architectures"] == ["BertForSequenceClassification"]
    results = json.loads((out / "eval_results.json").read_text())
    assert set(results) == {"accuracy", "ece", "eval_samples", "precision"} and results["precision"] == "fp32"
    assert results["eval_samples"] == len(expected["sst2"]["validation"])
    log = read_jsonl(out / "train_log.jsonl")
    assert [r["step"] for r in log if r.get("eval")] == [2, 3]  # every eval_steps and at the end
    rows = read_jsonl(out / "eval_predictions.jsonl")
    gold = {idx: ("negative", "positive")[label] for idx, _, _, label in expected["sst2"]["validation"]}
    assert [r["idx"] for r in rows] == list(gold)
    assert all(r["label"] == gold[r["idx"]] and r["prediction"] in ("negative", "positive") for r in rows)
    hits = sum(r["label"] == r["prediction"] for r in rows)
    assert results["accuracy"] == pytest.approx(hits / len(rows))
    recipe = (out / "recipe.yaml").read_text()
    assert "learning_rate: 2.0e-05" in recipe and "task: sst2" in recipe  # run_glue's defaults, resolved


def test_do_predict_writes_the_leaderboard_file(sst2_run):
    out, _, expected = sst2_run
    lines = (out / "submission" / "SST-2.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    assert [int(line.split("\t")[0]) for line in lines[1:]] == [row[0] for row in expected["sst2"]["test"]]
    assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}


def test_transformers_pipeline_agrees_with_eval_and_predict(sst2_run, capsys):
    from transformers import pipeline

    out, _, expected = sst2_run
    classifier = pipeline("text-classification", model=str(out), device="cpu")
    sentences = [row[1] for row in expected["sst2"]["validation"]]
    ours = [r["prediction"] for r in read_jsonl(out / "eval_predictions.jsonl")]
    assert [p["label"] for p in classifier(sentences)] == ours

    capsys.readouterr()
    assert run("predict", "glue", "--model", out, "--text", sentences[0], "--json") == 0
    result = json.loads(capsys.readouterr().out)
    reference = classifier(sentences[0], top_k=None)
    assert result["label"] == reference[0]["label"] == ours[0]
    assert result["probabilities"] == pytest.approx({p["label"]: p["score"] for p in reference}, abs=1e-5)
    assert run("predict", "glue", "--model", out, "--text", sentences[0]) == 0
    assert capsys.readouterr().out.startswith(ours[0])


def test_eval_reproduces_the_training_score(sst2_run, tmp_path):
    out, root, _ = sst2_run
    assert run("eval", "glue", "--model", out, "--data-dir", root, "--output-dir", tmp_path) == 0  # task from recipe.yaml
    assert json.loads((tmp_path / "eval_results.json").read_text()) == pytest.approx(
        json.loads((out / "eval_results.json").read_text()))
    assert read_jsonl(tmp_path / "eval_predictions.jsonl") == read_jsonl(out / "eval_predictions.jsonl")


def test_eval_with_another_tasks_labels_is_one_line_exit_2(sst2_run, capsys):
    out, root, _ = sst2_run
    assert run("eval", "glue", "--model", out, "--task", "rte", "--data-dir", root) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "config.json" in err and "not task rte's labels" in err
    assert run("eval", "glue", "--model", out, "--task", "mnli", "--data-dir", root) == 2
    assert "needs 3" in capsys.readouterr().err


def test_hf_backend_finetunes_and_evaluates(glue_layout, tiny_model, tmp_path):
    root, _ = glue_layout
    out = tmp_path / "hf"
    assert run("finetune", "glue", "--task", "sst2", "--backend", "hf", "--model", tiny_model, "--data-dir", root,
               "--output-dir", out, *FAST) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert run("eval", "glue", "--model", out, "--backend", "hf", "--data-dir", root, "--output-dir", tmp_path / "ev") == 0
    # the folder saved from the transformers model evaluates the same on our encoder
    assert run("eval", "glue", "--model", out, "--data-dir", root, "--output-dir", tmp_path / "ev2") == 0
    assert read_jsonl(tmp_path / "ev" / "eval_predictions.jsonl") == read_jsonl(tmp_path / "ev2" / "eval_predictions.jsonl")


def test_task_all_mnli_stsb_table_and_submissions(glue_layout, tiny_model, tmp_path_factory, capsys):
    root = subset_root(glue_layout, tmp_path_factory, "SST-2", "MNLI", "STS-B", "diagnostic")
    out = tmp_path_factory.mktemp("runs") / "all"
    assert run("finetune", "glue", "--task", "all", "--model", tiny_model, "--data-dir", root, "--output-dir", out,
               *FAST, "--do-predict") == 0
    assert sorted(p.name for p in out.iterdir() if (p / "config.json").is_file()) == ["mnli", "sst2", "stsb"]

    mnli = json.loads((out / "mnli" / "eval_results.json").read_text())
    assert {"accuracy_m", "accuracy_mm", "eval_samples_m", "eval_samples_mm"} <= set(mnli)
    assert (mnli["eval_samples_m"], mnli["eval_samples_mm"], mnli["eval_samples"]) == (8, 10, 18)
    assert {r["split"] for r in read_jsonl(out / "mnli" / "eval_predictions.jsonl")} == {"validation_matched", "validation_mismatched"}

    stsb_config = json.loads((out / "stsb" / "config.json").read_text())
    assert stsb_config["problem_type"] == "regression" and len(stsb_config["id2label"]) == 1
    assert {"pearson", "spearmanr"} <= set(json.loads((out / "stsb" / "eval_results.json").read_text()))
    assert all(isinstance(r["prediction"], float) for r in read_jsonl(out / "stsb" / "eval_predictions.jsonl"))

    sub = out / "submission"
    assert sorted(p.name for p in sub.iterdir()) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "SST-2.tsv", "STS-B.tsv"]
    assert {line.split("\t")[1] for line in (sub / "MNLI-m.tsv").read_text().splitlines()[1:]} <= {"entailment", "neutral", "contradiction"}
    scores = [float(line.split("\t")[1]) for line in (sub / "STS-B.tsv").read_text().splitlines()[1:]]
    assert scores and all(0.0 <= s <= 5.0 for s in scores)
    assert (out / "glue_results.json").is_file()

    capsys.readouterr()
    assert run("eval", "glue", "--task", "all", "--model", out, "--data-dir", root) == 0
    table = capsys.readouterr().out
    for name in ("SST-2", "MNLI", "STS-B", "Average", "Acc-m/Acc-mm", "Pearson/Spearman"):
        assert name in table
    results = json.loads((out / "glue_results.json").read_text())
    assert set(results["tasks"]) == {"sst2", "mnli", "stsb"} and 0 <= results["glue_score"] <= 1

    capsys.readouterr()
    assert run("predict", "glue", "--model", out / "stsb", "--text", "a cat", "--text-pair", "a dog", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["label"] == "score" and isinstance(result["score"], float) and "probabilities" not in result


def test_same_seed_gives_the_same_model(sst2_run, tiny_model, tmp_path):
    """The fresh classifier head is seeded too, not only the data order and dropout."""
    out, root, _ = sst2_run
    again = tmp_path / "again"
    assert run("finetune", "glue", "--task", "sst2", "--model", tiny_model, "--data-dir", root, "--output-dir", again,
               *with_options(FAST, "--max-steps", "3", "--eval-steps", "2")) == 0
    assert (again / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_unpad_flag_reaches_the_encoder_and_is_recorded(glue_layout, tiny_model, tmp_path, monkeypatch):
    from bert_tasks.model import encoder as model_module

    unpadded_batches = []
    original = model_module.RealTokens.from_mask.__func__

    def counting(cls, attention_mask, ragged=False):
        real = original(cls, attention_mask, ragged)
        unpadded_batches.append(real is not None)
        return real

    monkeypatch.setattr(model_module.RealTokens, "from_mask", classmethod(counting))
    root, _ = glue_layout
    out = tmp_path / "unpadded"
    assert run("finetune", "glue", "--task", "sst2", "--model", tiny_model, "--data-dir", root, "--output-dir", out,
               *FAST, "--unpad") == 0
    assert "unpad: true" in (out / "recipe.yaml").read_text()
    assert (out / "eval_results.json").is_file()
    assert len(unpadded_batches) >= 2 and any(unpadded_batches)  # training and evaluation batches, some padded

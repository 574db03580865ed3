"""SQuAD fine-tuning end to end through the CLI on a tiny model: run folder, official scores, HF parity, eval."""

from __future__ import annotations

import json

import pytest
import torch

from bert_tasks.tasks.squad.data import load_squad_examples
from bert_tasks.tasks.squad.scoring import V2_KEYS, score_predictions

from conftest import cli

RUN_FILES = ("config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "train_log.jsonl", "train_results.json",
             "eval_results.json", "predictions.json", "nbest_predictions.json", "README.md")


def read_json(path):
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_finetune_writes_a_complete_run_folder(tag, request, squad_files):
    out = request.getfixturevalue(f"{tag}_run")
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert (out / "null_odds.json").is_file() == (tag == "v2")
    results = read_json(out / "eval_results.json")
    expected = {"exact_match", "f1", "total", "precision"} | ({*V2_KEYS, "answered"} if tag == "v2" else set())
    assert set(results) == expected and results["precision"] == "fp32"
    gold = load_squad_examples(squad_files[f"{tag}-validation"], version_2=tag == "v2")
    assert results["total"] == len(gold)
    assert all(0 <= results[k] <= 100 for k in ("exact_match", "f1"))
    predictions = read_json(out / "predictions.json")
    nbest = read_json(out / "nbest_predictions.json")
    assert set(predictions) == set(nbest) == set(gold["id"])
    assert all(isinstance(v, str) for v in predictions.values())
    assert all({"text", "probability", "start_logit", "end_logit"} <= set(entries[0]) for entries in nbest.values())
    assert [r["step"] for r in read_jsonl(out / "train_log.jsonl") if r.get("eval")] == [2, 3]  # eval_steps and the end
    recipe = (out / "recipe.yaml").read_text()
    assert f"task: {'squad_v2' if tag == 'v2' else 'squad'}" in recipe
    assert "learning_rate: 3.0e-05" in recipe and "weight_decay: 0.0" in recipe  # run_qa.py's defaults, resolved
    config = read_json(out / "config.json")
    assert config["architectures"] == ["BertForQuestionAnswering"]
    assert config["bert_tasks_version_2_with_negative"] is (tag == "v2")
    card = (out / "README.md").read_text()
    assert "question-answering" in card and "AutoModelForQuestionAnswering" in card


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_written_predictions_rescore_to_eval_results(tag, request, squad_files):
    """The files on disk, scored again by the official metrics, give exactly eval_results.json."""
    from bert_tasks.metrics import load_metric

    out = request.getfixturevalue(f"{tag}_run")
    version_2 = tag == "v2"
    gold = load_squad_examples(squad_files[f"{tag}-validation"], version_2=version_2)
    predictions = read_json(out / "predictions.json")
    odds = read_json(out / "null_odds.json") if version_2 else None
    results = read_json(out / "eval_results.json")
    assert score_predictions(gold, predictions, odds, version_2=version_2) == {k: v for k, v in results.items() if k != "precision"}
    references = [{"id": e["id"], "answers": e["answers"]} for e in gold]
    if version_2:
        official = load_metric("squad_v2").compute(
            predictions=[{"id": k, "prediction_text": v, "no_answer_probability": odds[k]} for k, v in predictions.items()],
            references=references, no_answer_threshold=float("inf"))
        assert (official["exact"], official["f1"], official["best_f1"]) == (results["exact_match"], results["f1"], results["best_f1"])
        # the thresholded answers are the ones written: no answer exactly where null odds beat the threshold 0.0
        assert all((predictions[k] == "") == (odds[k] > 0.0) for k in predictions)
    else:
        official = load_metric("squad").compute(
            predictions=[{"id": k, "prediction_text": v} for k, v in predictions.items()], references=references)
        assert (official["exact_match"], official["f1"]) == (results["exact_match"], results["f1"])


def test_transformers_loads_the_folder_with_our_logits(v1_run, tokenizer):
    from transformers import AutoModelForQuestionAnswering

    from bert_tasks.checkpoint import load_pretrained

    ours = load_pretrained(v1_run, task="squad").eval()
    theirs = AutoModelForQuestionAnswering.from_pretrained(v1_run).eval()
    batch = tokenizer(["Where was Ada born?", "Who?"], ["Ada was born in London.", "Babbage built engines in 1837."],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        a, b = ours(**batch), theirs(**batch)
    assert not torch.equal(a.start_logits, torch.zeros_like(a.start_logits))
    torch.testing.assert_close(a.start_logits, b.start_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(a.end_logits, b.end_logits, rtol=0, atol=1e-5)


def test_eval_with_the_hf_backend_gives_our_predictions(v2_run, squad_files, tmp_path, capsys):
    """`eval squad` on the trained folder: the transformers model answers exactly as our encoder."""
    runs = {}
    for backend in ("scratch", "hf"):
        out = tmp_path / backend
        assert cli("eval", "squad", "--model", v2_run, "--validation-file", squad_files["v2-validation"],
                   "--output-dir", out, "--backend", backend) == 0
        runs[backend] = out
    printed = capsys.readouterr().out
    assert "backend hf" in printed and "exact_match=" in printed
    for name in ("predictions.json", "eval_results.json"):
        assert read_json(runs["scratch"] / name) == read_json(runs["hf"] / name), name
    odds = [read_json(runs[b] / "null_odds.json") for b in runs]
    assert odds[0].keys() == odds[1].keys() and all(abs(odds[0][k] - odds[1][k]) < 1e-4 for k in odds[0])
    # settings come from the folder's recipe.yaml: v2.0 mode without the flag, same answers as training's last eval
    assert read_json(runs["scratch"] / "predictions.json") == read_json(v2_run / "predictions.json")
    assert set(read_json(runs["hf"] / "eval_results.json")) >= set(V2_KEYS)


def test_eval_before_training_and_a_train_only_run(tiny_qa_dir, squad_files, tmp_path, capsys):
    out = tmp_path / "before"
    assert cli("finetune", "squad", "--model", tiny_qa_dir, "--train-file", squad_files["v1-train"],
               "--validation-file", squad_files["v1-validation"], "--output-dir", out, "--max-steps", "1",
               "--batch-size", "4", "--max-seq-length", "128", "--doc-stride", "32", "--max-query-length", "32",
               "--set", "data.eval_before_training=true") == 0
    printed = capsys.readouterr().out
    assert "before fine-tuning: exact_match=" in printed and "after fine-tuning" in printed
    evals = [r for r in read_jsonl(out / "train_log.jsonl") if r.get("eval")]
    assert [r["step"] for r in evals] == [0, 1] and evals[0]["before_training"] is True

    only = tmp_path / "train-only"
    assert cli("finetune", "squad", "--model", tiny_qa_dir, "--train-file", squad_files["v1-train"], "--output-dir", only,
               "--max-steps", "1", "--batch-size", "4", "--max-seq-length", "128", "--doc-stride", "32",
               "--max-query-length", "32") == 0
    assert "without evaluation" in capsys.readouterr().out
    assert (only / "model.safetensors").is_file() and not (only / "eval_results.json").exists()


@pytest.mark.slow
def test_quickstart_recipe_lands_for_every_seed(tmp_path, capsys):
    """The README's command for seeds 1-5 (about 10 minutes): bundled MiniLM, synthetic data written into each run
    folder, from F1 near 0 before training to F1 >= 90 after, for every seed."""
    out = tmp_path / "quickstart"
    assert cli("finetune", "squad", "--recipe", "quickstart", "--output-dir", out, "--overwrite-output-dir",
               "--seeds", "1,2,3,4,5") == 0
    printed = capsys.readouterr().out
    assert printed.count("before fine-tuning") == 5 and printed.count("after fine-tuning") == 5
    scores = {}
    for seed in range(1, 6):
        run = out / f"seed-{seed}"
        evals = [r for r in read_jsonl(run / "train_log.jsonl") if r.get("eval")]
        before, after = evals[0], evals[-1]
        assert before["before_training"] and before["f1"] < 20
        assert (run / "data" / "synthetic-v1-train.json").is_file()
        assert read_json(run / "eval_results.json")["f1"] == after["f1"]
        scores[seed] = after["f1"]
    assert min(scores.values()) >= 90, scores
    assert read_json(out / "seeds_summary.json")["metrics"]["f1"]["min"] == min(scores.values())

"""NER through the real CLI on a tiny model: the transformers pipeline agrees with `predict ner`, eval on both
backends, long sentences as windows, --seeds, an exact resume, and --pooling refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bert_tasks.cli import main
from conftest import write_conll

TEXT = "Ada met Grace Hopper in New York, then Alan went to Paris and Berlin."


def finetune(model: Path, files: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "ner", "--model", str(model), "--train-file", str(files / "train.conll"),
            "--validation-file", str(files / "dev.conll"), "--output-dir", str(out), "--batch-size", "4",
            "--learning-rate", "3e-3", "--mixed-precision", "no", "--set", "train.num_threads=1", *extra]


@pytest.fixture(scope="module")
def trained(tiny_model, ner_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ner-run") / "run"
    assert main(finetune(tiny_model, ner_files, out, "--max-steps", "30")) == 0
    return out


def test_the_folder_is_a_transformers_token_classifier_and_its_pipeline_agrees(trained, capsys):
    import transformers

    config = json.loads((trained / "config.json").read_text())
    assert config["architectures"] == ["BertForTokenClassification"]
    assert config["id2label"]["0"] == "O" and set(config["label2id"]) == {"O", "B-LOC", "I-LOC", "B-PER", "I-PER"}
    pipe = transformers.pipeline("token-classification", model=str(trained), aggregation_strategy="first")
    expected = pipe(TEXT)
    capsys.readouterr()
    assert main(["predict", "ner", "--model", str(trained), "--text", TEXT, "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)["entities"]
    assert expected, "the pipeline found no entity: the comparison would be empty"
    assert [(e["entity_group"], e["start"], e["end"]) for e in ours] == \
        [(e["entity_group"], e["start"], e["end"]) for e in expected]
    assert [e["score"] for e in ours] == pytest.approx([float(e["score"]) for e in expected], abs=1e-4)
    assert all(e["word"] == TEXT[e["start"]:e["end"]] for e in ours)


def test_eval_on_both_backends_gives_the_training_scores(trained, ner_files, tmp_path, capsys):
    trained_scores = json.loads((trained / "eval_results.json").read_text())
    for backend in ("scratch", "hf"):
        out = tmp_path / backend
        assert main(["eval", "ner", "--model", str(trained), "--validation-file", str(ner_files / "dev.conll"),
                     "--backend", backend, "--output-dir", str(out)]) == 0
        scores = json.loads((out / "eval_results.json").read_text())
        assert scores["overall_f1"] == pytest.approx(trained_scores["overall_f1"], abs=1e-6)
        per_type = {k: v for k, v in scores.items() if k.startswith(("PER_", "LOC_"))}
        assert len(per_type) == 8 and per_type == {k: trained_scores[k] for k in per_type}  # the same tags, counts
        rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
        assert len(rows) == 12 and set(rows[0]) == {"idx", "tokens", "predictions", "labels"}
        assert all(len(r["tokens"]) == len(r["predictions"]) == len(r["labels"]) for r in rows)
    assert "overall_f1=" in capsys.readouterr().out
    card = (trained / "README.md").read_text()
    assert "token-classification" in card and "dev.conll, 12 sentences" in card


def test_a_long_sentence_is_windows_and_every_word_is_scored(trained, tmp_path):
    words = ["the", "city"] * 60 + ["Ada", "met", "Alan"]
    tags = ["O"] * 120 + ["B-PER", "O", "B-PER"]
    dev = write_conll(tmp_path / "long.conll", [(words, tags)])
    out = tmp_path / "long"
    assert main(["eval", "ner", "--model", str(trained), "--validation-file", str(dev), "--max-seq-length", "16",
                 "--doc-stride", "4", "--output-dir", str(out)]) == 0
    row = json.loads((out / "eval_predictions.jsonl").read_text())
    assert len(row["predictions"]) == len(words) and row["labels"] == tags
    scores = json.loads((out / "eval_results.json").read_text())
    assert scores["PER_number"] == 2  # both entities at the end were scored, from later windows


def test_seeds_run_through_the_one_template(tiny_model, ner_files, tmp_path):
    out = tmp_path / "seeds"
    assert main(finetune(tiny_model, ner_files, out, "--max-steps", "3", "--seeds", "1,2")) == 0
    summary = json.loads((out / "seeds_summary.json").read_text())
    f1 = [json.loads((out / f"seed-{s}" / "eval_results.json").read_text())["overall_f1"] for s in (1, 2)]
    assert summary["metrics"]["overall_f1"]["values"] == f1 and summary["metrics"]["overall_f1"]["seeds"] == [1, 2]


def test_a_run_resumes_exactly(tiny_model, ner_files, tmp_path):
    steps = ["--max-steps", "4", "--save-steps", "2"]
    assert main(finetune(tiny_model, ner_files, tmp_path / "whole", *steps)) == 0
    assert main(finetune(tiny_model, ner_files, tmp_path / "cut", *steps)) == 0
    cut = tmp_path / "cut"
    for name in ("model.safetensors", "eval_results.json", "train_results.json"):
        (cut / name).unlink()
    shutil.rmtree(cut / "checkpoints" / "step-4")
    assert main(finetune(tiny_model, ner_files, cut, *steps, "--resume-from", "latest")) == 0
    whole, resumed = load_file(tmp_path / "whole" / "model.safetensors"), load_file(cut / "model.safetensors")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_pooling_is_refused_in_one_line(tiny_model, ner_files, tmp_path, capsys):
    assert main(finetune(tiny_model, ner_files, tmp_path / "p", "--set", "model.pooling=mean")) == 2
    err = capsys.readouterr().err
    assert "model.pooling mean is for sentence classification" in err and not (tmp_path / "p").exists()
    assert main(finetune(tiny_model, ner_files, tmp_path / "p", "--pooling", "mean")) == 2


def test_the_grid_chooses_on_overall_f1(tiny_model, ner_files, tmp_path):
    out = tmp_path / "grid"
    assert main(finetune(tiny_model, ner_files, out, "--max-steps", "4", "--grid", "train.learning_rate=3e-3,1e-5")) == 0
    summary = json.loads((out / "grid_summary.json").read_text())
    assert summary["main_metric"] == "overall_f1"
    f1 = {}
    for point in summary["points"]:
        results = [json.loads(p.read_text()) for p in Path(point["folder"]).glob("**/eval_results.json")]
        f1[point["point"]] = results[0]["overall_f1"]
        assert point["main_metric_median"] == f1[point["point"]]
    assert summary["best"]["point"] == max(f1, key=f1.get)


def test_label_all_tokens_trains_and_is_recorded(tiny_model, ner_files, tmp_path):
    import yaml

    out = tmp_path / "all"
    assert main(finetune(tiny_model, ner_files, out, "--max-steps", "2", "--label-all-tokens")) == 0
    data = yaml.safe_load((out / "recipe.yaml").read_text())["data"]
    assert data["label_all_tokens"] is True and data["tag_scheme"] == "BIO"
    assert data["labels"] == "O,B-LOC,I-LOC,B-PER,I-PER"

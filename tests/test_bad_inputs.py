"""The bad-input corpus: hostile files and flags across every input surface, generated here.

Every case must end with exit code 2 and exactly one line on stderr that names the
file (and the record or line where there is one) and the reason, with no traceback
and no output folder left behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from bert_tasks.cli import main

# --------------------------------------------------------------------------- fixtures


def squad_json(**overrides) -> dict:
    qa = {"id": "q1", "question": "Who wrote it?", "answers": [{"text": "Ada", "answer_start": 0}]}
    qa.update(overrides.pop("qa", {}))
    paragraph = {"context": "Ada wrote the first program.", "qas": [qa]}
    paragraph.update(overrides.pop("paragraph", {}))
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [paragraph]}], **overrides}


def sst2_dir(root: Path, train: str | None = None, dev: str | None = None) -> Path:
    folder = root / "SST-2"
    folder.mkdir(parents=True, exist_ok=True)
    good = "sentence\tlabel\na fine film\t1\na dull film\t0\n"
    (folder / "train.tsv").write_text(train if train is not None else good)
    if dev is not False:
        (folder / "dev.tsv").write_text(dev if dev is not None else good)
    return folder


@dataclass
class Case:
    name: str
    build: Callable[[Path, Path], list[str]]  # (tmp_path, tiny_model) -> argv; the run's output is tmp_path / "out"
    expect: tuple[str, ...]  # substrings of the one error line (file names are checked by basename)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def squad_case(name: str, content: str | bytes, *expect: str) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        bad = write(tmp / "bad-squad.json", content)
        good = write(tmp / "good.json", json.dumps(squad_json()))
        return ["finetune", "squad", "--model", str(model), "--train-file", str(bad), "--validation-file", str(good),
                "--output-dir", str(tmp / "out"), "--max-steps", "1"]

    return Case(f"squad-{name}", build, ("bad-squad.json", *expect))


def glue_case(name: str, *expect: str, train: str | None = None, dev=None, task: str = "sst2") -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        folder = sst2_dir(tmp / "glue", train=train, dev=dev)
        return ["finetune", "glue", "--task", task, "--data-dir", str(folder), "--model", str(model),
                "--output-dir", str(tmp / "out"), "--max-steps", "1"]

    return Case(f"glue-{name}", build, expect)


def corpus_case(name: str, content: str | bytes, *expect: str, suffix: str = ".txt", extra: tuple[str, ...] = ()) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        corpus = write(tmp / f"corpus{suffix}", content)
        return ["pretrain", "mlm", "--train-file", str(corpus), "--preset", "tiny", "--output-dir", str(tmp / "out"),
                "--max-steps", "1", *extra]

    return Case(f"corpus-{name}", build, (f"corpus{suffix}", *expect) if not extra else expect)


def recipe_case(name: str, text: str, *expect: str) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        recipe = write(tmp / "bad-recipe.yaml", text)
        return ["finetune", "glue", "--recipe", str(recipe), "--data-dir", str(sst2_dir(tmp / "glue")),
                "--model", str(model), "--output-dir", str(tmp / "out")]

    return Case(f"recipe-{name}", build, ("bad-recipe.yaml", *expect))


def checkpoint_case(name: str, spoil: Callable[[Path], None], *expect: str) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        import shutil

        broken = tmp / "broken-model"
        shutil.copytree(model, broken)
        spoil(broken)
        return ["finetune", "glue", "--task", "sst2", "--data-dir", str(sst2_dir(tmp / "glue")), "--model", str(broken),
                "--output-dir", str(tmp / "out"), "--max-steps", "1"]

    return Case(f"checkpoint-{name}", build, ("broken-model", *expect))


def edit_config(**changes):
    def spoil(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))

    return spoil


def truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


def good_recipe(**train) -> str:
    lines = "\n".join(f"  {k}: {v}" for k, v in {"max_steps": 1, **train}.items())
    return f"task: sst2\ndata:\n  task: sst2\n  dataset: glue\ntrain:\n{lines}\n"


def cli_case(name: str, argv: Callable[[Path, Path], list[str]], *expect: str) -> Case:
    return Case(f"cli-{name}", argv, expect)


def not_empty_output(tmp: Path, model: Path) -> list[str]:
    write(tmp / "out" / "precious.txt", "keep me")
    return ["finetune", "glue", "--task", "sst2", "--data-dir", str(sst2_dir(tmp / "glue")), "--model", str(model),
            "--output-dir", str(tmp / "out")]


MB_CONTEXT = "word " * 210_000

CASES = [
    # ---- SQuAD JSON
    squad_case("truncated", json.dumps(squad_json())[:40]),
    squad_case("top-level-list", "[1, 2, 3]"),
    squad_case("no-data-key", json.dumps({"version": "1.1"}), "data"),
    squad_case("missing-qas", json.dumps(squad_json(paragraph={"qas": None})).replace('"qas": null, ', ""), "qas"),
    squad_case("missing-context", json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}), "context"),
    squad_case("missing-answers", json.dumps(squad_json()).replace('"answers"', '"answerz"'), "q1", "answers"),
    squad_case("answer-start-out-of-range", json.dumps(squad_json(qa={"answers": [{"text": "Ada", "answer_start": 999}]})), "q1"),
    squad_case("answer-start-other-text", json.dumps(squad_json(qa={"answers": [{"text": "Ada", "answer_start": 4}]})), "q1"),
    squad_case("duplicate-ids", json.dumps({"data": [{"title": "T", "paragraphs": [
        {"context": "Ada wrote it.", "qas": [{"id": "dup", "question": "Who?", "answers": [{"text": "Ada", "answer_start": 0}]}] * 2}]}]}), "dup"),
    squad_case("empty-question", json.dumps(squad_json(qa={"question": "  "})), "q1", "question"),
    squad_case("empty-context", json.dumps(squad_json(paragraph={"context": ""})), "context"),
    squad_case("question-not-a-string", json.dumps(squad_json(qa={"question": 42})), "q1", "question"),
    squad_case("invalid-utf8", b'{"data": [{"title": "\xff\xfe bad"}]}'),
    squad_case("nan", json.dumps(squad_json()).replace('"answer_start": 0', '"answer_start": NaN')),
    squad_case("1mb-context-misaligned", json.dumps(squad_json(paragraph={"context": MB_CONTEXT},
                                                                qa={"answers": [{"text": "Ada", "answer_start": 1_000_000}]})), "q1"),
    Case("squad-unknown-dataset", lambda tmp, model: ["finetune", "squad", "--model", str(model), "--dataset", "squad3",
                                                       "--output-dir", str(tmp / "out")], ("squad3",)),
    Case("squad-missing-file", lambda tmp, model: ["finetune", "squad", "--model", str(model), "--train-file",
                                                    str(tmp / "nowhere.json"), "--output-dir", str(tmp / "out")], ("nowhere.json",)),
    # ---- GLUE TSV
    glue_case("wrong-column-count", "train.tsv", "line 2", train="sentence\tlabel\na fine film\t1\textra\n"),
    glue_case("label-not-in-task", "train.tsv", "line 3", train="sentence\tlabel\na fine film\t1\na dull film\t2\n"),
    glue_case("float-label", "train.tsv", "line 2", train="sentence\tlabel\na fine film\t0.5\n"),
    glue_case("missing-header", "train.tsv", train="a fine film\t1\na dull film\t0\n"),
    glue_case("empty-file", "train.tsv", train=""),
    glue_case("empty-sentence", "train.tsv", "line 2", train="sentence\tlabel\n \t1\n"),
    glue_case("missing-dev-file", "dev.tsv", dev=False),
    glue_case("unknown-task", "sst3", task="sst3"),
    glue_case("path-traversal-task", "unknown GLUE task", task="../../escape"),
    # ---- text corpus
    corpus_case("empty", "\n\n   \n"),
    corpus_case("binary", bytes(range(256)) * 8),
    corpus_case("not-utf8", "good line\nbad \xff line\n".encode("latin-1"), "line 2"),
    corpus_case("jsonl-no-text-field", '{"body": "hello"}\n', "line 1", suffix=".jsonl"),
    corpus_case("jsonl-invalid-line", '{"text": "fine"}\n{"text": broken\n', "line 2", suffix=".jsonl"),
    corpus_case("vocab-too-small", "some words here\n" * 20, "vocab", extra=("--vocab-size", "10")),
    corpus_case("seq-longer-than-positions", "some words here\n" * 20, "max_seq_length", extra=("--max-seq-length", "1024")),
    # ---- recipe YAML
    recipe_case("unknown-key", good_recipe(epochz=3), "train.epochz"),
    recipe_case("wrong-type", good_recipe(batch_size="large"), "train.batch_size"),
    recipe_case("python-tag", good_recipe() + "x: !!python/object/apply:os.system ['echo pwned']\n", "YAML"),
    recipe_case("invalid-syntax", "task: sst2\ntrain: [1, 2\n", "YAML"),
    recipe_case("top-level-list", "- task\n- sst2\n", "mapping"),
    recipe_case("impossible-value", good_recipe(mixed_precision="fp8"), "mixed_precision"),
    Case("recipe-unknown-name", lambda tmp, model: ["finetune", "glue", "--recipe", "glue-sst3"], ("glue-sst3",)),
    # ---- checkpoint folder
    checkpoint_case("missing-config", lambda f: (f / "config.json").unlink(), "config.json"),
    checkpoint_case("missing-weights", lambda f: (f / "model.safetensors").unlink(), "model.safetensors"),
    checkpoint_case("truncated-safetensors", truncate_weights, "safetensors"),
    checkpoint_case("shape-mismatch", edit_config(hidden_size=64, num_attention_heads=4), "shape mismatch"),
    checkpoint_case("not-bert", edit_config(model_type="gpt2"), "gpt2"),
    checkpoint_case("config-not-json", lambda f: (f / "config.json").write_text("{not json"), "config.json"),
    # ---- CLI
    cli_case("missing-required-flag", lambda tmp, model: ["eval", "glue", "--task", "sst2"], "--model"),
    cli_case("output-not-empty", not_empty_output, "not empty"),
    cli_case("bad-override", lambda tmp, model: ["finetune", "glue", "--task", "sst2", "--set", "train.epochs"], "key=value"),
    cli_case("unknown-precision", lambda tmp, model: ["finetune", "glue", "--task", "sst2", "--data-dir", str(sst2_dir(tmp / "g")),
                                                       "--mixed-precision", "fp8", "--output-dir", str(tmp / "out")], "mixed_precision"),
    cli_case("unpad-on-hf-backend", lambda tmp, model: ["finetune", "glue", "--task", "sst2", "--data-dir", str(sst2_dir(tmp / "g")),
                                                         "--backend", "hf", "--unpad", "--output-dir", str(tmp / "out")], "backend scratch"),
    cli_case("unpad-with-compile", lambda tmp, model: ["finetune", "glue", "--task", "sst2", "--data-dir", str(sst2_dir(tmp / "g")),
                                                        "--unpad", "--compile", "--output-dir", str(tmp / "out")], "cannot be combined"),
    cli_case("predict-missing-model", lambda tmp, model: ["predict", "glue", "--model", str(tmp / "no-model"), "--text", "hi"], "no-model"),
]

# --------------------------------------------------------------------------- the fresh-machine issue's cases


def glue_run(tmp: Path, model: Path, *extra: str, task: str = "sst2", folder: Path | None = None) -> list[str]:
    folder = folder or sst2_dir(tmp / "glue")
    return ["finetune", "glue", "--task", task, "--data-dir", str(folder), "--model", str(model),
            "--output-dir", str(tmp / "out"), "--max-steps", "1", *extra]


def stsb_dir(root: Path, train: str | None = None, dev: str | None = None) -> Path:
    folder = root / "STS-B"
    folder.mkdir(parents=True, exist_ok=True)
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    row = "{i}\tg\tf\t2012\t{i}\ts\ts\ta cat sat\ta cat sat down\t{score}\n"
    good = head + row.format(i=0, score="1.5") + row.format(i=1, score="4.2")
    (folder / "train.tsv").write_text(train if train is not None else good)
    (folder / "dev.tsv").write_text(dev if dev is not None else good)
    return folder


def stsb_case(name: str, *expect: str, train: str | None = None, dev: str | None = None, extra: tuple = ()) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        return glue_run(tmp, model, *extra, task="stsb", folder=stsb_dir(tmp / "glue", train=train, dev=dev))

    return Case(f"glue-{name}", build, expect)


STSB_HEAD = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


def stsb_rows(*scores: str) -> str:
    return STSB_HEAD + "".join(f"{i}\tg\tf\t2012\t{i}\ts\ts\ta cat sat\ta cat sat down\t{s}\n" for i, s in enumerate(scores))


def squad_v2_case(name: str, qa: dict, *expect: str) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        bad = write(tmp / "bad-squad.json", json.dumps(squad_json(qa=qa, version="v2.0")))
        good = write(tmp / "good.json", json.dumps(squad_json()))
        return ["finetune", "squad", "--model", str(model), "--train-file", str(bad), "--validation-file", str(good),
                "--output-dir", str(tmp / "out"), "--max-steps", "1", "--version-2-with-negative"]

    return Case(f"squad-{name}", build, ("bad-squad.json", *expect))


def small_vocab_model(tmp: Path, model: Path) -> list[str]:
    """A consistent checkpoint whose vocabulary (99) is smaller than its tokenizer's (30522)."""
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp / "small-vocab-model"
    save_pretrained(BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                         intermediate_size=37, max_position_embeddings=128)),
                    folder, tokenizer=AutoTokenizer.from_pretrained(model))
    return glue_run(tmp, folder)


def trained_classifier(tmp: Path, model: Path, task: str) -> Path:
    """A fine-tuned-looking classifier folder: a sequence-classification head and the recipe.yaml of a `task` run."""
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertForSequenceClassification
    from bert_tasks.tasks.glue.spec import id2label

    torch.manual_seed(0)
    folder = tmp / f"{task}-model"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
                        max_position_embeddings=128, id2label=id2label(task, names="hub"))
    save_pretrained(BertForSequenceClassification(config), folder, tokenizer=AutoTokenizer.from_pretrained(model))
    write(folder / "recipe.yaml", f"task: {task}\ndata:\n  task: {task}\n  max_seq_length: 64\n")
    return folder


def other_task_checkpoint(tmp: Path, model: Path) -> list[str]:
    """An output folder whose checkpoint a SQuAD run saved, resumed by a GLUE run."""
    step = tmp / "out" / "checkpoints" / "step-1"
    write(step / "trainer_state.json", json.dumps({"global_step": 1, "epoch": 0, "micro_in_epoch": 1}))
    write(step / "run_config.json", json.dumps({"task": "squad", "data": {}, "train": {}}))
    return glue_run(tmp, model, "--resume-from", "latest")


def garbage_bin(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04garbage that is no pickle of tensors")


def under_a_file(tmp: Path, model: Path) -> list[str]:
    write(tmp / "a-file", "not a folder")
    return [*glue_run(tmp, model)[:-4], "--output-dir", str(tmp / "a-file" / "run"), "--max-steps", "1"]


CASES += [
    # the cases the fresh-machine issue lists
    cli_case("output-under-a-file", under_a_file, "a-file", "is a file"),
    cli_case("output-unwritable", lambda tmp, model: [*glue_run(tmp, model)[:-4], "--output-dir", "/proc/bert-tasks-run",
                                                       "--max-steps", "1"], "/proc/bert-tasks-run", "cannot"),
    stsb_case("stsb-one-row-dev", "dev.tsv", "undefined", dev=stsb_rows("2.5")),
    cli_case("vocab-smaller-than-tokenizer", small_vocab_model, "small-vocab-model", "30522", "99"),
    cli_case("resume-another-tasks-checkpoint", other_task_checkpoint, "step-1", "'squad'", "'sst2'"),
    stsb_case("stsb-score-above-5", "train.tsv", "line 3", "range 0-5", train=stsb_rows("1.0", "5.5")),
    stsb_case("stsb-score-negative", "dev.tsv", "line 2", "range 0-5", dev=stsb_rows("-0.5", "2.0")),
    squad_v2_case("is-impossible-string", {"is_impossible": "True", "answers": []}, "q1", "is_impossible"),
    squad_v2_case("is-impossible-with-answers", {"is_impossible": True}, "q1", "has answers"),
    recipe_case("empty-file", "", "empty"),
    cli_case("predict-squad-with-a-classifier", lambda tmp, model: [
        "predict", "squad", "--model", str(trained_classifier(tmp, model, "sst2")), "--question", "Who?", "--context", "Ada."],
        "sst2-model", "BertForSequenceClassification", "question-answering"),
    cli_case("predict-glue-text-twice", lambda tmp, model: [
        "predict", "glue", "--model", str(trained_classifier(tmp, model, "sst2")), "--text", "good", "--text", "bad"],
        "--text twice", "predict glue --help"),
    checkpoint_case("garbage-pytorch-bin", garbage_bin, "pytorch_model.bin", "safetensors"),
    cli_case("resume-latest-without-checkpoint", lambda tmp, model: glue_run(tmp, model, "--resume-from", "latest"),
             "checkpoints", "no complete checkpoint"),
    cli_case("unknown-option-names-its-command", lambda tmp, model: glue_run(tmp, model, "--epochz", "3"),
             "--epochz", "bert-tasks finetune glue --help"),
    # more of our own, one per value that used to pass unchecked
    cli_case("negative-seed", lambda tmp, model: glue_run(tmp, model, "--seed", "-1"), "seed"),
    cli_case("eval-steps-zero", lambda tmp, model: glue_run(tmp, model, "--eval-steps", "0"), "eval_steps"),
    cli_case("save-steps-zero", lambda tmp, model: glue_run(tmp, model, "--save-steps", "0"), "save_steps"),
    cli_case("fp16-on-cpu", lambda tmp, model: glue_run(tmp, model, "--mixed-precision", "fp16"), "fp16", "GPU"),
    cli_case("unknown-tracker", lambda tmp, model: glue_run(tmp, model, "--report-to", "mlflw"), "report_to"),
    cli_case("tracker-not-installed", lambda tmp, model: glue_run(tmp, model, "--report-to", "wandb"), "wandb", "pip install"),
    cli_case("longer-than-positions", lambda tmp, model: glue_run(tmp, model, "--max-seq-length", "256"), "256", "128 positions"),
    cli_case("output-is-the-model", lambda tmp, model: [*glue_run(tmp, model)[:-4], "--output-dir", str(model),
                                                        "--overwrite-output-dir", "--max-steps", "1"], "input", "overwrite"),
    cli_case("output-holds-the-data", lambda tmp, model: [*glue_run(tmp, model, folder=sst2_dir(tmp / "out" / "glue"))[:-4],
                                                          "--output-dir", str(tmp / "out"), "--overwrite-output-dir",
                                                          "--max-steps", "1"], "SST-2", "overwrite"),
    cli_case("repeated-flag-pair", lambda tmp, model: glue_run(tmp, model, "--unpad", "--no-unpad"), "--unpad and --no-unpad"),
    cli_case("predict-pair-task-without-pair", lambda tmp, model: [
        "predict", "glue", "--model", str(trained_classifier(tmp, model, "mrpc")), "--text", "a cat sat"], "mrpc", "--text-pair"),
    cli_case("predict-single-task-with-pair", lambda tmp, model: [
        "predict", "glue", "--model", str(trained_classifier(tmp, model, "sst2")), "--text", "a", "--text-pair", "b"],
        "sst2", "drop --text-pair"),
    cli_case("eval-squad-with-a-classifier", lambda tmp, model: [
        "eval", "squad", "--model", str(trained_classifier(tmp, model, "sst2")),
        "--validation-file", str(write(tmp / "dev.json", json.dumps(squad_json())))], "BertForSequenceClassification"),
    cli_case("set-not-a-number", lambda tmp, model: glue_run(tmp, model, "--set", "train.learning_rate=fast"), "learning_rate"),
    cli_case("set-section-to-a-value", lambda tmp, model: glue_run(tmp, model, "--set", "train=5"), "train"),
    cli_case("set-unknown-section", lambda tmp, model: glue_run(tmp, model, "--set", "optimizer.lr=1"), "optimizer"),
    stsb_case("stsb-one-eval-sample", "max_eval_samples", extra=("--max-eval-samples", "1")),
    recipe_case("no-task-key", "train:\n  epochs: 1\n", "task"),
    recipe_case("task-and-data-task-disagree", "task: sst2\ndata:\n  task: mrpc\n", "sst2", "mrpc"),
    checkpoint_case("dropout-above-one", edit_config(hidden_dropout_prob=1.5), "hidden_dropout_prob"),
    checkpoint_case("zero-layers", edit_config(num_hidden_layers=0), "num_hidden_layers"),
    checkpoint_case("pad-id-outside-vocab", edit_config(pad_token_id=40000), "pad_token_id"),
    squad_case("v2-question-in-v1-mode", json.dumps(squad_json(qa={"is_impossible": True, "answers": []})), "q1",
               "--version-2-with-negative"),
    squad_case("answer-text-empty", json.dumps(squad_json(qa={"answers": [{"text": "", "answer_start": 0}]})), "q1", "empty"),
    corpus_case("mlm-probability-above-one", "some words here\n" * 20, "mlm_probability", extra=("--mlm-probability", "1.5")),
    corpus_case("validation-split-zero", "some words here\n" * 20, "validation_split", extra=("--validation-split", "0")),
    cli_case("unknown-preset", lambda tmp, model: ["pretrain", "mlm", "--train-file", str(write(tmp / "c.txt", "some words\n" * 20)),
                                                    "--preset", "huge", "--output-dir", str(tmp / "out")], "huge", "preset"),
    corpus_case("missing-tokenizer", "some words here\n" * 20, "no-tokenizer", extra=("--tokenizer", "/no-tokenizer")),
    cli_case("plot-without-a-log", lambda tmp, model: ["plot", str(write(tmp / "empty-run" / "x.txt", "").parent)], "empty-run"),
    cli_case("recipes-cp-over-a-file", lambda tmp, model: ["recipes", "cp", "glue-sst2", str(write(tmp / "mine.yaml", "x"))],
             "mine.yaml", "--force"),
    cli_case("attention-layer-out-of-range", lambda tmp, model: ["attention", "--model", str(model), "--text", "hi",
                                                                  "--layer", "9", "--out", str(tmp / "out" / "a.png")], "layer 9"),
]

# --------------------------------------------------------------------------- the pooling issue's cases


def pooled_classifier(tmp: Path, model: Path, pooling: str) -> Path:
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    folder = tmp / f"{pooling}-model"
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
                        max_position_embeddings=128, id2label={0: "negative", 1: "positive"}, pooling=pooling)
    save_pretrained(BertForSequenceClassification(config), folder, tokenizer=AutoTokenizer.from_pretrained(model))
    return folder


SST2_ONE_CLASS = "sentence\tlabel\na fine film\t1\na good film\t1\n"

CASES += [
    cli_case("pooling-unknown", lambda tmp, model: glue_run(tmp, model, "--pooling", "sum"), "model.pooling", "sum"),
    cli_case("attention-score-unknown", lambda tmp, model: glue_run(tmp, model, "--pooling", "attention",
                                                                    "--attention-score", "cosine"), "attention_score", "cosine"),
    cli_case("pooling-for-squad", lambda tmp, model: ["finetune", "squad", "--recipe", "quickstart", "--model", str(model),
                                                      "--output-dir", str(tmp / "out"), "--set", "model.pooling=mean"],
             "model.pooling", "squad"),
    cli_case("pooling-weights-of-a-mean-head", lambda tmp, model: [
        "attention", "--model", str(pooled_classifier(tmp, model, "mean")), "--text", "hi", "--pooling-weights",
        "--out", str(tmp / "out" / "p.png")], "config.json", "pools by mean"),
    cli_case("pooling-weights-with-a-layer", lambda tmp, model: [
        "attention", "--model", str(pooled_classifier(tmp, model, "attention")), "--text", "hi", "--pooling-weights",
        "--layer", "0", "--out", str(tmp / "out" / "p.png")], "--layer"),
    stsb_case("class-weights-on-regression", "class_weights", "regression", extra=("--class-weights", "auto")),
    cli_case("class-weights-wrong-count", lambda tmp, model: glue_run(tmp, model, "--class-weights", "negative=2"),
             "--class-weights", "missing: positive"),
    cli_case("class-weights-unknown-label", lambda tmp, model: glue_run(tmp, model, "--class-weights", "negative=1,happy=2"),
             "'happy'", "negative, positive"),
    cli_case("class-weights-zero", lambda tmp, model: glue_run(tmp, model, "--class-weights", "negative=0,positive=1"),
             "positive number", "'0'"),
    cli_case("class-weights-twice", lambda tmp, model: glue_run(tmp, model, "--class-weights", "negative=1,0=2,positive=1"),
             "given twice"),
    cli_case("class-weights-not-a-pair", lambda tmp, model: glue_run(tmp, model, "--class-weights", "balanced"),
             "'balanced'", "auto"),
    cli_case("class-weights-auto-a-class-never-seen", lambda tmp, model: glue_run(
        tmp, model, "--class-weights", "auto", folder=sst2_dir(tmp / "glue", train=SST2_ONE_CLASS)),
        "class_weights auto", "negative never occurs"),
]


# --------------------------------------------------------------------------- silent garbage and hangs (issue 28)


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def model_without_tokenizer(tmp: Path, model: Path) -> list[str]:
    """config.json and the weights only: how people often copy a checkpoint."""
    folder = tmp / "bare-model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model / name).read_bytes())
    return glue_run(tmp, folder)


def weights_as(tmp: Path, model: Path, spoil) -> Path:
    """A copy of the tiny model whose safetensors file holds ``spoil(name, tensor)`` instead."""
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp / "spoiled-model"
    shutil.copytree(model, folder)
    state = load_file(folder / "model.safetensors")
    save_file({k: spoil(k, v) for k, v in state.items()}, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def integer_weights(tmp: Path, model: Path) -> list[str]:
    import torch

    folder = weights_as(tmp, model, lambda k, v: v.view(torch.int32) if k.endswith("query.weight") else v)
    return glue_run(tmp, folder)


def nan_classifier(tmp: Path, model: Path, command: str) -> list[str]:
    import torch
    from safetensors.torch import load_file, save_file

    folder = trained_classifier(tmp, model, "sst2")
    state = load_file(folder / "model.safetensors")
    state["classifier.weight"] = torch.full_like(state["classifier.weight"], float("nan"))
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    if command == "eval":
        return ["eval", "glue", "--model", str(folder), "--data-dir", str(sst2_dir(tmp / "glue")),
                "--output-dir", str(tmp / "out")]
    return ["predict", "glue", "--model", str(folder), "--text", "a fine film"]


def mlm_run(tmp: Path, *extra: str) -> list[str]:
    return ["pretrain", "mlm", "--preset", "tiny", "--output-dir", str(tmp / "out"), "--max-steps", "1", *extra]


def corpus(tmp: Path) -> Path:
    return write(tmp / "corpus.txt", "".join(f"document {i} has some words in it\n" for i in range(40)))


def glue_jsonl(tmp: Path, model: Path, record: str, idx: bool = False) -> list[str]:
    second = {**({"idx": 2} if idx else {}), "sentence": "a dull film", "label": 0}
    train = write(tmp / "train.jsonl", record + "\n" + json.dumps(second) + "\n")
    dev = write(tmp / "dev.jsonl", json.dumps({"sentence": "a fine film", "label": 1}) + "\n"
                + json.dumps({"sentence": "a dull film", "label": 0}) + "\n")
    return ["finetune", "glue", "--task", "sst2", "--train-file", str(train), "--validation-file", str(dev),
            "--model", str(model), "--output-dir", str(tmp / "out"), "--max-steps", "1"]


def tokenizer_config_list(folder: Path) -> None:
    (folder / "tokenizer_config.json").write_text("[1, 2, 3]")


def config_json(text: str):
    def spoil(folder: Path) -> None:
        (folder / "config.json").write_text(text)

    return spoil


def fifo_config(folder: Path) -> None:
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")


ALIAS_BOMB = "task: sst2\ntrain:\n  report_to: &a [[x, x, x, x, x, x, x, x, x]]\n" + "".join(
    f"  b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}]\n"
    for i in range(12))


CASES += [
    # the issue's own cases, through the real CLI
    cli_case("model-without-tokenizer", model_without_tokenizer, "bare-model", "no tokenizer", "--tokenizer"),
    cli_case(
        "mlm-train-file-fifo", lambda tmp, model: mlm_run(tmp, "--train-file", str(fifo(tmp / "pipe.txt"))),
        "pipe.txt", "FIFO"),
    cli_case("glue-train-file-fifo", lambda tmp, model: glue_run(tmp, model)[:4] + [
        "--train-file", str(fifo(tmp / "pipe.tsv")), "--validation-file", str(sst2_dir(tmp / "glue") / "dev.tsv"),
        "--model", str(model), "--output-dir", str(tmp / "out")], "pipe.tsv", "FIFO"),
    cli_case("glue-train-file-folder", lambda tmp, model: glue_run(tmp, model)[:4] + [
        "--train-file", str(sst2_dir(tmp / "glue")), "--validation-file", str(sst2_dir(tmp / "glue") / "dev.tsv"),
        "--model", str(model), "--output-dir", str(tmp / "out")], "SST-2", "is a folder"),
    cli_case("jsonl-idx-overflow", lambda tmp, model: glue_jsonl(
        tmp, model, json.dumps({"idx": 10**20, "sentence": "a fine film", "label": 1}), idx=True), "train.jsonl",
        "line 1", "out of range"),
    cli_case("jsonl-nested-too-deep", lambda tmp, model: glue_jsonl(tmp, model, "[" * 100_000 + "]" * 100_000),
             "train.jsonl", "line 1", "nested too deeply"),
    squad_case("nested-too-deep", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    Case("squad-zero-width-context", lambda tmp, model: [*squad_case("z", json.dumps(squad_json(
        paragraph={"context": "\u200b\u200b"}, qa={"answers": [{"text": "\u200b", "answer_start": 0}]}))).build(tmp, model),
        "--max-seq-length", "100", "--doc-stride", "16"], ("question q1", "no tokens")),
    squad_case("whitespace-answer", json.dumps(squad_json(paragraph={"context": "Ada wrote it ."},
                                                          qa={"answers": [{"text": " ", "answer_start": 3}]})),
               "q1", "whitespace-only"),
    checkpoint_case("hidden-size-float", edit_config(hidden_size=32.0), "config.json", "hidden_size"),
    checkpoint_case("layer-norm-eps-text", edit_config(layer_norm_eps="tiny"), "config.json", "layer_norm_eps"),
    checkpoint_case("type-vocab-size-zero", edit_config(type_vocab_size=0), "config.json", "type_vocab_size"),
    checkpoint_case("config-null", config_json("null"), "config.json", "not a JSON object"),
    checkpoint_case("config-list", config_json("[1, 2]"), "config.json", "not a JSON object"),
    checkpoint_case("config-fifo", fifo_config, "config.json", "FIFO"),
    checkpoint_case("tokenizer-config-list", tokenizer_config_list, "cannot load a tokenizer"),
    cli_case("same-train-file-twice", lambda tmp, model: mlm_run(
        tmp, "--train-file", str(corpus(tmp)), "--train-file", str(corpus(tmp))), "corpus.txt", "twice"),
    cli_case("integer-weights", integer_weights, "spoiled-model", "query.weight", "int32", "not as floats"),
    cli_case("nan-classifier-eval", lambda tmp, model: nan_classifier(tmp, model, "eval"), "classifier.weight", "NaN"),
    cli_case("nan-classifier-predict", lambda tmp, model: nan_classifier(tmp, model, "predict"), "classifier.weight",
             "NaN"),
    recipe_case("alias-bomb-in-report-to", ALIAS_BOMB, "report_to", "must be one of"),
    cli_case("seed-past-2-32", lambda tmp, model: glue_run(tmp, model, "--seeds", "18446744073709551616"), "2**32"),
    # more of our own
    cli_case("validation-file-is-a-train-file", lambda tmp, model: mlm_run(
        tmp, "--train-file", str(corpus(tmp)), "--validation-file", str(corpus(tmp))), "also a training file"),
    cli_case("mlm-train-file-folder", lambda tmp, model: mlm_run(tmp, "--train-file", str(tmp)), "is a folder"),
    cli_case("squad-train-file-fifo", lambda tmp, model: [
        "finetune", "squad", "--model", str(model), "--train-file", str(fifo(tmp / "pipe.json")),
        "--validation-file", str(write(tmp / "good.json", json.dumps(squad_json()))), "--output-dir", str(tmp / "out"),
        "--max-steps", "1"], "pipe.json", "FIFO"),
    cli_case("predict-squad-file-fifo", lambda tmp, model: [
        "predict", "squad", "--model", str(trained_squad(tmp, model)), "--file", str(fifo(tmp / "questions.jsonl"))],
        "questions.jsonl", "FIFO"),
    cli_case("eval-fp16-on-cpu", lambda tmp, model: [
        "eval", "glue", "--model", str(trained_classifier(tmp, model, "sst2")), "--data-dir", str(sst2_dir(tmp / "glue")),
        "--mixed-precision", "fp16", "--output-dir", str(tmp / "out")], "fp16", "CUDA"),
    cli_case("tokenizer-far-smaller-than-vocab", lambda tmp, model: glue_run(tmp, model, "--set",
             f"model.tokenizer={tiny_tokenizer(tmp)}"), "not this model's tokenizer"),
    cli_case("huge-value-is-cut", lambda tmp, model: glue_run(tmp, model, "--set", "train.seed=" + "9" * 100_000),
             "seed"),
]


def trained_squad(tmp: Path, model: Path) -> Path:
    """A folder with a question-answering head and the recipe.yaml of a SQuAD run."""
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    folder = tmp / "squad-model"
    save_pretrained(BertForQuestionAnswering(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                                        num_attention_heads=4, intermediate_size=37)),
                    folder, tokenizer=AutoTokenizer.from_pretrained(model))
    write(folder / "recipe.yaml", "task: squad\ndata:\n  max_seq_length: 64\n  doc_stride: 16\n")
    return folder


def tiny_tokenizer(tmp: Path) -> Path:
    """A real WordPiece tokenizer of 40 tokens: far fewer than the tiny model's 30522 rows."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", "a", "fine", "dull", "film"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp / "tiny-tokenizer"
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                            sep_token="[SEP]", mask_token="[MASK]").save_pretrained(folder)
    return folder


@pytest.mark.timeout(120)  # a hang (a FIFO read, a runaway error message) fails the case instead of the suite
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_one_clear_line_and_leaves_nothing(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)


def assert_one_clear_line(case: Case, tmp_path: Path, tiny_model: Path, capsys) -> None:
    """Exit 2, one ``error:`` line holding every expected fragment, no traceback, nothing new in the output folder
    (the other corpora, e.g. tests/test_bad_inputs_classify.py, run their cases through this too)."""
    argv = case.build(tmp_path, tiny_model)
    before = sorted(p.name for p in (tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else None
    code = main(argv)
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("WARNING", "INFO"))]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert len(lines[0]) <= 700, lines[0][:300]  # a value in a message is cut to a readable length
    for fragment in case.expect:
        assert fragment in lines[0], (fragment, lines[0])
    after = sorted(p.name for p in (tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else None
    assert after == before  # no new output folder, no partial files


def test_the_corpus_is_large_enough():
    surfaces = {case.name.split("-")[0] for case in CASES}
    assert len(CASES) >= 40 and surfaces == {"squad", "glue", "corpus", "recipe", "checkpoint", "cli"}


def test_debug_shows_the_traceback(tmp_path, tiny_model, capsys):
    with pytest.raises(Exception):
        main(["--debug", *CASES[0].build(tmp_path, tiny_model)])


def test_bom_and_a_1mb_context_are_accepted(tmp_path):
    import time

    from bert_tasks.tasks.squad.data import load_squad_examples

    data = squad_json(paragraph={"context": "Ada wrote it. " + MB_CONTEXT})
    path = write(tmp_path / "bom.json", b"\xef\xbb\xbf" + json.dumps(data).encode())
    start = time.monotonic()
    examples = load_squad_examples(str(path), version_2=False)
    assert len(examples) == 1 and len(examples[0]["context"]) > 1_000_000
    assert time.monotonic() - start < 30

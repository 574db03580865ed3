"""`bert-tasks pretrain mlm` end to end on generated text: output folder, overfitting, resume, checkpoints, bad input."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from bert_tasks.cli import main
from cli_args import with_options
from bert_tasks.tasks import resolve_recipe
from bert_tasks.tasks.mlm.masking import MaskingCollator
from bert_tasks.tasks.mlm.run import EpochPositionMasking

# a tiny model on short sequences: every run here takes seconds; one thread avoids contention on a busy CPU
FAST = ["--preset", "tiny", "--max-seq-length", "32", "--vocab-size", "120", "--set", "data.min_frequency=1",
        "--batch-size", "8", "--eval-batch-size", "16", "--set", "train.num_threads=1", "--seed", "7"]


SENTENCE = "kalo miten rasun vobel tidor quazen lomi tenra sunvo beltid"


def write_corpus(path, docs, repeat=1):
    path.write_text("\n".join(docs * repeat) + "\n", encoding="utf-8")
    return path


def run_cli(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 100-step run on a sentence repeated 200 times, with checkpoints at steps 50 and 100.

    Every token is given away by its neighbours, so the loss can fall far below the ~3 nats of
    guessing from token frequencies alone: what the model learns is context.
    """
    import datasets

    root = tmp_path_factory.mktemp("mlm_run")
    corpus = write_corpus(root / "corpus.txt", [SENTENCE], repeat=200)
    out = root / "run"
    args = ["pretrain", "mlm", "--train-file", corpus, "--validation-split", "0.05", "--output-dir", out,
            *with_options(FAST, "--batch-size", "16", "--learning-rate", "2e-3", "--max-steps", "100",
                          "--set", "train.warmup_steps=4", "--logging-steps", "5", "--eval-steps", "50", "--save-steps", "50")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", str(root / "cache"))
        assert run_cli(*args) == 0
    return {"out": out, "args": args, "corpus": corpus, "root": root}


def test_output_folder_loads_in_transformers_and_fills_masks(trained):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    out = trained["out"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "recipe.yaml", "README.md",
                 "train_results.json", "eval_results.json"):
        assert (out / name).is_file(), name
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ == "BertForMaskedLM"
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(out))
    fill = pipeline("fill-mask", model=str(out), device="cpu")
    predictions = fill(f"kalo miten {fill.tokenizer.mask_token} vobel")
    assert len(predictions) == 5 and all(p["token_str"] and 0 <= p["score"] <= 1 for p in predictions)


def test_tiny_model_overfits_and_reports_heldout_metrics(trained):
    out = trained["out"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if not r.get("eval")]
    assert losses[-1] < 0.5 * losses[0], losses
    evals = [r for r in log if r.get("eval")]
    assert [r["step"] for r in evals] == [50, 100]  # fit's evaluate callback, every eval_steps and at the end
    metrics = json.loads((out / "eval_results.json").read_text())
    assert {"eval_loss", "perplexity", "masked_accuracy", "eval_tokens", "eval_samples"} <= set(metrics)
    assert metrics["perplexity"] == pytest.approx(torch.tensor(metrics["eval_loss"]).exp().item(), rel=1e-5)
    assert metrics["masked_accuracy"] > 0.3  # the held-out text repeats the training text
    assert evals[-1]["eval_loss"] == pytest.approx(metrics["eval_loss"])


def test_resume_from_a_checkpoint_reproduces_the_uninterrupted_run(trained, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(trained["out"], copy)
    (copy / "model.safetensors").unlink()
    args = [str(a) for a in trained["args"]]
    args[args.index("--output-dir") + 1] = str(copy)
    assert run_cli(*args, "--resume-from", copy / "checkpoints" / "step-50") == 0
    output = capsys.readouterr()
    assert "trained a WordPiece" not in output.out  # the saved tokenizer is reused, not retrained
    assert "resumed from" in output.out + output.err
    original, resumed = load_file(trained["out"] / "model.safetensors"), load_file(copy / "model.safetensors")
    assert original.keys() == resumed.keys()
    for name in original:  # same data order and the same masks after the resume: the same weights
        torch.testing.assert_close(resumed[name], original[name], rtol=1e-5, atol=1e-6, msg=name)


def test_continue_pretraining_an_hf_checkpoint_without_mlm_head(trained, tokenizer, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertModel

    checkpoint = tmp_path / "encoder"
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=37, max_position_embeddings=40)
    BertModel(config).save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    out = tmp_path / "continued"
    assert run_cli("pretrain", "mlm", "--train-file", trained["corpus"], "--model", checkpoint, "--output-dir", out,
                   "--max-seq-length", "32", "--max-steps", "3", "--batch-size", "8",
                   "--set", "train.num_threads=1") == 0
    model = AutoModelForMaskedLM.from_pretrained(out)
    assert model.config.hidden_size == 32 and model.config.vocab_size == len(tokenizer)
    assert AutoTokenizer.from_pretrained(out).get_vocab() == tokenizer.get_vocab()  # the checkpoint's own tokenizer


def test_streaming_corpus_trains(trained, tmp_path, make_docs):
    validation = write_corpus(tmp_path / "valid.jsonl", [json.dumps({"text": d}) for d in make_docs(5, seed=9)])
    out = tmp_path / "streamed"
    assert run_cli("pretrain", "mlm", "--train-file", trained["corpus"], "--validation-file", validation, "--streaming",
                   "--output-dir", out, *FAST, "--max-steps", "2", "--whole-word-masking") == 0
    assert json.loads((out / "train_results.json").read_text())["global_step"] == 2
    assert json.loads((out / "eval_results.json").read_text())["eval_tokens"] > 0


def test_dry_run_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert run_cli("pretrain", "mlm", "--recipe", "mlm-tiny", "--train-file", tmp_path / "x.txt", "--output-dir", out,
                   "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "task: mlm" in printed and "preset: tiny" in printed and "would train task 'mlm'" in printed
    assert "dataset: null" in printed  # --train-file replaced the recipe's Hub dataset
    assert not out.exists()


@pytest.mark.parametrize("name", ["mlm-tiny", "mlm-small", "mlm-base"])
def test_packaged_recipes_validate(name):
    recipe = resolve_recipe(name, task="mlm")
    assert recipe.task == "mlm" and recipe.description and recipe.model.preset
    assert recipe.data.max_seq_length <= 512 and recipe.train.max_steps


@pytest.mark.parametrize(
    "case, extra, expected",
    [
        ("empty", [], "no text: every line is blank"),
        ("non_utf8", [], "not UTF-8 text"),
        ("ok", ["--vocab-size", "10"], "vocab_size 10 is too small"),
        ("ok", ["--vocab-size", "34"], "vocab_size 34 is too small"),  # passes the static check, not the corpus's alphabet
        ("ok", ["--max-seq-length", "1024"], "above the 512 positions"),
        ("ok", ["--model", "minilm"], "not both"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make_docs, case, extra, expected):
    corpus = tmp_path / "corpus.txt"
    if case == "empty":
        corpus.write_text("\n   \n\n", encoding="utf-8")
    elif case == "non_utf8":
        corpus.write_bytes("first line\n".encode() + b"caf\xe9 latin-1\n")
    else:
        write_corpus(corpus, make_docs(20))
    out = tmp_path / "out"
    options = [a for a in FAST if a not in ("--vocab-size", "120", "--max-seq-length", "32")]
    code = run_cli("pretrain", "mlm", "--train-file", corpus, "--output-dir", out, *options, *extra)
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1] and expected in errors[0], err
    assert "Traceback" not in err
    err = errors[0]
    if case == "non_utf8":
        assert "line 2" in err and str(corpus) in err
    if "34" not in extra:  # caught before the output folder is made
        assert not out.exists()


def test_training_masks_depend_on_seed_epoch_and_position_only(tokenizer, make_docs):
    features = [{"input_ids": tokenizer(d)["input_ids"][:24]} for d in make_docs(4, seed=1)]

    def masks(count, seed=5):
        masking = EpochPositionMasking(MaskingCollator(tokenizer, seed=0), seed=seed, num_examples=12, batch_size=4)
        masking.count = count
        return masking(features)["prediction_mask"]

    assert torch.equal(masks(4), masks(4))  # epoch 1, batch 1: the same masks whatever came before
    assert not torch.equal(masks(1), masks(4))  # the same position in another epoch: fresh masks
    assert not torch.equal(masks(1), masks(1, seed=6))
    masking = EpochPositionMasking(MaskingCollator(tokenizer, seed=0), seed=5, num_examples=12, batch_size=4)
    masking.resume_from({"epoch": 2, "micro_in_epoch": 1})
    assert masking.position() == (2, 1) and masking.count == 7

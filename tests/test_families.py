"""The BERT family through the real CLI: RoBERTa and XLM-RoBERTa (with a byte-level BPE tokenizer), ELECTRA and
DistilBERT (WordPiece) folders, tiny and random, fine-tune on GLUE and SQuAD and continue masked-LM pretraining in
our encoder, and what they write loads in transformers and its pipelines; encoders ours lacks (DeBERTa-v2,
ModernBERT) run with --backend hf, and the scratch backend refuses them in one line. Parity per head, both ways,
is in tests/test_checkpoint.py."""

from __future__ import annotations

import json
import random

import pytest
import torch
import transformers

from bert_tasks.checkpoint import load_pretrained, save_pretrained
from bert_tasks.cli import main
from bert_tasks.model import set_unpadding
from bert_tasks.tasks.squad.synthetic import write_synthetic_squad
from toy import FAMILY_SIZES as SIZES
from toy import FAMILY_WORDS as WORDS
from toy import tiny_checkpoint

FAST = ["--max-steps", "3", "--batch-size", "4", "--set", "train.num_threads=1"]
ROBERTAS = ("roberta", "xlm-roberta")
#: every family our encoder runs (electra: a discriminator folder, as google/electra-*-discriminator ships)
FAMILIES = ("roberta", "xlm-roberta", "electra", "distilbert")
CLASS_PREFIX = {"roberta": "Roberta", "xlm-roberta": "XLMRoberta", "electra": "Electra", "distilbert": "DistilBert"}


def run(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Tiny random checkpoints of each family, and the data every test trains on."""
    root = tmp_path_factory.mktemp("families")
    for model_type in (*FAMILIES, "electra-generator", "deberta-v2", "modernbert"):
        tiny_checkpoint(root / model_type, model_type)
    mrpc = root / "MRPC"
    mrpc.mkdir()
    rng = random.Random(0)
    sentence = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))  # noqa: E731
    for name in ("train.tsv", "dev.tsv"):
        (mrpc / name).write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                 + "".join(f"{i % 2}\t{i}\t{i + 50}\t{sentence()}\t{sentence()}\n" for i in range(12)))
    write_synthetic_squad(root / "train.json", n_articles=1, seed=1, version_2=False)
    write_synthetic_squad(root / "dev.json", n_articles=1, seed=2, version_2=False)
    write_synthetic_squad(root / "train-v2.json", n_articles=1, seed=1, version_2=True)
    (root / "corpus.txt").write_text("\n".join(sentence() + " " + sentence() for _ in range(120)) + "\n")
    return root


@pytest.mark.parametrize("family", FAMILIES)
def test_glue_run_loads_in_the_transformers_pipeline_and_predicts_the_same(folders, family, tmp_path, capsys):
    out = tmp_path / "mrpc"
    assert run("finetune", "glue", "--task", "mrpc", "--model", folders / family, "--data-dir", folders / "MRPC",
               "--output-dir", out, "--max-seq-length", "64", "--learning-rate", "1e-3", *FAST) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == family and config["architectures"] == [f"{CLASS_PREFIX[family]}ForSequenceClassification"]
    pipe = transformers.pipeline("text-classification", model=str(out), top_k=None)
    hf = {row["label"]: row["score"] for row in pipe({"text": "a red cat", "text_pair": "the big dog"})}
    capsys.readouterr()
    assert run("predict", "glue", "--model", out, "--text", "a red cat", "--text-pair", "the big dog", "--json") == 0
    ours = json.loads(capsys.readouterr().out)["probabilities"]
    assert hf.keys() == ours.keys() and all(abs(hf[k] - ours[k]) < 1e-5 for k in hf)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("version_2", [False, True])
def test_squad_runs_on_byte_level_bpe_and_loads_in_transformers(folders, family, version_2, tmp_path):
    out = tmp_path / "squad"
    train = folders / ("train-v2.json" if version_2 else "train.json")
    extra = ["--version-2-with-negative"] if version_2 else []
    assert run("finetune", "squad", "--model", folders / family, "--train-file", train, "--validation-file",
               train if version_2 else folders / "dev.json", "--output-dir", out, "--max-seq-length", "128",
               "--doc-stride", "32", *extra, *FAST) == 0
    results = json.loads((out / "eval_results.json").read_text())
    assert results["total"] > 0 and ("best_f1" in results) == version_2
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(out)
    assert type(model).__name__ == f"{CLASS_PREFIX[family]}ForQuestionAnswering"


@pytest.mark.parametrize("family", ["roberta", "xlm-roberta", "electra-generator", "distilbert"])
def test_masked_lm_continues_pretraining_and_the_fill_mask_pipeline_reads_it(folders, family, tmp_path):
    out = tmp_path / "mlm"
    assert run("pretrain", "mlm", "--model", folders / family, "--train-file", folders / "corpus.txt",
               "--output-dir", out, "--max-seq-length", "32", *FAST) == 0
    fill = transformers.pipeline("fill-mask", model=str(out))
    mask_token = fill.tokenizer.mask_token
    assert len(fill(f"a cat {mask_token} on the mat")) == 5
    hf = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    ours = load_pretrained(out, task="mlm").eval()
    pad = fill.tokenizer.pad_token_id
    ids = torch.tensor([[fill.tokenizer.cls_token_id, 40, 41, fill.tokenizer.mask_token_id, 42, fill.tokenizer.sep_token_id,
                         pad, pad]])
    mask = (ids != pad).long()
    with torch.no_grad():
        assert (hf(input_ids=ids, attention_mask=mask).logits - ours(ids, mask).logits).abs().max() <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_unpadding_and_a_new_pooling_keep_the_family(folders, family, tmp_path):
    model = load_pretrained(folders / family, task="glue", num_labels=3).eval()
    pad = model.config.pad_token_id
    ids = torch.tensor([[5, 40, 41, 42, 6, pad, pad], [5, 43, 44, 45, 46, 47, 6]])
    mask = (ids != pad).long()
    with torch.no_grad():
        padded = model(ids, mask).logits
        set_unpadding(model)
        assert torch.allclose(model(ids, mask).logits, padded, atol=1e-5)
    pooled = load_pretrained(folders / family, task="glue", num_labels=3, pooling={
        "pooling": "attention", "attention_score": "dot", "attention_query": "cls"}).eval()
    save_pretrained(pooled, tmp_path / "pooled")
    again = load_pretrained(tmp_path / "pooled", task="glue", trained_head=True).eval()
    assert again.config.model_type == family
    assert again.config.positions_from_padding == (family in ROBERTAS)
    with torch.no_grad():
        assert torch.equal(again(ids, mask).logits, pooled(ids, mask).logits)
    with pytest.raises(ValueError, match="bert-tasks-attention-pooling"):
        transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "pooled")
    theirs = load_pretrained(tmp_path / "pooled", task="glue", backend="hf", trained_head=True).eval()
    assert isinstance(theirs.bert, transformers.PreTrainedModel)  # transformers' encoder of the family, our pooling
    types = torch.zeros_like(ids)  # GLUE batches carry token types; DistilBERT's encoder must not get them
    with torch.no_grad():
        assert torch.allclose(theirs(ids, mask, types).logits, pooled(ids, mask, types).logits, atol=1e-5)
    save_pretrained(theirs, tmp_path / "from-hf")  # and saved back in the family's names, for either backend
    back = load_pretrained(tmp_path / "from-hf", task="glue", trained_head=True).eval()
    with torch.no_grad():
        assert torch.equal(back(ids, mask).logits, pooled(ids, mask).logits)


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_maps(folders, family, tmp_path):
    assert run("attention", "--model", folders / family, "--text", "a red cat sat", "--json",
               "--out", tmp_path / "a.png") == 0
    maps = json.loads((tmp_path / "a.json").read_text())
    assert maps["tokens"][0] in ("<s>", "[CLS]") and len(maps["weights"]) == SIZES["num_attention_heads"]
    rows = torch.tensor(maps["weights"]).sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_run_resumes_exactly(folders, family, tmp_path):
    from safetensors.torch import load_file

    def finetune(out, *extra):
        return run("finetune", "glue", "--task", "mrpc", "--model", folders / family, "--data-dir", folders / "MRPC",
                   "--output-dir", out, "--max-seq-length", "64", "--batch-size", "4", "--max-steps", "4",
                   "--save-steps", "2", "--set", "train.num_threads=1", *extra)

    assert finetune(tmp_path / "whole") == 0 and finetune(tmp_path / "cut") == 0
    cut = tmp_path / "cut"
    import shutil

    for name in ("model.safetensors", "eval_results.json", "train_results.json"):
        (cut / name).unlink()
    shutil.rmtree(cut / "checkpoints" / "step-4")
    assert finetune(cut, "--resume-from", "latest") == 0
    whole, resumed = load_file(tmp_path / "whole" / "model.safetensors"), load_file(cut / "model.safetensors")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)


@pytest.mark.parametrize("family", ["deberta-v2", "modernbert"])
def test_other_encoders_run_with_the_hf_backend(folders, family, tmp_path, capsys):
    glue, squad = tmp_path / "glue", tmp_path / "squad"
    assert run("finetune", "glue", "--task", "mrpc", "--model", folders / family, "--backend", "hf", "--data-dir",
               folders / "MRPC", "--output-dir", glue, "--max-seq-length", "64", *FAST) == 0
    assert json.loads((glue / "config.json").read_text())["model_type"] == family
    assert run("eval", "glue", "--task", "mrpc", "--model", glue, "--backend", "hf", "--data-dir", folders / "MRPC") == 0
    assert run("finetune", "squad", "--model", folders / family, "--backend", "hf", "--train-file", folders / "train.json",
               "--validation-file", folders / "dev.json", "--output-dir", squad, "--max-seq-length", "128",
               "--doc-stride", "32", *FAST) == 0
    capsys.readouterr()
    assert run("finetune", "glue", "--task", "mrpc", "--model", folders / family, "--data-dir", folders / "MRPC",
               "--output-dir", tmp_path / "scratch", *FAST) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"model_type '{family}'" in err[0] and "--backend hf" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "scratch").exists()


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_the_compiled_model_matches_transformers(folders, family):
    """torch.compile over the whole model (positions after padding, projections and all) keeps parity."""
    from bert_tasks.training.compiled import compile_failed, compile_model

    hf = transformers.AutoModel.from_pretrained(folders / family).eval()
    ours = load_pretrained(folders / family).eval()
    compile_model(ours, "model")
    pad = ours.config.pad_token_id
    ids = torch.tensor([[5, 40, 41, 42, 6, pad, pad], [5, 43, 44, 45, 46, 47, 6]])
    mask = (ids != pad).long()
    with torch.no_grad():
        got = ours(ids, mask).last_hidden_state
    assert not compile_failed(ours)
    with torch.no_grad():
        assert (hf(input_ids=ids, attention_mask=mask).last_hidden_state - got).abs().max() <= 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_ner_run_loads_in_the_token_classification_pipeline(folders, family, tmp_path, capsys):
    """The token head's rows in every family: the folder is transformers' <Family>ForTokenClassification; on a
    WordPiece tokenizer the pipeline's entities are ours (a byte-level BPE one gets the pipeline's space heuristic,
    so there only the run and the class are checked)."""
    rows = [(["Ada", "went", "to", "Paris"], ["B-PER", "O", "O", "B-LOC"]), (["Alan", "saw", "Berlin"], ["B-PER", "O", "B-LOC"])]
    conll = "".join("".join(f"{w} {t}\n" for w, t in zip(*row)) + "\n" for row in rows * 6)
    (tmp_path / "train.conll").write_text(conll)
    out = tmp_path / "ner"
    assert run("finetune", "ner", "--model", folders / family, "--train-file", tmp_path / "train.conll",
               "--validation-file", tmp_path / "train.conll", "--output-dir", out, "--learning-rate", "1e-3",
               "--mixed-precision", "no", *FAST) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == family and config["architectures"] == [f"{CLASS_PREFIX[family]}ForTokenClassification"]
    if family in ROBERTAS:
        return
    text = "Ada went to Paris, then Alan saw Berlin."
    expected = transformers.pipeline("token-classification", model=str(out), aggregation_strategy="first")(text)
    capsys.readouterr()
    assert run("predict", "ner", "--model", out, "--text", text, "--json") == 0
    ours = json.loads(capsys.readouterr().out)["entities"]
    assert [(e["entity_group"], e["start"], e["end"]) for e in ours] == [(e["entity_group"], e["start"], e["end"]) for e in expected]
    assert all(abs(a["score"] - float(b["score"])) < 1e-4 for a, b in zip(ours, expected))

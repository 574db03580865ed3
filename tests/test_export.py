"""`bert-tasks export`: every trained head to ONNX, ONNX Runtime equal to PyTorch (1e-4) at shapes the trace never
saw, int8 checked on dev labels (and refused past --max-drop, writing nothing), and `predict` on an export folder
giving PyTorch's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import torch  # noqa: E402

from bert_tasks.cli import main  # noqa: E402

SIZES = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=128)
NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
#: name -> (model class, config extras, recipe.yaml)
HEADS = {
    "sst2": ("BertForSequenceClassification", {"id2label": {0: "negative", 1: "positive"}},
             "task: sst2\ndata:\n  task: sst2\n  max_seq_length: 64\n"),
    "sst2-attention": ("BertForSequenceClassification", {"id2label": {0: "negative", 1: "positive"},
                                                        "pooling": "attention", "attention_score": "general"},
                       "task: sst2\ndata:\n  task: sst2\n  max_seq_length: 64\n"),
    "sst2-mean": ("BertForSequenceClassification", {"id2label": {0: "negative", 1: "positive"}, "pooling": "mean"},
                  "task: sst2\ndata:\n  task: sst2\n"),
    "stsb": ("BertForSequenceClassification", {"id2label": {0: "LABEL_0"}}, "task: stsb\ndata:\n  task: stsb\n"),
    "squad": ("BertForQuestionAnswering", {}, "task: squad\ndata: {}\n"),
    "ner": ("BertForTokenClassification", {"id2label": NER_LABELS}, "task: ner\ndata: {}\n"),
    "mlm": ("BertForMaskedLM", {}, "task: mlm\ndata: {}\n"),
    "reviews": ("BertForSequenceClassification", {"id2label": {0: "neg", 1: "neu", 2: "pos"}},
                "task: classify\ndata: {}\n"),
}


def trained_folder(root: Path, tokenizer_dir: Path, name: str) -> Path:
    """A trained-looking folder of ``name``'s head (random weights: the graph, not the training, is under test)."""
    import bert_tasks.model.heads as model_module
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig

    cls_name, extra, recipe = HEADS[name]
    torch.manual_seed(0)
    folder = root / name
    model = getattr(model_module, cls_name)(BertConfig(**SIZES, **extra))
    save_pretrained(model, folder, tokenizer=AutoTokenizer.from_pretrained(tokenizer_dir))
    (folder / "recipe.yaml").write_text(recipe)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_model) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trained")
    return {name: trained_folder(root, tiny_model, name) for name in HEADS}


def export(folder: Path, out: Path, *extra: str) -> dict:
    assert main(["export", str(folder), "--output-dir", str(out), *extra]) == 0
    return json.loads((out / "export_report.json").read_text())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(HEADS))
def test_every_head_exports_and_onnx_runtime_matches_pytorch(name, folders, tmp_path, capsys):
    from bert_tasks.checkpoint import load_pretrained
    from bert_tasks.checkpoint.onnx import load_export
    from bert_tasks.export.run import trained_head

    report = export(folders[name], tmp_path / "onnx")
    assert "exported" in capsys.readouterr().out
    assert report["max_abs_diff_fp32"] <= 1e-4 and report["opset"] == 17 and report["probe_batches"] >= 8
    assert set(report["versions"]) == {"bert_tasks", "torch", "onnx", "onnxruntime"}
    for file in ("model.onnx", "config.json", "tokenizer.json", "recipe.yaml", "export_report.json"):
        assert (tmp_path / "onnx" / file).is_file(), file
    # dynamic axes: a batch of 5 and 37 tokens, both never traced, with padding and two segments
    head = trained_head(folders[name])
    labels = len(HEADS[name][1].get("id2label", {})) or None
    torch_model = load_pretrained(folders[name], task=head.name, num_labels=labels, trained_head=True).eval()
    onnx_model = load_export(tmp_path / "onnx")
    ids = torch.randint(1000, 2000, (5, 37))
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    mask[3, 5:] = 0
    types = torch.zeros_like(ids)
    types[:, 25:] = 1
    with torch.no_grad():
        ours, theirs = torch_model(ids, mask, types), onnx_model(ids, mask, types)
    for key in ("logits", "start_logits", "end_logits", "pooling_weights"):
        if getattr(ours, key, None) is not None:
            assert getattr(theirs, key).shape == getattr(ours, key).shape, key
            assert torch.allclose(getattr(theirs, key), getattr(ours, key), atol=1e-4), key


@pytest.mark.timeout(300)
def test_int8_on_dev_labels_records_both_metrics(folders, tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(
        ["a fine film", "a dull film", "good actors", "a long plot", "music", "it was awful, truly"])))
    report = export(folders["sst2"], tmp_path / "onnx", "--quantize", "int8", "--validation-file", str(dev))
    assert (tmp_path / "onnx" / "model.int8.onnx").is_file()
    assert report["metric"] == "accuracy" and set(report["metrics"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    assert report["metrics"]["pytorch"] == report["metrics"]["onnx_fp32"]
    assert report["parity"]["dev"] <= 1e-4
    assert 0 <= report["int8"]["agreement_with_fp32"] <= 1 and "drop_points" in report["int8"]
    assert report["files"]["model.int8.onnx"] < report["files"]["model.onnx"]
    assert "per output channel" in report["int8"]["recipe"]


def test_int8_keeps_the_embeddings_fp32_and_scales_each_weight_column(folders, tmp_path):
    """The recipe that kept SQuAD's F1 (one scale over the word embeddings cost it 11 points): no Gather reads an
    int8 table, every MatMul with a constant weight became MatMulInteger with one zero point per output column."""
    import onnx

    export(folders["sst2"], tmp_path / "onnx", "--quantize", "int8")
    graph = onnx.load(str(tmp_path / "onnx" / "model.int8.onnx")).graph
    tables = {t.name: t for t in graph.initializer}
    gathered = [tables[n.input[0]] for n in graph.node if n.op_type == "Gather" and n.input[0] in tables]
    assert gathered and all(t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2 for t in gathered)
    integer = [n for n in graph.node if n.op_type == "MatMulInteger"]
    left_fp32 = [n.name for n in graph.node if n.op_type == "MatMul" and any(i in tables for i in n.input)]
    assert integer and not left_fp32, left_fp32
    for node in integer:
        weight, zero_point = tables[node.input[1]], tables[node.input[3]]
        assert weight.data_type == onnx.TensorProto.INT8 and list(zero_point.dims) == [weight.dims[1]]


def test_int8_past_max_drop_fails_in_one_line_and_writes_nothing(folders, tmp_path, capsys, monkeypatch):
    """A "quantized" graph whose classifier is negated loses every dev example its fp32 twin gets right."""
    import onnx
    from onnx import numpy_helper

    import bert_tasks.export.run as run
    from bert_tasks.tasks.glue.inference import predict_text

    sentences = ["a fine film", "a dull film", "good actors", "a long plot"]
    labels = [int(predict_text(folders["sst2"], s)["label"] == "positive") for s in sentences]
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in zip(sentences, labels)))

    def negated(source, target):
        graph = onnx.load(str(source))
        for init in graph.graph.initializer:
            if init.name.startswith("model.classifier."):
                init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
        onnx.save(graph, str(target))

    monkeypatch.setattr(run, "quantize_int8", negated)
    code = main(["export", str(folders["sst2"]), "--output-dir", str(tmp_path / "onnx"), "--quantize", "int8",
                 "--validation-file", str(dev), "--max-drop", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "int8 loses 100.00 points of accuracy" in err[0], err
    assert not (tmp_path / "onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["dev.tsv"]  # no temporary folder left either


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["sst2", "sst2-attention"])
def test_predict_glue_on_an_export_folder_gives_pytorchs_json(name, folders, tmp_path, capsys):
    export(folders[name], tmp_path / "onnx")
    capsys.readouterr()
    results = []
    for model in (folders[name], tmp_path / "onnx"):
        assert main(["predict", "glue", "--model", str(model), "--text", "a gripping, funny film", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    ours, theirs = results
    assert ours["label"] == theirs["label"] and ours.keys() == theirs.keys()
    assert abs(ours["score"] - theirs["score"]) <= 1e-4
    for label, p in ours["probabilities"].items():
        assert abs(theirs["probabilities"][label] - p) <= 1e-4
    if "pooling_weights" in ours:
        assert ours["pooling_weights"]["tokens"] == theirs["pooling_weights"]["tokens"]
        assert max(abs(a - b) for a, b in zip(ours["pooling_weights"]["weights"],
                                              theirs["pooling_weights"]["weights"])) <= 1e-4


@pytest.mark.timeout(300)
def test_predict_squad_on_an_export_folder_gives_pytorchs_answer(folders, tmp_path, capsys):
    export(folders["squad"], tmp_path / "onnx")
    capsys.readouterr()
    results = []
    for model in (folders["squad"], tmp_path / "onnx"):
        assert main(["predict", "squad", "--model", str(model), "--question", "Who wrote the first program?",
                     "--context", "Ada Lovelace wrote the first program, long before computers.", "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    ours, theirs = results
    assert ours.keys() == theirs.keys() and ours["answer"] == theirs["answer"], (ours, theirs)
    for key, value in ours.items():
        if isinstance(value, float):
            assert abs(theirs[key] - value) <= 1e-4, key


def close(ours, theirs, where: str = "") -> None:
    """The same JSON, floats within 1e-4."""
    if isinstance(ours, float):
        assert abs(ours - theirs) <= 1e-4, where
    elif isinstance(ours, dict):
        assert ours.keys() == theirs.keys(), where
        for key in ours:
            close(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            close(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, where


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name, command", [("reviews", ["predict", "classify", "--text", "the battery died"]),
                                           ("ner", ["predict", "ner", "--text", "Ada Lovelace was born in London."])])
def test_predict_classify_and_ner_on_an_export_folder_give_pytorchs_json(name, command, folders, tmp_path, capsys):
    export(folders[name], tmp_path / "onnx")
    capsys.readouterr()
    results = []
    for model in (folders[name], tmp_path / "onnx"):
        assert main([*command, "--model", str(model), "--json"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    close(*results)


def test_a_folders_own_dev_texts_join_the_probes(folders, tmp_path):
    """NER's eval_predictions.jsonl keeps each sentence's words: they are probed too (GLUE's keeps ids only)."""
    import shutil

    folder = tmp_path / "ner"
    shutil.copytree(folders["ner"], folder)
    rows = [{"idx": i, "tokens": ["Ada", "went", "to", "Paris"][: 2 + i % 3], "predictions": ["O"], "labels": ["O"]}
            for i in range(11)]
    (folder / "eval_predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"idx": 11, "tok')
    report = export(folder, tmp_path / "onnx")
    assert report["probe_texts_from_folder"] == 11 and report["max_abs_diff_fp32"] <= 1e-4
    plain = export(folders["sst2"], tmp_path / "plain")
    assert plain["probe_texts_from_folder"] == 0 and report["probe_batches"] == plain["probe_batches"] + 2


@pytest.mark.timeout(300)
@pytest.mark.parametrize("family", ["roberta", "distilbert", "electra"])
def test_every_family_exports_at_parity(family, tmp_path):
    """RoBERTa counts positions after padding (a cumsum in the graph), DistilBERT has no token types (the graph's
    third input is gone), ELECTRA projects smaller embeddings up: ONNX Runtime still equals PyTorch."""
    from toy import tiny_checkpoint

    from bert_tasks.checkpoint import load_pretrained, load_tokenizer, save_pretrained
    from bert_tasks.checkpoint.onnx import load_export

    tiny_checkpoint(tmp_path / "base", family)
    torch.manual_seed(0)
    model = load_pretrained(tmp_path / "base", task="glue", num_labels=3)
    save_pretrained(model, tmp_path / "trained", tokenizer=load_tokenizer(str(tmp_path / "base")))
    report = export(tmp_path / "trained", tmp_path / "onnx")
    assert report["max_abs_diff_fp32"] <= 1e-4
    onnx_model = load_export(tmp_path / "onnx")
    assert ("token_type_ids" in onnx_model.input_names) == (family != "distilbert")
    ids = torch.randint(5, 200, (3, 19))
    mask = torch.ones_like(ids)
    mask[2, 9:] = 0
    ids[2, 9:] = model.config.pad_token_id
    with torch.no_grad():
        assert torch.allclose(onnx_model(ids, mask).logits, model.eval()(ids, mask).logits, atol=1e-4)

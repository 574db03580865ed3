"""The bad-input corpus of ``bert-tasks export`` (and predict on an export folder): each case one line.

Run through :func:`test_bad_inputs.assert_one_clear_line`: exit 2, one ``error:`` line naming file and reason,
no traceback, nothing written (the export goes to ``out/onnx``, so ``out`` must hold after what it held before).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from test_bad_inputs import Case, assert_one_clear_line, trained_classifier, write

pytest.importorskip("onnxruntime")


def export_argv(folder: Path, tmp: Path, *extra: str) -> list[str]:
    return ["export", str(folder), "--output-dir", str(tmp / "out" / "onnx"), *extra]


def sst2(tmp: Path, model: Path) -> Path:
    return trained_classifier(tmp, model, "sst2")


def an_export(tmp: Path, model: Path, task: str = "sst2") -> Path:
    from bert_tasks.export import export_folder

    folder = trained_classifier(tmp, model, task)
    export_folder(folder, tmp / f"{task}-onnx")
    return tmp / f"{task}-onnx"


def mlm_folder(tmp: Path, model: Path) -> Path:
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig
    from bert_tasks.model.heads import BertForMaskedLM

    torch.manual_seed(0)
    folder = tmp / "mlm-model"
    save_pretrained(BertForMaskedLM(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                               num_attention_heads=4, intermediate_size=37, max_position_embeddings=128)),
                    folder, tokenizer=AutoTokenizer.from_pretrained(model))
    write(folder / "recipe.yaml", "task: mlm\ndata: {}\n")
    return folder


def not_empty(tmp: Path, model: Path) -> list[str]:
    write(tmp / "out" / "onnx" / "precious.txt", "keep me")
    return export_argv(sst2(tmp, model), tmp)


def ner_export_for_predict_glue(tmp: Path, model: Path) -> list[str]:
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.export import export_folder
    from bert_tasks.model import BertConfig
    from bert_tasks.model.heads import BertForTokenClassification

    torch.manual_seed(0)
    folder = tmp / "ner-model"
    save_pretrained(BertForTokenClassification(BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=128, id2label={0: "O", 1: "B-PER"})), folder, tokenizer=AutoTokenizer.from_pretrained(model))
    write(folder / "recipe.yaml", "task: sst2\ndata:\n  task: sst2\n")  # a recipe that claims another head
    export_folder(folder, tmp / "ner-onnx")
    return ["predict", "glue", "--model", str(tmp / "ner-onnx"), "--text", "a fine film"]


def export_onnxruntime_cannot_run(tmp: Path, model: Path) -> list[str]:
    """An export whose model.onnx asks for opset 99, as a newer exporter's might: ONNX Runtime's refusal as one line
    (open_session's, which ``export --opset N`` also meets for an opset torch writes and ONNX Runtime cannot run;
    torch's tracer writes at most opset 20, so ``--opset 99`` stops at torch's refusal, the case above)."""
    import onnx
    from onnx import TensorProto, helper

    folder = an_export(tmp, model)
    node = helper.make_node("Identity", ["input_ids"], ["logits"])
    graph = helper.make_graph([node], "newer", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("logits", TensorProto.INT64, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 99)]), str(folder / "model.onnx"))
    return ["predict", "glue", "--model", str(folder), "--text", "a fine film"]


CASES = [
    Case("export-bare-encoder", lambda tmp, model: export_argv(model, tmp), ("tiny-model", "BertModel",
                                                                             "no trained head to export")),
    Case("export-opset-onnx-cannot-run", lambda tmp, model: export_argv(sst2(tmp, model), tmp, "--opset", "99"),
         ("opset 99",)),
    Case("export-opset-too-old", lambda tmp, model: export_argv(sst2(tmp, model), tmp, "--opset", "6"),
         ("--opset 6",)),
    Case("export-max-drop-negative", lambda tmp, model: export_argv(sst2(tmp, model), tmp, "--max-drop", "-1"),
         ("--max-drop", "-1")),
    Case("export-quantize-unknown", lambda tmp, model: export_argv(sst2(tmp, model), tmp, "--quantize", "int4"),
         ("--quantize int4", "int8")),
    Case("export-an-export-folder", lambda tmp, model: export_argv(an_export(tmp, model), tmp),
         ("sst2-onnx", "already an export folder")),
    Case("export-output-not-empty", not_empty, ("onnx", "not empty", "--overwrite-output-dir")),
    Case("export-validation-file-missing",
         lambda tmp, model: export_argv(sst2(tmp, model), tmp, "--validation-file", str(tmp / "nope.tsv")),
         ("nope.tsv", "does not exist")),
    Case("export-mlm-with-validation-file", lambda tmp, model: export_argv(
        mlm_folder(tmp, model), tmp, "--validation-file", str(write(tmp / "corpus.txt", "a b c\n"))),
        ("--validation-file", "masked-LM", "probe batches")),
    Case("eval-glue-on-an-export", lambda tmp, model: ["eval", "glue", "--model", str(an_export(tmp, model)),
                                                        "--validation-file", str(write(tmp / "dev.tsv", "sentence\tlabel\na\t1\n"))],
         ("sst2-onnx", "ONNX export folder", "predict takes it")),
    Case("export-missing-model", lambda tmp, model: export_argv(tmp / "no-such-run", tmp), ("no-such-run",)),
    Case("predict-glue-onnxruntime-cannot-run", export_onnxruntime_cannot_run,
         ("model.onnx", "onnxruntime", "cannot run this graph")),
    Case("predict-glue-on-an-ner-export", ner_export_for_predict_glue, ("ner-onnx", "token-classification",
                                                                       "not a sequence-classification")),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_export_input_gets_one_clear_line_and_leaves_nothing(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_export_without_the_extra_names_the_pip_command(missing, tmp_path, tiny_model, capsys, monkeypatch):
    real = importlib.import_module

    def without(name, *args, **kwargs):
        if name == missing:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    import bert_tasks.checkpoint.onnx as runtime

    monkeypatch.setattr(runtime.importlib, "import_module", without)
    case = Case(f"export-without-{missing}", lambda tmp, model: export_argv(sst2(tmp, model), tmp),
                (f"{missing} is not installed", 'pip install "bert-tasks[export]"'))
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)

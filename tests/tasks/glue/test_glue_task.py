"""GlueTask: tokenization, batching, loss parity with transformers, predictions, scores and label checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks import family_of
from bert_tasks.protocol import Task
from bert_tasks.tasks.glue.config import GlueDataConfig
from bert_tasks.tasks.glue.data import load_glue_splits
from bert_tasks.tasks.glue.spec import TASK_NAMES
from bert_tasks.tasks.glue.task import GlueTask, check_label_mapping


def test_protocol_and_label_counts():
    task = GlueTask("mnli")
    assert isinstance(task, Task)
    assert (task.name, task.head, family_of(task.name).config_class) == ("mnli", "glue", GlueDataConfig)
    assert {t: GlueTask(t).num_labels(GlueDataConfig(task=t)) for t in TASK_NAMES} == {t: 1 if t == "stsb" else 3 if t == "mnli" else 2 for t in TASK_NAMES}
    with pytest.raises(BertTasksError, match="unknown GLUE task"):
        GlueTask("squad")


@pytest.fixture(scope="module")
def rte(glue_layout):
    root, _ = glue_layout
    cfg = GlueDataConfig(task="rte", data_dir=str(root), do_predict=True, max_seq_length=16)
    return cfg, load_glue_splits(cfg)


def test_preprocess_pairs_truncates_and_keeps_idx(rte, tokenizer):
    cfg, splits = rte
    features = GlueTask("rte").preprocess(splits["validation"], tokenizer, cfg, train=False)
    assert set(features.column_names) == {"idx", "labels", "input_ids", "attention_mask", "token_type_ids", "length"}
    assert features["idx"] == splits["validation"]["idx"] and features["labels"] == splits["validation"]["label"]
    lengths = [len(ids) for ids in features["input_ids"]]
    assert max(lengths) <= 16 and len(set(lengths)) > 1  # truncated, and not padded
    assert features["length"] == lengths
    first = features[0]
    a, b = splits["validation"][0]["text_a"], splits["validation"][0]["text_b"]
    assert first["input_ids"] == tokenizer(a, b, truncation=True, max_length=16)["input_ids"]
    assert 1 in first["token_type_ids"]  # the second sentence is segment B


def test_pad_to_max_length_and_unlabeled_test(rte, tokenizer):
    cfg, splits = rte
    padded_cfg = dataclasses.replace(cfg, pad_to_max_length=True, max_seq_length=24)
    task = GlueTask("rte")
    padded = task.preprocess(splits["test"], tokenizer, padded_cfg, train=False)
    assert {len(ids) for ids in padded["input_ids"]} == {24}
    assert padded["length"] == [sum(mask) for mask in padded["attention_mask"]]
    assert "labels" not in padded.column_names  # test labels are -1: nothing to score
    assert task.collate([padded[0], padded[1]])["input_ids"].shape == (2, 24)
    with pytest.raises(BertTasksError, match="unlabeled"):
        task.preprocess(splits["test"], tokenizer, cfg, train=True)


def test_fingerprint_follows_tokenizer_and_settings(rte, tokenizer):
    cfg, splits = rte
    task = GlueTask("rte")
    raw = splits["train"]
    base = task.preprocess(raw, tokenizer, cfg, train=True)._fingerprint
    assert task.preprocess(raw, tokenizer, cfg, train=True)._fingerprint == base
    assert task.preprocess(raw, tokenizer, dataclasses.replace(cfg, max_seq_length=32), train=True)._fingerprint != base
    assert task.preprocess(raw, tokenizer, dataclasses.replace(cfg, pad_to_max_length=True), train=True)._fingerprint != base
    other = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    other.add_tokens(["glueword"])
    assert task.preprocess(raw, other, cfg, train=True)._fingerprint != base


def test_collate_pads_to_a_multiple_of_eight():
    task = GlueTask("sst2")
    features = [
        {"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "token_type_ids": [0, 0, 0], "labels": 1, "idx": 5, "length": 3},
        {"input_ids": list(range(101, 110)), "attention_mask": [1] * 9, "token_type_ids": [0] * 4 + [1] * 5, "labels": 0, "idx": 6, "length": 9},
    ]
    batch = task.collate(features)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape == (2, 16) and batch["input_ids"].dtype == torch.long
    assert batch["input_ids"][0].tolist() == [101, 7, 102] + [0] * 13
    assert batch["attention_mask"].sum(1).tolist() == [3, 9]
    assert batch["token_type_ids"][1].tolist() == [0] * 4 + [1] * 5 + [0] * 7
    assert batch["labels"].tolist() == [1, 0] and batch["labels"].dtype == torch.long
    regression = GlueTask("stsb", pad_token_id=3).collate([{**features[0], "labels": 2.5}])
    assert regression["labels"].dtype == torch.float32 and regression["labels"].tolist() == [2.5]
    assert regression["input_ids"][0].tolist()[3:] == [3] * 5


@pytest.mark.parametrize("task_name, num_labels", [("mnli", 3), ("stsb", 1), ("sst2", 2)])
def test_loss_equals_transformers(task_name, num_labels):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, num_labels=num_labels)
    model = BertForSequenceClassification(config).eval()
    task = GlueTask(task_name)
    features = [
        {"input_ids": [2, 5, 9, 3], "attention_mask": [1] * 4, "token_type_ids": [0, 0, 1, 1], "labels": 2.7 if num_labels == 1 else 0},
        {"input_ids": [2, 8, 3], "attention_mask": [1] * 3, "token_type_ids": [0, 0, 0], "labels": 0.4 if num_labels == 1 else num_labels - 1},
        {"input_ids": [2, 11, 12, 13, 3], "attention_mask": [1] * 5, "token_type_ids": [0, 0, 0, 1, 1], "labels": 4.9 if num_labels == 1 else 1},
    ]
    batch = task.collate(features)
    with torch.no_grad():
        reference = model(**batch)
        ours = task.loss(model(**{k: v for k, v in batch.items() if k != "labels"}), batch)
    assert reference.loss.item() > 0
    torch.testing.assert_close(ours, reference.loss)
    assert task.loss({"logits": reference.logits}, batch).item() == pytest.approx(reference.loss.item(), rel=1e-6)


def test_postprocess_and_metrics():
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    predictions = GlueTask("mnli").postprocess(logits)
    assert predictions.tolist() == [1, 0, 2]
    assert GlueTask("mnli").metrics(predictions, [1, 0, 0]) == {"accuracy": pytest.approx(2 / 3)}
    scores = GlueTask("stsb").postprocess(np.array([[1.5], [4.0], [0.5]]))
    assert scores.shape == (3,) and scores.dtype == np.float32
    assert GlueTask("stsb").metrics(scores, np.array([1.0, 5.0, 0.0]))["spearmanr"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        GlueTask("stsb").postprocess(np.zeros((3, 2)))


@pytest.mark.parametrize(
    "id2label, task",
    [
        ({0: "negative", 1: "positive"}, "sst2"),
        ({"0": "LABEL_0", "1": "LABEL_1"}, "sst2"),  # from a config.json: string keys, generic names
        ({0: "ENTAILMENT", 1: "NEUTRAL", 2: "CONTRADICTION"}, "mnli"),
        ({0: "entailment", 1: "not_entailment"}, "rte"),
        ({0: "0", 1: "1"}, "cola"),
        ({0: "LABEL_0"}, "stsb"),
    ],
)
def test_matching_label_mappings_pass(id2label, task):
    check_label_mapping(id2label, task)


@pytest.mark.parametrize(
    "id2label, task, reason",
    [
        ({0: "entailment", 1: "neutral", 2: "contradiction"}, "sst2", "3 labels"),
        ({0: "contradiction", 1: "neutral", 2: "entailment"}, "mnli", "different order"),
        ({0: "positive", 1: "negative"}, "sst2", "different order"),
        ({0: "LABEL_1", 1: "LABEL_0"}, "rte", "not task rte's labels"),
        ({0: "negative", 1: "positive"}, "qnli", "not task qnli's labels"),
        ({0: "a", 1: "b"}, "stsb", "needs 1"),
        (None, "cola", "0 labels"),
    ],
)
def test_mismatched_label_mappings_are_errors(id2label, task, reason):
    with pytest.raises(BertTasksError, match=reason) as err:
        check_label_mapping(id2label, task, source="ckpt/config.json")
    assert err.value.one_line().startswith("ckpt/config.json: ")

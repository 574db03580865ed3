"""The token classification head: the same logits as transformers' own on the same weights, in BERT and in two
other families, and a saved folder that ``AutoModelForTokenClassification`` loads."""

from __future__ import annotations

import pytest
import torch
import transformers

from bert_tasks.checkpoint import load_pretrained, save_pretrained
from bert_tasks.model.heads import BertForTokenClassification, get_head

LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
SIZES = dict(vocab_size=97, hidden_size=28, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=61)


def hf_model(family: str):
    torch.manual_seed(0)
    labels = dict(id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    if family == "bert":
        return transformers.BertForTokenClassification(transformers.BertConfig(**SIZES, **labels))
    if family == "distilbert":
        return transformers.DistilBertForTokenClassification(transformers.DistilBertConfig(
            vocab_size=97, dim=28, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=61, **labels))
    if family == "roberta":
        return transformers.RobertaForTokenClassification(transformers.RobertaConfig(
            **{**SIZES, "max_position_embeddings": 63}, pad_token_id=1, type_vocab_size=1, **labels))
    return transformers.ElectraForTokenClassification(transformers.ElectraConfig(embedding_size=21, **SIZES, **labels))


@pytest.mark.parametrize("family", ["bert", "distilbert", "roberta", "electra"])
def test_logits_equal_transformers_and_the_folder_round_trips(family, tmp_path):
    reference = hf_model(family).eval()
    reference.save_pretrained(tmp_path / "hf")
    ours = load_pretrained(tmp_path / "hf", task="ner", num_labels=len(LABELS), trained_head=True).eval()
    assert isinstance(ours, BertForTokenClassification)
    ids = torch.randint(3, 97, (3, 13))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, attention_mask=mask).logits
    assert got.shape == (3, 13, len(LABELS))
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-5, rtol=1e-5)

    save_pretrained(ours, tmp_path / "ours")
    back = transformers.AutoModelForTokenClassification.from_pretrained(tmp_path / "ours").eval()
    assert type(back).__name__ == type(reference).__name__
    assert back.config.id2label == LABELS
    with torch.no_grad():
        torch.testing.assert_close(back(input_ids=ids, attention_mask=mask).logits[mask.bool()],
                                   expected[mask.bool()], atol=1e-5, rtol=1e-5)
    hf_backend = load_pretrained(tmp_path / "ours", task="ner", num_labels=len(LABELS), backend="hf",
                                 trained_head=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf_backend(input_ids=ids, attention_mask=mask).logits[mask.bool()],
                                   expected[mask.bool()], atol=1e-5, rtol=1e-5)


def test_the_dropout_is_transformers_choice():
    distil = load_from_config(transformers.DistilBertConfig(vocab_size=97, dim=28, n_layers=2, n_heads=4, hidden_dim=37,
                                                            dropout=0.3, seq_classif_dropout=0.2))
    bert = load_from_config(transformers.BertConfig(**SIZES, hidden_dropout_prob=0.3, classifier_dropout=0.25))
    assert distil.dropout.p == 0.3 and bert.dropout.p == 0.25


def load_from_config(config):
    from bert_tasks.checkpoint.load import build_config
    from bert_tasks.model.families import get_family

    family = get_family(config.model_type)
    return BertForTokenClassification(build_config(config.to_dict(), 3, family=family))


def test_the_head_row():
    head = get_head("ner")
    assert head.outputs == "token" and head.labels and not head.pools and not head.pooler
    assert head.auto_class == "AutoModelForTokenClassification" and head.pipeline_tag == "token-classification"

"""Pooling heads (bert_tasks/pooling.py) on tiny models with odd sizes: padding never counts, the weights are a
distribution over the real tokens, gradients reach every scoring parameter, a batch overfits, save/load is exact,
transformers either loads a model and predicts the same ([CLS] pooler) or refuses it naming the pooling, and the
transformers encoder (--backend hf) and the unpadded path give the scratch encoder's logits."""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from bert_tasks.checkpoint import POOLED_WEIGHTS, load_pretrained, save_pretrained
from bert_tasks.model import (POOLING_KEY, BertConfig, BertForSequenceClassification, pooled_model_type,
                              set_unpadding)
from bert_tasks.model.pooling import ATTENTION_SCORES, SCORES, AttentionPooling, Additive, Concat, General, max_pool, mean_pool

TINY = dict(vocab_size=97, hidden_size=28, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=40, id2label={0: "no", 1: "yes", 2: "maybe"})
#: every pooling a classifier can have; attention with each score and each query
POOLINGS = [dict(pooling="cls"), dict(pooling="mean"), dict(pooling="max")] + [
    dict(pooling="attention", attention_score=s, attention_query=q) for s in ATTENTION_SCORES for q in ("learned", "cls")]
IDS = [p["pooling"] + "".join(f"-{v}" for k, v in p.items() if k != "pooling") for p in POOLINGS]


def classifier(seed: int = 0, **pooling) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**TINY, **pooling)).eval()


def batch(seed: int = 1, lengths=(9, 5, 13)):
    """Token ids with the given real lengths, right-padded with 0 to the longest; first token a [CLS]-like 2."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    ids = torch.randint(3, TINY["vocab_size"], (len(lengths), T), generator=g)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    ids[:, 0] = 2
    return ids.masked_fill(~mask, 0), mask.long()


# --------------------------------------------------------------------------- the functions themselves


def test_mean_and_max_read_only_the_real_tokens():
    h = torch.randn(2, 6, 5)
    real = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    h_padded = h.clone()
    h_padded[0, 3:] = 1e4  # huge values in the padding must not show
    assert torch.allclose(mean_pool(h_padded, real)[0], h[0, :3].mean(0), atol=1e-6)
    assert torch.equal(max_pool(h_padded, real)[0], h[0, :3].amax(0))
    assert torch.allclose(mean_pool(h, real)[1], h[1].mean(0), atol=1e-6)
    nothing = torch.zeros(1, 6, dtype=torch.bool)  # an all-padding row gives zeros, not NaN
    assert torch.equal(mean_pool(h[:1], nothing), torch.zeros(1, 5)) and torch.equal(max_pool(h[:1], nothing), torch.zeros(1, 5))


def test_each_score_is_its_formula():
    """The four scoring functions of the lectures, against the formula written out by hand."""
    torch.manual_seed(0)
    C, q, h = 6, torch.randn(2, 6), torch.randn(2, 4, 6)
    additive, general, concat = Additive(C), General(C), Concat(C)
    by_hand = {
        "additive": torch.stack([torch.stack([additive.v.weight[0] @ torch.tanh(additive.w_q.weight @ q[b] + additive.w_h.weight @ h[b, t]
                                                                                  + additive.w_h.bias) for t in range(4)]) for b in range(2)]),
        "dot": torch.stack([torch.stack([q[b] @ h[b, t] for t in range(4)]) for b in range(2)]),
        "general": torch.stack([torch.stack([q[b] @ general.w.weight @ h[b, t] for t in range(4)]) for b in range(2)]),
        "concat": torch.stack([torch.stack([concat.v.weight[0] @ torch.tanh(concat.w.weight @ torch.cat([q[b], h[b, t]]) + concat.w.bias)
                                            for t in range(4)]) for b in range(2)]),
    }
    modules = {"additive": additive, "dot": SCORES["dot"](C), "general": general, "concat": concat}
    for name, module in modules.items():
        assert torch.allclose(module(q, h), by_hand[name], atol=1e-5), name
        assert "score(q, h)" in type(module).__doc__  # the formula is in the docstring


@pytest.mark.parametrize("score", ATTENTION_SCORES)
def test_attention_weights_are_a_softmax_over_the_real_tokens(score):
    torch.manual_seed(0)
    pool = AttentionPooling(7, score, "learned", std=0.5)
    h = torch.randn(3, 5, 7)
    real = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    pooled, weights = pool(h, real)
    assert torch.allclose(weights[:2].sum(-1), torch.ones(2), atol=1e-6)
    assert torch.equal(weights[1, 2:], torch.zeros(3)) and torch.equal(weights[2], torch.zeros(5))
    expected = torch.softmax(pool.score(pool.query.expand(3, -1), h)[1, :2], -1)
    assert torch.allclose(weights[1, :2], expected, atol=1e-6)
    assert torch.allclose(pooled[1], weights[1, :2] @ h[1, :2], atol=1e-6)
    assert torch.isfinite(pooled).all()


# --------------------------------------------------------------------------- inside the classifier


@pytest.mark.parametrize("pooling", POOLINGS, ids=IDS)
def test_padding_never_changes_the_prediction(pooling):
    """Each input alone (no padding) gives the logits it gets in a padded batch; attention weights sum to 1 and
    are 0 on padding."""
    model = classifier(**pooling)
    ids, mask = batch()
    with torch.no_grad():
        out = model(ids, mask)
        for row, length in enumerate(mask.sum(1).tolist()):
            alone = model(ids[row:row + 1, :length], mask[row:row + 1, :length])
            assert torch.allclose(alone.logits[0], out.logits[row], atol=1e-5), row
            if pooling["pooling"] == "attention":
                assert torch.allclose(alone.pooling_weights[0], out.pooling_weights[row, :length], atol=1e-5)
    if pooling["pooling"] == "attention":
        assert torch.allclose(out.pooling_weights.sum(-1), torch.ones(3), atol=1e-5)
        assert (out.pooling_weights[~mask.bool()] == 0).all()
    else:
        assert out.pooling_weights is None


@pytest.mark.parametrize("pooling", POOLINGS, ids=IDS)
def test_gradients_reach_the_pooling_and_the_encoder(pooling):
    model = classifier(**pooling).train()
    ids, mask = batch()
    loss = torch.nn.functional.cross_entropy(model(ids, mask).logits, torch.tensor([0, 1, 2]))
    loss.backward()
    own = dict(model.pooling.named_parameters()) if model.pooling is not None else {}
    if pooling.get("attention_score") == "dot" and pooling.get("attention_query") == "cls":
        assert own == {}  # qᵀh with q = h_[CLS]: nothing of its own to learn
    elif pooling["pooling"] == "attention":
        assert own and all(p.grad is not None and p.grad.abs().sum() > 0 for p in own.values()), own.keys()
    for name in ("bert.embeddings.word.weight", "classifier.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("bert.pooler"))


@pytest.mark.parametrize("pooling", POOLINGS, ids=IDS)
def test_a_batch_overfits(pooling):
    model = classifier(**pooling, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    ids, mask = batch(lengths=(9, 5, 13, 7, 11, 4))
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(ids, mask).logits, labels)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05, loss.item()
    assert torch.equal(model.eval()(ids, mask).logits.argmax(-1), labels)


def test_unpadded_encoder_gives_the_same_logits_and_weights():
    for pooling in (dict(pooling="mean"), dict(pooling="max"), dict(pooling="attention", attention_score="general")):
        model = classifier(**pooling)
        ids, mask = batch()
        with torch.no_grad():
            padded = model(ids, mask)
            set_unpadding(model)
            unpadded = model(ids, mask)
        assert torch.allclose(padded.logits, unpadded.logits, atol=1e-5), pooling
        if pooling["pooling"] == "attention":
            assert torch.allclose(padded.pooling_weights, unpadded.pooling_weights, atol=1e-5)


# --------------------------------------------------------------------------- saving and loading


@pytest.mark.parametrize("pooling", POOLINGS, ids=IDS)
def test_save_load_round_trip_is_exact(pooling, tmp_path):
    model = classifier(seed=3, **pooling)
    ids, mask = batch()
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path, task="glue", trained_head=True).eval()
    assert (loaded.config.pooling, loaded.config.attention_score, loaded.config.attention_query) == \
        (model.config.pooling, model.config.attention_score, model.config.attention_query)
    with torch.no_grad():
        assert torch.equal(model(ids, mask).logits, loaded(ids, mask).logits)
    config = json.loads((tmp_path / "config.json").read_text())
    if pooling["pooling"] == "cls":
        assert config["model_type"] == "bert" and POOLING_KEY not in config and (tmp_path / "model.safetensors").is_file()
    else:
        assert config["model_type"] == pooled_model_type(pooling["pooling"]) == f"bert-tasks-{pooling['pooling']}-pooling"
        assert config[POOLING_KEY]["pooling"] == pooling["pooling"]
        assert (tmp_path / POOLED_WEIGHTS).is_file() and not (tmp_path / "model.safetensors").exists()


def test_transformers_loads_a_cls_model_and_predicts_the_same(tmp_path):
    model = classifier(seed=4)
    ids, mask = batch()
    save_pretrained(model, tmp_path)
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(hf(input_ids=ids, attention_mask=mask).logits, model(ids, mask).logits, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_transformers_refuses_a_pooled_model_naming_the_pooling(pooling, tmp_path):
    """Never a silent load with a random [CLS] pooler: every Auto class and the pipeline refuse with the model
    type, which names the pooling; the BERT class itself finds no weights file it reads."""
    save_pretrained(classifier(pooling=pooling), tmp_path)
    for load in (transformers.AutoModelForSequenceClassification.from_pretrained, transformers.AutoModel.from_pretrained,
                 transformers.AutoConfig.from_pretrained,
                 lambda path: transformers.pipeline("text-classification", model=str(path), tokenizer="unused")):
        with pytest.raises(ValueError, match=f"bert-tasks-{pooling}-pooling"):
            load(tmp_path)
    with pytest.raises(OSError, match="no file named model.safetensors"):
        transformers.BertForSequenceClassification.from_pretrained(tmp_path)


def test_a_transformers_checkpoint_takes_a_new_pooling(tmp_path):
    """The other way: a plain transformers BERT (pooler included) fine-tunes under our pooling; its pooler is
    ignored, the encoder is its own, and the pooling starts fresh."""
    torch.manual_seed(5)
    hf_config = transformers.BertConfig(**{k: v for k, v in TINY.items() if k != "id2label"})
    hf = transformers.BertModel(hf_config).eval()
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path, task="glue", num_labels=2,
                           pooling={"pooling": "attention", "attention_score": "additive", "attention_query": "learned"}).eval()
    assert ours.bert.pooler is None and ours.pooling is not None
    ids, mask = batch()
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours.bert(ids, mask).last_hidden_state
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5)


@pytest.mark.parametrize("pooling", [dict(pooling="mean"), dict(pooling="attention", attention_score="concat", attention_query="cls")])
def test_hf_backend_under_our_pooling_matches_the_scratch_encoder(pooling, tmp_path):
    model = classifier(seed=6, **pooling)
    save_pretrained(model, tmp_path)
    hf = load_pretrained(tmp_path, task="glue", backend="hf", trained_head=True).eval()
    assert isinstance(hf.bert, transformers.BertModel)
    ids, mask = batch()
    with torch.no_grad():
        ours, theirs = model(ids, mask), hf(ids, mask)
    assert torch.allclose(ours.logits, theirs.logits, atol=1e-5)
    save_pretrained(hf, tmp_path / "again")  # and it saves back to the same folder layout
    again = load_pretrained(tmp_path / "again", task="glue", trained_head=True).eval()
    with torch.no_grad():
        assert torch.equal(again(ids, mask).logits, model(ids, mask).logits)


def test_pooling_text_and_bad_values():
    assert BertConfig(**TINY).pooling_spec.text() is None
    assert BertConfig(**TINY, pooling="mean").pooling_spec.text() == "mean over the real tokens"
    assert BertConfig(**TINY, pooling="attention", attention_score="dot").pooling_spec.text() == "attention (dot score, learned query)"
    for bad in (dict(pooling="sum"), dict(attention_score="cosine"), dict(attention_query="first")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BertConfig(**TINY, **bad)
    with pytest.raises(ValueError, match=POOLING_KEY):
        BertConfig.from_dict({**TINY, POOLING_KEY: {"pooling": "mean", "colour": "red"}})

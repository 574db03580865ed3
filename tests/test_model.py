"""Properties of the from-scratch encoder that do not need transformers."""

import pytest
import torch

from bert_tasks.model import PRESETS, BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=40)


def batch():
    ids = torch.randint(1, 99, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask


def test_attention_maps_are_row_stochastic_and_ignore_padding():
    model = BertModel(BertConfig(**TINY)).eval()
    ids, mask = batch()
    with torch.no_grad():
        out = model(ids, mask, output_attentions=True)
        plain = model(ids, mask)
    assert len(out.attentions) == TINY["num_hidden_layers"]
    for probs in out.attentions:
        assert probs.shape == (2, 4, 9, 9)
        assert torch.allclose(probs.sum(-1), torch.ones(2, 4, 9), atol=1e-6)
        assert probs[1, :, :, 5:].abs().max() == 0  # masked keys get exactly zero weight
    # the explicit-softmax path computes the same function as SDPA
    assert (out.last_hidden_state - plain.last_hidden_state).abs().max() < 1e-5


def test_padding_does_not_change_real_tokens():
    model = BertModel(BertConfig(**TINY)).eval()
    ids, mask = batch()
    with torch.no_grad():
        padded = model(ids[1:], mask[1:]).last_hidden_state[0, :5]
        alone = model(ids[1:, :5]).last_hidden_state[0]
    assert (padded - alone).abs().max() < 1e-5


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_have_turc_sizes(name):
    layers, hidden, heads = PRESETS[name]
    config = BertConfig.from_preset(name, vocab_size=99)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (layers, hidden, heads)
    assert config.intermediate_size == 4 * hidden


def test_unknown_preset_and_bad_heads_are_rejected():
    with pytest.raises(ValueError, match="unknown preset"):
        BertConfig.from_preset("huge")
    with pytest.raises(ValueError, match="multiple"):
        BertConfig(hidden_size=30, num_attention_heads=4)


def test_masked_only_logits_equal_full_logits_at_those_positions():
    model = BertForMaskedLM(BertConfig(**TINY)).eval()
    ids, mask = batch()
    picked = torch.zeros_like(ids, dtype=torch.bool)
    picked[0, 3] = picked[1, 1] = picked[1, 4] = True
    with torch.no_grad():
        full = model(ids, mask).logits
        some = model(ids, mask, prediction_mask=picked).logits
    assert some.shape == (3, 99)
    assert torch.allclose(full[picked], some, atol=1e-6)


def test_decoder_is_tied_to_word_embeddings():
    model = BertForMaskedLM(BertConfig(**TINY))
    names = {n for n, _ in model.named_parameters()}
    assert not any("decoder" in n for n in names)
    ids, mask = batch()
    model(ids, mask).logits.sum().backward()
    assert model.bert.embeddings.word.weight.grad is not None


def test_sinusoidal_positions_are_fixed():
    model = BertModel(BertConfig(**TINY, position_embedding_type="sinusoidal"))
    assert not any("position" in n for n, _ in model.named_parameters())
    table = model.embeddings.position_weight()
    assert table.shape == (40, 32) and torch.allclose(table[0, 1::2], torch.ones(16))


def test_classifier_overfits_one_batch():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(**TINY, id2label={0: "a", 1: "b", 2: "c"}, hidden_dropout_prob=0.0))
    ids, mask = batch()
    labels = torch.tensor([2, 0])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    model.train()
    for _ in range(100):
        loss = torch.nn.functional.cross_entropy(model(ids, mask).logits, labels)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]

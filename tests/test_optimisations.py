"""Each speed optimisation of the encoder, checked against transformers at 1e-5.

* fused query/key/value projection (the default path) and its checkpoint table entries;
* the explicit attention path taken in training with attention dropout (bias and scale
  folded into one ``baddbmm``), checked with dropout switched to the identity;
* the packed-random-bits CPU dropout (``model.dropout``): its statistics and gradient, since
  no reference draws the same mask;
* ``torch.compile`` of the encoder layers (``bert_tasks.training.compiled``): the eager fallback
  always; the compiled graphs themselves in a ``slow`` test (inductor compiles C++ with gcc).

* unpadding (``set_unpadding``: per-token work on the real tokens only), at real positions and
  the pooler, in eval and in a training step on both attention paths, and its switches.
"""

from __future__ import annotations

import pytest
from pathlib import Path
import torch
import transformers
from transformers import BertConfig as HFConfig

from bert_tasks.model import encoder as model_module
from bert_tasks.checkpoint import load_hf_state_dict, to_hf_state_dict
from bert_tasks.model.keymap import hf_parts, key_table, ours_to_hf
from bert_tasks.training.compiled import compile_failed, compile_model, compile_targets, uncompile_model
from bert_tasks.errors import BertTasksError
from bert_tasks.config import ModelSettings, Recipe, TrainConfig
from bert_tasks.model import (BertConfig, BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification,
                              BertModel, RealTokens, set_unpadding)

TOL = 1e-5
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 99, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    return ids, mask, types


def pair(task=None, **overrides):
    """A transformers model (random init) and ours with its weights, through the checkpoint table."""
    torch.manual_seed(0)
    cls = transformers.BertForQuestionAnswering if task == "squad" else transformers.BertModel
    hf = cls(HFConfig(**{**TINY, **overrides}, attn_implementation="sdpa"))
    ours = (BertForQuestionAnswering if task == "squad" else BertModel)(BertConfig(**{**TINY, **overrides}))
    load_hf_state_dict(ours, hf.state_dict(), task=task)
    return ours, hf


def loss_weights():
    """Fixed random projections, scaled like a mean over positions so gradients are O(1) as with a real loss."""
    g = torch.Generator().manual_seed(7)
    return torch.randn(3, 11, TINY["hidden_size"], generator=g) / 33, torch.randn(3, TINY["hidden_size"], generator=g) / 3


def encoder_loss(out, weights):
    return (out.last_hidden_state * weights[0]).sum() + (out.pooler_output * weights[1]).sum()


def assert_training_step_matches_hf(ours, hf, inputs, weights=None):
    """Train mode, the encoder loss on both models: equal losses and every gradient within TOL."""
    ids, mask, types = inputs
    ours.train(), hf.train()
    weights = weights if weights is not None else loss_weights()
    loss_a = encoder_loss(ours(ids, mask, types), weights)
    loss_b = encoder_loss(hf(input_ids=ids, attention_mask=mask, token_type_ids=types), weights)
    assert abs(loss_a.item() - loss_b.item()) <= TOL
    loss_a.backward(), loss_b.backward()
    assert grads_match(ours, hf) <= TOL


def grads_match(ours, hf, task=None) -> float:
    pairs = key_table(task, TINY["num_hidden_layers"])
    ours_grads = ours_to_hf(pairs, {n: p.grad for n, p in ours.named_parameters() if p.grad is not None})
    hf_params = dict(hf.named_parameters())
    worst = 0.0
    for name in (h for hf_key, _ in pairs for h in hf_parts(hf_key)):
        assert hf_params[name].grad is not None and name in ours_grads, name
        worst = max(worst, (hf_params[name].grad - ours_grads[name]).abs().max().item())
    return worst


# --------------------------------------------------------------------------- fused QKV


def test_fused_projection_stacks_query_key_value_rows():
    ours, hf = pair()
    C = TINY["hidden_size"]
    fused = ours.encoder.layers[1].attention.qkv
    attn = hf.encoder.layer[1].attention.self
    assert fused.weight.shape == (3 * C, C)
    for part, hf_linear in enumerate((attn.query, attn.key, attn.value)):
        assert torch.equal(fused.weight[part * C:(part + 1) * C], hf_linear.weight)
        assert torch.equal(fused.bias[part * C:(part + 1) * C], hf_linear.bias)


def test_fused_projection_round_trips_bit_exact():
    ours, hf = pair()
    back = to_hf_state_dict(ours)
    original = {k: v for k, v in hf.state_dict().items() if k != "embeddings.position_ids"}
    assert back.keys() == original.keys()
    assert all(torch.equal(back[k], original[k]) for k in original)


def test_fused_entry_with_a_missing_part_is_an_error():
    _, hf = pair()
    state = dict(hf.state_dict())
    del state["encoder.layer.1.attention.self.key.bias"]
    with pytest.raises(BertTasksError, match="lacks encoder weights: encoder.layers.1.attention.qkv.bias"):
        load_hf_state_dict(BertModel(BertConfig(**TINY)), state, task=None)


def test_fused_model_matches_hf_in_eval_and_in_a_training_step():
    ours, hf = pair(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ids, mask, types = batch()
    ours.eval(), hf.eval()
    with torch.no_grad():
        a, b = ours(ids, mask, types), hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert (a.last_hidden_state - b.last_hidden_state).abs().max() <= TOL
    assert (a.pooler_output - b.pooler_output).abs().max() <= TOL
    assert_training_step_matches_hf(ours, hf, (ids, mask, types))


# --------------------------------------------------------------------------- explicit attention path


def test_dropout_training_path_matches_hf_with_dropout_as_identity(monkeypatch):
    """Attention dropout > 0 selects the baddbmm path; with dropout made the identity it must be HF's maths."""
    ours, hf = pair("squad", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    for layer in ours.bert.encoder.layers:
        layer.attention.dropout_p = 0.1  # take the explicit training path ...
    monkeypatch.setattr(model_module, "dropout", lambda x, p, training: x)  # ... minus noise
    ours.train(), hf.train()
    ids, mask, types = batch(1)
    start, end = torch.tensor([1, 3, 0]), torch.tensor([2, 5, 1])
    out = ours(ids, mask, types)
    ce = torch.nn.functional.cross_entropy
    our_loss = (ce(out.start_logits, start) + ce(out.end_logits, end)) / 2
    hf_loss = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, start_positions=start, end_positions=end).loss
    assert abs(our_loss.item() - hf_loss.item()) <= TOL
    our_loss.backward(), hf_loss.backward()
    assert grads_match(ours, hf, "squad") <= TOL


def test_attention_dropout_drops_and_rescales():
    layer = BertModel(BertConfig(**{**TINY, "attention_probs_dropout_prob": 0.5})).encoder.layers[0].attention.train()
    x = torch.randn(2, 9, TINY["hidden_size"])
    keep = torch.ones(2, 1, 1, 9, dtype=torch.bool)
    torch.manual_seed(0)
    a, _ = layer(x, keep)
    torch.manual_seed(1)
    b, _ = layer(x, keep)
    assert not torch.allclose(a, b)  # dropout is active in training
    layer.eval()
    c, _ = layer(x, keep)
    d, probs = layer(x, keep, return_probs=True)
    assert (c - d).abs().max() <= TOL and torch.allclose(probs.sum(-1), torch.ones(2, 4, 9), atol=1e-6)



@pytest.mark.parametrize("fused", [False, True], ids=["cpu", "cuda"])
def test_attention_dropout_runs_inside_sdpa_where_the_kernel_keeps_it_fused(fused, monkeypatch):
    """On CUDA (forced here) training attention goes through SDPA with its dropout; on CPU the explicit path takes
    it; attention maps always take the explicit path."""
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def recording(*args, **kwargs):
        calls.append(kwargs.get("dropout_p", 0.0))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(model_module, "fused_dropout", lambda device: fused)
    monkeypatch.setattr(model_module.F, "scaled_dot_product_attention", recording)
    layer = BertModel(BertConfig(**{**TINY, "attention_probs_dropout_prob": 0.25})).encoder.layers[0].attention.train()
    x, keep = torch.randn(2, 9, TINY["hidden_size"]), torch.ones(2, 1, 1, 9, dtype=torch.bool)
    out, probs = layer(x, keep)
    assert calls == ([0.25] if fused else []) and probs is None and torch.isfinite(out).all()
    layer(x, keep, return_probs=True)
    assert len(calls) == (1 if fused else 0)

# --------------------------------------------------------------------------- unpadding


@pytest.mark.parametrize("ragged", [False, True], ids=["scattered", "ragged"])
def test_unpadded_encoder_matches_hf_at_real_positions_and_zeroes_padding(ragged):
    """Attention scattered back to [B, T] (CPU's way), or on the packed tokens (CUDA's, forced here)."""
    ours, hf = pair()
    assert set_unpadding(ours, ragged=ragged) == 1 and ours.unpad
    ids, mask, types = batch()
    ours.eval(), hf.eval()
    with torch.no_grad():
        a, b = ours(ids, mask, types), hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    real = mask.bool()
    assert (a.last_hidden_state[real] - b.last_hidden_state[real]).abs().max() <= TOL
    assert (a.pooler_output - b.pooler_output).abs().max() <= TOL
    assert torch.equal(a.last_hidden_state[~real], torch.zeros_like(a.last_hidden_state[~real]))
    with torch.no_grad():  # attention maps and mask-less calls keep the padded path
        maps = ours(ids, mask, types, output_attentions=True)
        full = ours(ids, None, types)
        hf_full = hf(input_ids=ids, token_type_ids=types)
    assert maps.attentions is not None and (maps.last_hidden_state[~real] != 0).any()
    assert (full.last_hidden_state - hf_full.last_hidden_state).abs().max() <= TOL


@pytest.mark.parametrize("attention_path", ["sdpa", "explicit", "ragged"])
def test_unpadded_training_step_matches_hf(attention_path, monkeypatch):
    """Loss on real positions and the pooler, and every gradient, on every attention path."""
    ours, hf = pair(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    set_unpadding(ours, ragged=attention_path == "ragged")
    if attention_path == "explicit":
        for layer in ours.encoder.layers:
            layer.attention.dropout_p = 0.1
        monkeypatch.setattr(model_module, "dropout", lambda x, p, training: x)
    ids, mask, types = batch(2)
    tokens, pooled = loss_weights()
    weights = (tokens * mask[..., None], pooled)  # HF's padded positions hold values ours does not compute
    assert_training_step_matches_hf(ours, hf, (ids, mask, types), weights)


def test_unpadded_classifier_matches_hf_loss_and_gradients():
    torch.manual_seed(0)
    config = {**TINY, "num_labels": 3, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    hf = transformers.BertForSequenceClassification(HFConfig(**config, attn_implementation="sdpa")).train()
    ours = BertForSequenceClassification(BertConfig(**{k: v for k, v in config.items() if k != "num_labels"},
                                                    id2label={0: "a", 1: "b", 2: "c"}))
    load_hf_state_dict(ours, hf.state_dict(), task="glue")
    assert set_unpadding(ours.train()) == 1
    ids, mask, types = batch(3)
    labels = torch.tensor([0, 2, 1])
    loss_a = torch.nn.functional.cross_entropy(ours(ids, mask, types).logits, labels)
    loss_b = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels).loss
    assert abs(loss_a.item() - loss_b.item()) <= TOL
    loss_a.backward(), loss_b.backward()
    assert grads_match(ours, hf, "glue") <= TOL


@pytest.mark.parametrize("ragged", [False, True], ids=["scattered", "ragged"])
def test_unpadding_skips_batches_without_padding_and_survives_an_all_padding_row(ragged):
    full = torch.ones(2, 5, dtype=torch.long)
    assert RealTokens.from_mask(full, ragged=ragged) is None  # packed MLM batches: nothing to skip
    holes = torch.tensor([[1, 1, 0], [1, 0, 0]])
    assert RealTokens.from_mask(holes, ragged=ragged).offsets is None if not ragged else \
        RealTokens.from_mask(holes, ragged=True).offsets.tolist() == [0, 2, 3]
    assert RealTokens.from_mask(torch.tensor([[1, 1], [0, 0]]), ragged=True).offsets is None  # no empty sequence
    ours, hf = pair()
    set_unpadding(ours, ragged=ragged)
    ids, mask, types = batch()
    mask[2] = 0  # a row with no real token at all
    ours.eval(), hf.eval()
    for dtype in (torch.long, torch.bool, torch.float):
        with torch.no_grad():
            a = ours(ids, mask.to(dtype), types)
            b = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        real = mask.bool()
        assert torch.isfinite(a.last_hidden_state).all() and torch.isfinite(a.pooler_output).all()
        assert (a.last_hidden_state[real] - b.last_hidden_state[real]).abs().max() <= TOL


@pytest.mark.parametrize("ragged", [False, True], ids=["scattered", "ragged"])
def test_unpadded_masked_lm_matches_hf_at_the_predicted_positions(ragged):
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(HFConfig(**TINY, attn_implementation="sdpa")).eval()
    ours = BertForMaskedLM(BertConfig(**TINY)).eval()
    load_hf_state_dict(ours, hf.state_dict(), task="mlm")
    set_unpadding(ours, ragged=ragged)
    ids, mask, types = batch(4)
    predict = mask.bool() & (torch.arange(11) % 3 == 0)
    with torch.no_grad():
        ours_logits = ours(ids, mask, types, prediction_mask=predict).logits  # [N, V]
        hf_logits = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[predict]
    assert ours_logits.shape == hf_logits.shape and (ours_logits - hf_logits).abs().max() <= TOL


def test_unpad_switches_validate():
    with pytest.raises(BertTasksError, match="unpad and compile cannot be combined"):
        TrainConfig(unpad=True, compile=True).validate()
    from bert_tasks.tasks.squad.config import SquadDataConfig

    for task, backend, data, reason in (("glue", "hf", None, "backend scratch"),
                                        ("squad", "scratch", SquadDataConfig(), "real positions only"),
                                        ("squad_v2", "scratch", SquadDataConfig(), "real positions only")):
        with pytest.raises(BertTasksError, match=reason):  # SQuAD's rule lives in its data settings, every spelling
            Recipe(task=task, model=ModelSettings(backend=backend), train=TrainConfig(unpad=True), data=data).validate()
    Recipe(task="mlm", train=TrainConfig(unpad=True)).validate()
    assert set_unpadding(torch.nn.Linear(2, 2)) == 0


# --------------------------------------------------------------------------- packed dropout


def test_dropout_is_the_identity_in_eval_or_at_zero_rate_and_rejects_impossible_rates():
    x = torch.randn(4, 5)
    assert model_module.dropout(x, 0.1, training=False) is x
    assert model_module.dropout(x, 0.0, training=True) is x
    assert torch.equal(model_module.dropout(x, 1.0, training=True), torch.zeros_like(x))
    assert torch.equal(model_module.dropout(x, 0.999996, training=True), torch.zeros_like(x))  # rounds to 2¹⁶/2¹⁶
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            model_module.dropout(x, bad, training=True)
        with pytest.raises(ValueError, match="between 0 and 1"):
            model_module.Dropout(bad)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_drops_each_lane_at_rate_p_and_keeps_the_mean(p):
    """Every residue class mod 3 (the three lanes of a random word) and mod 4 drops at rate p.

    Using the int64's always-zero top lane, or a lane twice, would skew one class (checked by
    mutating the lane slice); the neighbour check catches lanes that are not independent.
    """
    torch.manual_seed(0)
    n = 3 * 4 * 200_001  # a multiple of 12, so each residue class below has the same size
    out = model_module.dropout(torch.ones(n), p, training=True)
    threshold = round(p * 65536)
    kept_scale = 65536 / (65536 - threshold)
    dropped = out == 0
    assert torch.equal(out[~dropped], torch.full_like(out[~dropped], kept_scale))  # survivors scaled exactly
    rate = threshold / 65536
    for period in (3, 4):
        for lane in range(period):
            share = dropped[lane::period].double().mean().item()
            sigma = (rate * (1 - rate) / (n / period)) ** 0.5
            assert abs(share - rate) < 5 * sigma, (period, lane, share)
    neighbours = (dropped[:-1] & dropped[1:]).double().mean().item()  # lanes are independent
    assert abs(neighbours - rate**2) < 5 * (rate**2 / n) ** 0.5 + 1e-4
    assert abs(out.double().mean().item() - 1.0) < 5 * (rate / (1 - rate) / n) ** 0.5


def test_dropout_gradient_is_the_mask_times_the_scale_for_odd_shapes_and_bf16():
    torch.manual_seed(0)
    x = torch.randn(5, 7, 11, requires_grad=True)  # 385 elements: not a multiple of 3
    out = model_module.dropout(x, 0.3, training=True)
    out.backward(torch.ones_like(out))
    kept = out != 0
    scale = 65536 / (65536 - round(0.3 * 65536))
    assert torch.allclose(out[kept], x[kept] * scale) and 0 < kept.sum() < x.numel()
    assert torch.equal(x.grad, kept.float() * scale)
    half = model_module.dropout(torch.ones(300_000, dtype=torch.bfloat16), 0.3, training=True)
    assert half.dtype == torch.bfloat16 and abs(half.double().mean().item() - 1.0) < 0.01


def test_dropout_follows_the_torch_seed():
    x = torch.ones(1000)
    torch.manual_seed(3)
    a = model_module.dropout(x, 0.1, training=True)
    torch.manual_seed(3)
    b = model_module.dropout(x, 0.1, training=True)
    c = model_module.dropout(x, 0.1, training=True)
    assert torch.equal(a, b) and not torch.equal(b, c)


# --------------------------------------------------------------------------- torch.compile


def test_compile_targets_are_the_encoder_layers_and_names_are_unchanged():
    ours, _ = pair()
    names = list(ours.state_dict())
    assert [n for n, _ in compile_targets(ours)] == ["encoder.layers.0", "encoder.layers.1"]
    assert compile_model(ours, "layer") == 2
    assert list(ours.state_dict()) == names
    uncompile_model(ours)
    assert "forward" not in ours.encoder.layers[0].__dict__


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken(fn, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("C++ compile error: gcc not found")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    ours, hf = pair()
    ours.eval(), hf.eval()
    compile_model(ours)
    ids, mask, types = batch()
    with pytest.warns(RuntimeWarning, match="torch.compile failed .* continuing uncompiled"):
        with torch.no_grad():
            out = ours(ids, mask, types)
    assert compile_failed(ours)
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() <= TOL


def test_fit_with_compile_flag_survives_a_failing_compiler(monkeypatch, tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from toy import ToyTask, new_model, toy_dataset

    from bert_tasks.config import TrainConfig
    from bert_tasks.training import fit

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: (lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no"))))
    model = new_model()
    with pytest.warns(RuntimeWarning, match="continuing uncompiled"):
        result = fit(model, ToyTask(), toy_dataset(16), TrainConfig(batch_size=8, max_steps=2, compile=True), tmp_path)
    assert result.global_step == 2 and compile_failed(model)


@pytest.mark.slow
@pytest.mark.parametrize("scope", ["layer", "model"])
def test_compiled_encoder_matches_hf(scope):
    """Inductor-compiled layers: eval outputs and one training step's loss and gradients within 1e-5."""
    ours, hf = pair(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    compile_model(ours, scope)
    ids, mask, types = batch()
    ours.eval(), hf.eval()
    with torch.no_grad():
        a, b = ours(ids, mask, types), hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
    assert (a.last_hidden_state - b.last_hidden_state).abs().max() <= TOL
    assert_training_step_matches_hf(ours, hf, (ids, mask, types))
    assert not compile_failed(ours)


# --------------------------------------------------------------------------- thread default


def test_default_threads_use_every_allowed_core_unless_other_work_kept_them_busy(monkeypatch):
    import os

    from bert_tasks.training import threads

    assert threads.allowed_cores() == len(os.sched_getaffinity(0))
    assert threads.sustained_load() == pytest.approx(os.getloadavg()[0], abs=0.5)
    assert 0.0 <= threads.own_load() <= 1.0
    runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1  # the kernel's count, less us
    assert abs(threads.running_now(samples=1, interval=0) - runnable) <= 2
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "allowed_cores", lambda: 4)
    monkeypatch.setattr(threads, "own_load", lambda: 0.9)
    monkeypatch.setattr(threads, "sustained_load", lambda: 1.5)  # 0.6 of it is others': below a busy core
    assert threads.choose_threads().threads == 4
    monkeypatch.setattr(threads, "running_now", lambda: 3)
    monkeypatch.setattr(threads, "sustained_load", lambda: 2.9)  # others kept 2 cores busy, and still do
    choice = threads.choose_threads()
    assert choice.threads == 2 and "2 of 4" in choice.reason
    monkeypatch.setattr(threads, "running_now", lambda: 0)  # ...but that work has just ended
    assert threads.choose_threads().threads == 4
    monkeypatch.setattr(threads, "running_now", lambda: 3)
    monkeypatch.setattr(threads, "sustained_load", lambda: 40.0)  # oversubscribed: never fewer than one
    assert threads.choose_threads().threads == 1
    monkeypatch.setattr(threads, "sustained_load", lambda: None)  # no load average: every allowed core
    assert threads.choose_threads().threads == 4
    assert threads.choose_threads(3).threads == 3  # train.num_threads wins
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose_threads() == threads.ThreadChoice(2, "set by OMP_NUM_THREADS")  # so does the user's env

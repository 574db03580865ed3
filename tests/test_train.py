"""The shared training loop: learning, exact resume, non-finite losses, ordered prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bert_tasks.config import TrainConfig
from bert_tasks.training import EpochBatchSampler, NonFiniteLoss, checkpoint_dirs, fit, predict
from toy import ToyTask, new_model, toy_dataset, weights


def test_sampler_order_depends_only_on_seed_and_epoch_and_groups_lengths():
    lengths = list(np.random.default_rng(1).integers(1, 100, 500))
    a = EpochBatchSampler(lengths, 8, seed=3)
    b = EpochBatchSampler(lengths, 8, seed=3)
    a.start_epoch(2); b.start_epoch(2)
    assert list(a) == list(b)
    b.start_epoch(2, skip=5)
    assert list(b) == list(a)[5:]
    a.start_epoch(3)
    assert list(a) != list(b)
    flat = sorted(i for batch in a for i in batch)
    assert flat == list(range(500))
    spread = np.mean([np.ptp([lengths[i] for i in batch]) for batch in a])
    plain = EpochBatchSampler(lengths, 8, seed=3, group_by_length=False)
    assert spread < 0.5 * np.mean([np.ptp([lengths[i] for i in batch]) for batch in plain])


def test_length_grouping_does_not_repeat_an_epochs_batches_in_the_next():
    """A small data set (1,000 features of batch 32, under 50 batches) must still get new batches each epoch:
    with one mega-batch per epoch 81% of the pairs sharing a batch shared one again the next epoch."""
    lengths = list(np.random.default_rng(1).integers(1, 100, 1000))
    sampler = EpochBatchSampler(lengths, 32, seed=3)

    def together(epoch):
        sampler.start_epoch(epoch)
        return {(a, b) for batch in sampler for a in batch for b in batch if a < b}

    first, second = together(1), together(2)
    assert len(first & second) / len(first) < 0.25
    spread = np.mean([np.ptp([lengths[i] for i in batch]) for batch in sampler])
    plain = EpochBatchSampler(lengths, 32, seed=3, group_by_length=False)
    assert spread < 0.2 * np.mean([np.ptp([lengths[i] for i in batch]) for batch in plain])  # still grouped


def test_loss_falls_and_log_is_written(tmp_path):
    cfg = TrainConfig(learning_rate=2e-3, batch_size=8, epochs=15, logging_steps=6, seed=1, warmup_ratio=0.1)
    result = fit(new_model(), ToyTask(), toy_dataset(), cfg, tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert result.global_step == 90 and log[-1]["step"] == 90
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
    assert all(r["tokens_per_second"] > 0 for r in log)


def test_resume_reaches_identical_weights(tmp_path):
    import shutil

    data = toy_dataset()
    cfg = TrainConfig(learning_rate=5e-4, batch_size=8, max_steps=10, save_steps=4, seed=5,
                      gradient_accumulation_steps=2, save_total_limit=None)
    straight = new_model()
    fit(straight, ToyTask(), data, cfg, tmp_path / "a")
    assert [p.name for p in checkpoint_dirs(tmp_path / "a")] == ["step-4", "step-8", "step-10"]

    # A kill between step 4 and step 8: only the step-4 checkpoint survives, plus a torn temporary folder.
    crashed = tmp_path / "b"
    shutil.copytree(tmp_path / "a" / "checkpoints" / "step-4", crashed / "checkpoints" / "step-4")
    (crashed / "checkpoints" / ".step-8.tmp").mkdir()
    resumed = new_model(seed=99)  # a different init: everything must come from the checkpoint
    fit(resumed, ToyTask(), data, cfg, crashed, resume_from="latest")
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nonfinite_loss_stops_with_the_step_named(tmp_path):
    cfg = TrainConfig(batch_size=8, max_steps=6, save_steps=2)
    with pytest.raises(NonFiniteLoss, match=r"at step 4; the last good checkpoint is .*step-2"):
        fit(new_model(), ToyTask(poison_step=4), toy_dataset(), cfg, tmp_path)


def test_skip_nonfinite_counts_and_continues(tmp_path):
    cfg = TrainConfig(batch_size=8, max_steps=6, skip_nonfinite=True)
    model, untouched = new_model(), new_model()
    result = fit(model, ToyTask(poison_step=3), toy_dataset(), cfg, tmp_path)
    assert result.skipped_nonfinite == 1 and result.global_step == 6
    trained = list(model.parameters())
    assert all(torch.isfinite(p).all() for p in trained)  # the trained model: the skipped step left no NaN
    assert any(not torch.equal(p, q) for p, q in zip(trained, untouched.parameters()))  # and the other steps trained it


def test_budget_stops_cleanly(tmp_path):
    cfg = TrainConfig(batch_size=8, epochs=1000, budget_minutes=0.02)
    result = fit(new_model(), ToyTask(), toy_dataset(), cfg, tmp_path)
    assert result.stopped_by_budget and 0 < result.global_step < 6000


def test_predict_restores_dataset_order():
    data = toy_dataset(30, seed=4)
    model = new_model().eval()
    outputs = predict(model, ToyTask(), data, batch_size=7)
    assert len(outputs["logits"]) == 30
    for i in (0, 13, 29):
        batch = ToyTask().collate([data[i]])
        with torch.no_grad():
            expected = model(batch["input_ids"], batch["attention_mask"]).logits[0].numpy()
        assert np.allclose(outputs["logits"][i], expected, atol=1e-5)


def test_predict_on_plain_columns_equals_predict_on_a_dataset():
    """ColumnRows, what QuestionAnswerer predicts on instead of building a datasets.Dataset per call."""
    from bert_tasks.training.prediction import ColumnRows

    data = toy_dataset(23, seed=5)
    model = new_model().eval()
    rows = ColumnRows({name: list(data[name]) for name in data.column_names})
    assert len(rows) == 23 and rows[4] == data[4]
    expected, actual = predict(model, ToyTask(), data, batch_size=6), predict(model, ToyTask(), rows, batch_size=6)
    assert expected.keys() == actual.keys()
    assert all(np.array_equal(a, b) for key in expected for a, b in zip(expected[key], actual[key], strict=True))


def test_same_seed_gives_identical_weights_and_metrics(tmp_path):
    cfg = TrainConfig(learning_rate=1e-3, batch_size=8, max_steps=8, seed=3, group_by_length=True)
    runs = []
    for name in ("first", "second"):
        model = new_model()
        fit(model, ToyTask(), toy_dataset(), cfg, tmp_path / name)
        logits = predict(model, ToyTask(), toy_dataset(17, seed=2), batch_size=5)["logits"]
        runs.append((weights(model), np.stack(logits)))
    (w1, p1), (w2, p2) = runs
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    assert np.array_equal(p1, p2)
    log1 = [json.loads(line)["loss"] for line in (tmp_path / "first" / "train_log.jsonl").read_text().splitlines()]
    log2 = [json.loads(line)["loss"] for line in (tmp_path / "second" / "train_log.jsonl").read_text().splitlines()]
    assert log1 == log2


def test_a_failing_first_compiled_step_carries_on_uncompiled(monkeypatch, tmp_path):
    from bert_tasks.training import loop as train

    calls, uncompiled, real = [], [], train._forward_backward

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("backward graph failed to compile")
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "_forward_backward", fails_once)
    monkeypatch.setattr(train, "compile_model", lambda model, scope: 1)  # the fallback is what is tested, not inductor
    monkeypatch.setattr(train, "uncompile_model", uncompiled.append)
    with pytest.warns(RuntimeWarning, match="continuing uncompiled"):
        result = fit(new_model(), ToyTask(), toy_dataset(), TrainConfig(batch_size=8, max_steps=3, compile=True), tmp_path)
    assert result.global_step == 3 and len(uncompiled) == 1 and len(calls) == 4  # the first step retried, then 2 more


@pytest.mark.parametrize("kernel", ["foreach", "loop"])
def test_every_adamw_kernel_trains_the_same_weights(kernel, tmp_path):
    """The fused kernel (the default) is a speed choice only: 10 steps with weight decay and clipping end at the same
    weights as the foreach and the plain loop implementations, up to float rounding."""
    cfg = dict(learning_rate=3e-3, batch_size=8, max_steps=10, seed=3, weight_decay=0.01, warmup_ratio=0.2)
    fused, other = new_model(), new_model()
    fit(fused, ToyTask(), toy_dataset(), TrainConfig(**cfg), tmp_path / "fused")
    fit(other, ToyTask(), toy_dataset(), TrainConfig(**cfg, adam_kernel=kernel), tmp_path / kernel)
    a, b, start = weights(fused), weights(other), weights(new_model())
    moved = max(float((a[k] - start[k]).abs().max()) for k in a)
    apart = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved > 1e-2 and apart < 1e-5 * max(1.0, moved), (moved, apart)


def test_the_fused_kernel_is_used_where_the_device_has_it():
    from bert_tasks.training import make_optimizer

    model = new_model()
    optimizer = make_optimizer(model, TrainConfig(), torch.device("cpu"))
    assert optimizer.defaults["fused"] is True
    assert make_optimizer(model, TrainConfig(adam_kernel="loop"), torch.device("cpu")).defaults["foreach"] is False

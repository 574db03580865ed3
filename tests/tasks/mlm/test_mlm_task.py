"""MlmTask: loss parity with transformers' BertForMaskedLM, both logits shapes, evaluation, and the task protocol."""

import math
from types import SimpleNamespace

import datasets
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM

from bert_tasks.tasks import family_of
from bert_tasks.protocol import Task, model_inputs
from bert_tasks.tasks.mlm.config import MlmDataConfig
from bert_tasks.tasks.mlm.masking import MaskingCollator
from bert_tasks.tasks.mlm.task import MlmTask, evaluate_mlm

VOCAB = 99


class StubTokenizer:
    pad_token_id, mask_token_id, all_special_ids = 0, 4, [0, 1, 2, 3, 4]

    def __len__(self):
        return VOCAB


def tiny_hf_model(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)
    return BertForMaskedLM(config).eval()


def make_batch(n=6, seed=0, collator=None):
    generator = torch.Generator().manual_seed(seed)
    features = []
    for i in range(n):
        length = 5 + (i * 7) % 20
        ids = torch.randint(5, VOCAB, (length,), generator=generator).tolist()
        features.append({"input_ids": [2, *ids, 3], "special_tokens_mask": [1, *[0] * length, 1]})
    return (collator or MaskingCollator(StubTokenizer(), seed=seed, mlm_probability=0.3))(features)


class MaskedOnlyLogits(torch.nn.Module):
    """Stands in for the scratch model: returns [N, V] logits for the predicted positions only."""

    supports_prediction_mask = True

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = []

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, prediction_mask=None):
        self.calls.append(prediction_mask is not None)
        logits = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        return SimpleNamespace(logits=logits[prediction_mask] if prediction_mask is not None else logits)


class DistributedWrapper(torch.nn.Module):
    """Like DDP: the real model sits in ``.module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine competing threads stall for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_task_follows_the_protocol():
    task = MlmTask()
    assert isinstance(task, Task)
    assert (task.name, task.head, family_of(task.name).config_class) == ("mlm", "mlm", MlmDataConfig)


def test_loss_matches_transformers_on_full_logits():
    model, batch, task = tiny_hf_model(), make_batch(), MlmTask()
    with torch.no_grad():
        reference = model(**model_inputs(batch), labels=batch["labels"])
        outputs = task.forward(model, batch)
    assert outputs.logits.shape == (*batch["input_ids"].shape, VOCAB)
    assert task.loss(outputs, batch).item() == pytest.approx(reference.loss.item(), rel=1e-6)


def test_loss_matches_transformers_on_masked_only_logits():
    model, batch, task = tiny_hf_model(), make_batch(seed=1), MlmTask()
    with torch.no_grad():
        reference = model(**model_inputs(batch), labels=batch["labels"])
    sliced = SimpleNamespace(logits=reference.logits[batch["prediction_mask"]])
    assert sliced.logits.shape == (int(batch["prediction_mask"].sum()), VOCAB)
    assert task.loss(sliced, batch).item() == pytest.approx(reference.loss.item(), rel=1e-6)
    assert task.loss({"logits": reference.logits}, batch).item() == pytest.approx(reference.loss.item(), rel=1e-6)


def test_forward_asks_for_masked_only_logits_through_wrappers():
    model, batch, task = MaskedOnlyLogits(tiny_hf_model()), make_batch(seed=2), MlmTask()
    with torch.no_grad():
        outputs = task.forward(DistributedWrapper(model), batch)
        full = model.inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]).logits
    assert model.calls == [True]
    assert torch.equal(outputs.logits, full[batch["prediction_mask"]])
    loss = task.loss(outputs, batch)
    assert loss.item() == pytest.approx(F.cross_entropy(full.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100).item(), rel=1e-6)


def test_loss_trains_the_model():
    model, task = tiny_hf_model(), MlmTask()
    model.train()
    batch = make_batch(seed=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = task.loss(task.forward(model, batch), batch).item()
    for _ in range(15):
        optimizer.zero_grad()
        task.loss(task.forward(model, batch), batch).backward()
        optimizer.step()
    assert task.loss(task.forward(model, batch), batch).item() < before - 0.5


def reference_metrics(model, batches):
    logits, labels = [], []
    with torch.no_grad():
        for batch in batches:
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"])
            logits.append(out.logits[batch["prediction_mask"]])
            labels.append(batch["labels"][batch["prediction_mask"]])
    logits, labels = torch.cat(logits), torch.cat(labels)
    loss = F.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(-1) == labels).float().mean().item(), len(labels)


@pytest.mark.parametrize("masked_only", [False, True])
def test_evaluation_weights_every_predicted_token_equally(masked_only):
    hf = tiny_hf_model()
    batches = [make_batch(n=n, seed=10 + n) for n in (1, 7, 3)]  # uneven batches: a mean of batch means would differ
    loss, accuracy, tokens = reference_metrics(hf, batches)
    per_batch_mean = sum(reference_metrics(hf, [b])[0] for b in batches) / len(batches)
    assert abs(per_batch_mean - loss) > 1e-4
    model = MaskedOnlyLogits(hf) if masked_only else hf
    model.train()
    result = evaluate_mlm(model, batches)
    assert model.training, "evaluation restores training mode"
    assert result["eval_tokens"] == tokens
    assert result["eval_loss"] == pytest.approx(loss, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(loss), rel=1e-5)
    assert result["masked_accuracy"] == pytest.approx(accuracy)


def test_preprocess_and_collate_end_to_end(tokenizer, make_docs):
    cfg = MlmDataConfig(train_files=["unused.txt"], max_seq_length=16, max_eval_samples=3, whole_word_masking=True)
    task = MlmTask(seed=0)
    with pytest.raises(RuntimeError, match="configure"):
        task.collate([{"input_ids": [2, 5, 3]}])
    raw = datasets.Dataset.from_dict({"text": make_docs(20, seed=9)})
    train = task.preprocess(raw, tokenizer, cfg, train=True)
    validation = task.preprocess(raw, tokenizer, cfg, train=False)
    assert len(validation) == 3 and len(train) > 3
    assert all(len(ids) == 16 for ids in train["input_ids"][:-1])
    features = [train[i] for i in range(4)]
    first, second = task.collate(features), task.collate(features)
    assert first["input_ids"].shape == (4, 16) and first["prediction_mask"].any()
    assert not torch.equal(first["labels"], second["labels"])
    assert torch.equal(task.eval_collate(features)["labels"], task.eval_collate(features[::-1])["labels"].flip(0))
    predictions, references = task.postprocess(SimpleNamespace(logits=torch.zeros(4, 16, len(tokenizer))), first)
    assert len(predictions) == len(references) == int(first["prediction_mask"].sum())
    assert task.metrics(references, references) == {"masked_accuracy": 1.0}
    streamed = task.preprocess(raw.to_iterable_dataset(), tokenizer, cfg, train=False)
    assert [row["input_ids"] for row in streamed] == validation["input_ids"]


def test_evaluation_through_accelerate_counts_each_sample_once():
    from accelerate import Accelerator

    features = [
        {"input_ids": [2, *range(5 + i, 12 + 2 * i), 3], "special_tokens_mask": [1, *[0] * (7 + i), 1]} for i in range(7)
    ]
    collator = MaskingCollator(StubTokenizer(), seed=1234, deterministic=True, mlm_probability=0.3)
    loader = torch.utils.data.DataLoader(features, batch_size=3, collate_fn=collator)
    model = tiny_hf_model()
    expected = evaluate_mlm(model, loader)
    accelerator = Accelerator(cpu=True)
    prepared_model, prepared_loader = accelerator.prepare(model, loader)
    result = evaluate_mlm(prepared_model, prepared_loader, accelerator=accelerator)
    assert result["eval_tokens"] == expected["eval_tokens"] == reference_metrics(model, list(loader))[2]
    assert result["eval_loss"] == pytest.approx(expected["eval_loss"], rel=1e-6)

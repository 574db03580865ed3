"""The SQuAD task adapter: loss equal to HF's, dynamic padding, and the whole data path end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bert_tasks.tasks import family_of
from bert_tasks.protocol import Task
from bert_tasks.tasks.squad.config import SquadDataConfig
from bert_tasks.tasks.squad.data import load_squad_examples
from bert_tasks.tasks.squad.synthetic import write_synthetic_squad
from bert_tasks.tasks.squad.task import SQUAD, SQUAD_V2, SquadTask


def test_implements_the_task_protocol():
    assert isinstance(SQUAD, Task) and SQUAD.name == "squad" and SQUAD_V2.name == "squad_v2"
    assert SQUAD.head == "squad" and family_of(SQUAD.name).config_class is SquadDataConfig and SQUAD.num_labels(None) == 2


@pytest.mark.parametrize("positions", [[[3], [5], [0]], [3, 40, 0]])  # 2-D labels, and one past the sequence
def test_loss_equals_hf_bert_for_question_answering(positions):
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
    model = BertForQuestionAnswering(config).eval()
    input_ids = torch.randint(0, 99, (3, 13))
    start = torch.tensor(positions)
    end = torch.tensor([[7], [12], [0]]) if start.dim() == 2 else torch.tensor([7, 12, 99])
    with torch.no_grad():
        outputs = model(input_ids=input_ids, start_positions=start, end_positions=end)
    ours = SQUAD.loss(outputs, {"start_positions": start, "end_positions": end})
    assert torch.isfinite(ours) and ours.item() > 0
    torch.testing.assert_close(ours, outputs.loss, rtol=0, atol=1e-6)


def test_collate_pads_to_a_multiple_of_eight_and_drops_bookkeeping():
    task = SquadTask()
    task.pad_token_id = 7
    features = [
        {"input_ids": [101, 5, 6, 102], "token_type_ids": [0, 0, 1, 1], "attention_mask": [1, 1, 1, 1], "start_positions": 1, "end_positions": 2, "example_id": "a", "offset_mapping": [[-1, -1]] * 4},
        {"input_ids": list(range(10)), "token_type_ids": [1] * 10, "attention_mask": [1] * 10, "start_positions": 0, "end_positions": 0, "example_id": "b", "offset_mapping": [[-1, -1]] * 10},
    ]
    batch = task.collate(features)
    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"}
    assert batch["input_ids"].shape == (2, 16) and batch["input_ids"].dtype == torch.long
    assert batch["input_ids"][0].tolist() == [101, 5, 6, 102] + [7] * 12
    assert batch["attention_mask"][0].tolist() == [1] * 4 + [0] * 12 and batch["attention_mask"][1].sum() == 10
    assert batch["token_type_ids"][1].tolist() == [1] * 10 + [0] * 6
    assert batch["start_positions"].tolist() == [1, 0]
    assert task.collate(features[:1])["input_ids"].shape == (1, 8)


@pytest.mark.parametrize("task", [SQUAD, SQUAD_V2], ids=lambda t: t.name)
def test_oracle_logits_score_perfectly_through_the_whole_data_path(tmp_path, tokenizer, task):
    """Labels from training windows, turned into logits, must come back as the gold answers."""
    version_2 = task is SQUAD_V2
    path = write_synthetic_squad(tmp_path / "s.json", n_articles=2, seed=11, version_2=version_2)
    examples = load_squad_examples(path, version_2=version_2)
    cfg = SquadDataConfig(max_seq_length=64, doc_stride=16, max_query_length=24, version_2_with_negative=version_2)
    train = task.preprocess(examples, tokenizer, cfg, train=True)
    evaluation = task.preprocess(examples, tokenizer, cfg, train=False)
    batch = task.collate([train[i] for i in range(4)])
    assert batch["input_ids"].shape[1] % 8 == 0 and "offset_mapping" not in batch

    starts, ends = [], []
    for features in train:
        n = len(features["input_ids"])
        s, e = np.full(n, -5.0, dtype=np.float32), np.full(n, -5.0, dtype=np.float32)
        s[features["start_positions"]] += 10.0
        e[features["end_positions"]] += 10.0
        starts.append(s)
        ends.append(e)
    predictions = task.postprocess(examples, evaluation, starts, ends, cfg)
    scores = task.metrics(predictions, examples)
    assert scores["exact_match"] == 100.0 and scores["f1"] == 100.0 and scores["total"] == len(examples)
    if version_2:
        assert scores["NoAns_exact"] == 100.0 and scores["HasAns_exact"] == 100.0
        assert set(predictions.null_odds) == set(examples["id"])

"""The offline seqeval module against scores worked out by hand, with conlleval's reading of the tags."""

from __future__ import annotations

import pytest

from bert_tasks.metrics import load_metric


def score(predicted, gold):
    return load_metric("seqeval").compute(predictions=predicted, references=gold)


def test_a_partial_match_is_a_miss_and_a_false_positive():
    # gold: PER(0-1), LOC(3); predicted: PER(0) only half, LOC(3) right -> 1 of 2 predicted right, 1 of 2 found
    result = score([["B-PER", "O", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]])
    assert result["overall_precision"] == 0.5 and result["overall_recall"] == 0.5 and result["overall_f1"] == 0.5
    assert result["overall_accuracy"] == 0.75
    assert result["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "number": 1}
    assert result["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "number": 1}


def test_a_type_mismatch_counts_for_neither():
    result = score([["B-ORG", "I-ORG", "O"]], [["B-PER", "I-PER", "O"]])
    assert result["overall_f1"] == 0.0 and result["PER"]["number"] == 1 and result["ORG"]["number"] == 0
    assert result["ORG"]["precision"] == 0.0


def test_adjacent_entities_of_one_type_are_two():
    gold = [["B-PER", "B-PER", "I-PER", "O"]]  # PER(0), PER(1-2)
    result = score([["B-PER", "I-PER", "I-PER", "O"]], gold)  # one PER(0-2): matches neither
    assert result["overall_precision"] == 0.0 and result["overall_recall"] == 0.0
    assert score(gold, gold)["PER"]["number"] == 2


def test_i_after_o_starts_an_entity_as_in_conlleval():
    # "O I-PER I-PER" is the entity PER(1-2); so is "O B-PER I-PER": the two spell the same entity
    result = score([["O", "I-PER", "I-PER", "O", "I-LOC"]], [["O", "B-PER", "I-PER", "O", "B-LOC"]])
    assert result["overall_f1"] == 1.0
    # an I- of another type ends the entity and starts a new one: PER(0), LOC(1)
    result = score([["B-PER", "I-LOC"]], [["B-PER", "B-LOC"]])
    assert result["overall_f1"] == 1.0 and result["LOC"]["number"] == 1


def test_bioes():
    gold = [["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-MISC"]]
    result = score([["S-PER", "O", "B-LOC", "E-LOC", "O", "S-MISC"]], gold)  # LOC(2-3) is not LOC(2-4)
    assert result["overall_precision"] == pytest.approx(2 / 3) and result["overall_recall"] == pytest.approx(2 / 3)
    assert result["overall_f1"] == pytest.approx(2 / 3) and result["LOC"]["f1"] == 0.0
    assert result["overall_accuracy"] == pytest.approx(4 / 6)


def test_micro_f1_over_sentences_and_no_entities():
    result = score([["B-PER"], ["O"], ["B-LOC", "O"]], [["B-PER"], ["B-PER"], ["B-LOC", "B-LOC"]])
    # 2 predicted, both right; 4 gold -> P 1, R 0.5, F1 2/3
    assert result["overall_precision"] == 1.0 and result["overall_recall"] == 0.5
    assert result["overall_f1"] == pytest.approx(2 / 3) and result["PER"]["number"] == 2
    none = score([["O", "O"]], [["O", "O"]])
    assert none["overall_f1"] == 0.0 and none["overall_accuracy"] == 1.0

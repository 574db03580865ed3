"""Reading NER data: CoNLL columns, JSON Lines with names or ids, the Hub's ClassLabel names, the tag set and scheme."""

from __future__ import annotations

import json

import datasets
import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.ner.config import NerDataConfig
from bert_tasks.tasks.ner.data import RawSplit, detect_scheme, infer_labels, load_ner_data, read_file
from conftest import sentences, write_conll, write_jsonl


def test_conll_reads_the_last_column_skips_docstart_and_keeps_lines(tmp_path):
    rows = sentences(5, 0)
    path = write_conll(tmp_path / "t.conll", rows, columns=4)
    split = read_file(path)
    assert split.tokens == [w for w, _ in rows] and split.tags == [t for _, t in rows]
    assert split.lines[0] == 3  # after the -DOCSTART- line and its blank line


def test_jsonl_names_and_ner_tags_ids(tmp_path):
    rows = sentences(4, 0)
    by_name = load_ner_data(NerDataConfig(train_file=str(write_jsonl(tmp_path / "a.jsonl", rows))),
                            splits=("train",))
    present = {t for _, tags in rows for t in tags}
    assert by_name.labels == [t for t in ("O", "B-LOC", "I-LOC", "B-PER", "I-PER") if t in present]
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    ids = [(w, [labels.index(t) for t in tags]) for w, tags in rows]
    by_id = load_ner_data(NerDataConfig(train_file=str(write_jsonl(tmp_path / "b.jsonl", ids, key="ner_tags")),
                                        labels=",".join(labels)), splits=("train",))
    assert by_id.labels == labels
    assert [[labels[i] for i in t] for t in by_id.splits["train"]["tags"]] == [t for _, t in rows]


def test_the_inferred_tag_set_is_o_first_then_type_then_bies():
    split = RawSplit("x", tokens=[["a"] * 6], tags=[["S-PER", "B-LOC", "E-LOC", "O", "I-PER", "B-PER"]], lines=[1])
    assert infer_labels(split) == ["O", "B-LOC", "E-LOC", "B-PER", "I-PER", "S-PER"]


@pytest.mark.parametrize("tags, scheme", [
    (["O", "I-PER", "I-PER", "O", "I-LOC"], "IO"),
    (["B-PER", "I-PER", "O", "B-LOC"], "BIO"),
    (["O", "I-PER", "I-PER", "B-PER", "O"], "IOB1"),
    (["O", "I-PER", "B-LOC", "O"], "BIO"),  # a B- after O or another type: not IOB1
    (["S-PER", "B-LOC", "E-LOC"], "BIOES"),
])
def test_the_scheme_is_found(tags, scheme):
    assert detect_scheme(RawSplit("x", tokens=[["a"] * len(tags)], tags=[tags], lines=[1])) == scheme


def test_an_i_after_o_is_accepted_in_bio(tmp_path):
    rows = [(["Ada", "went"], ["I-PER", "O"]), (["Alan", "Turing"], ["B-PER", "I-PER"])]
    data = load_ner_data(NerDataConfig(train_file=str(write_conll(tmp_path / "t.conll", rows)), tag_scheme="BIO"),
                         splits=("train",))
    assert data.scheme == "BIO" and len(data.splits["train"]) == 2


def test_a_hub_dataset_reads_its_classlabel_names(monkeypatch):
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names))})
    split = datasets.Dataset.from_dict({"tokens": [["Ada", "in", "Paris"], []], "ner_tags": [[1, 0, 3], []]},
                                       features=features)
    seen = {}

    def load_dataset(name, config=None):
        seen["args"] = (name, config)
        return datasets.DatasetDict({"train": split, "validation": split})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = load_ner_data(NerDataConfig(dataset="conll2003"))
    assert seen["args"] == ("conll2003", None) and data.labels == names and data.scheme == "BIO"
    assert data.splits["validation"]["tags"] == [[1, 0, 3]]  # the empty sentence is dropped


def test_max_samples_and_the_recorded_line(tmp_path, ner_files):
    data = load_ner_data(NerDataConfig(train_file=str(ner_files / "train.conll"),
                                       validation_file=str(ner_files / "dev.conll"), max_eval_samples=3))
    assert len(data.splits["validation"]) == 3 and len(data.splits["train"]) == 48
    assert data.splits["train"]["line"][0] == 3


def test_dev_tags_outside_the_training_tags_are_refused(tmp_path):
    train = write_conll(tmp_path / "train.conll", [(["Ada"], ["B-PER"]), (["x"], ["O"])])
    dev = write_conll(tmp_path / "dev.conll", [(["Paris"], ["B-LOC"])])
    with pytest.raises(BertTasksError, match="B-LOC.*not among the training tags"):
        load_ner_data(NerDataConfig(train_file=str(train), validation_file=str(dev)))

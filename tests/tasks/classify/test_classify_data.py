"""Reading the user's classification files: labels and problem type inferred, every source read alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.classify.config import ClassifyDataConfig
from bert_tasks.tasks.classify.data import MULTI, REGRESSION, SINGLE, load_splits


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def jsonl(path: Path, rows: list[dict]) -> str:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


def splits(tmp_path, train: str, dev: str | None = None, **settings):
    cfg = ClassifyDataConfig(train_file=train, validation_file=dev, **settings)
    return load_splits(cfg, ("train", "validation"))


def test_string_labels_sorted_and_dev_mapped_to_the_same_ids(tmp_path):
    train = write(tmp_path / "t.csv", "text,label\nfine,pos\nbad,neg\nmeh,neu\nok,pos\n")
    dev = write(tmp_path / "d.csv", "text,label\nnice,pos\nawful,neg\n")
    found, space = splits(tmp_path, train, dev)
    assert space.problem_type == SINGLE and space.names == ("neg", "neu", "pos")
    assert found["train"]["label"] == [2, 0, 1, 2] and found["validation"]["label"] == [2, 0]
    assert found["train"]["text_a"][1] == "bad" and "text_b" not in found["train"].column_names


def test_integer_labels_in_numeric_order_not_string_order(tmp_path):
    train = write(tmp_path / "t.tsv", "sentence\tlabel\na\t10\nb\t2\nc\t1\n")
    _, space = splits(tmp_path, train)
    assert space.names == ("1", "2", "10") and space.problem_type == SINGLE


def test_fixed_labels_keep_their_order_and_a_dev_label_outside_them_is_named(tmp_path):
    train = write(tmp_path / "t.csv", "text,label\na,x\nb,y\n")
    dev = write(tmp_path / "d.csv", "text,label\na,x\nb,z\n")
    with pytest.raises(BertTasksError) as err:
        splits(tmp_path, train, dev, labels="y,x")
    assert err.value.record == "line 3" and "'z'" in err.value.reason and Path(err.value.file).name == "d.csv"
    found, space = splits(tmp_path, train, labels="y,x")
    assert space.names == ("y", "x") and found["train"]["label"] == [1, 0]


def test_fractional_numbers_are_regression_and_pairs_are_found(tmp_path):
    train = write(tmp_path / "t.csv", "sentence1,sentence2,label\na,b,0.5\nc,d,4\ne,f,2.25\n")
    found, space = splits(tmp_path, train)
    assert space.problem_type == REGRESSION and space.num_labels == 1
    assert found["train"]["label"] == [0.5, 4.0, 2.25] and found["train"]["text_b"] == ["b", "d", "f"]


def test_lists_are_multi_label_as_multi_hot_rows(tmp_path):
    train = jsonl(tmp_path / "t.jsonl", [{"text": "a", "labels": ["x", "z"]}, {"text": "b", "labels": []},
                                         {"text": "c", "labels": ["y"]}])
    found, space = splits(tmp_path, train)
    assert space.problem_type == MULTI and space.names == ("x", "y", "z")
    assert found["train"]["label"] == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


def test_a_delimiter_makes_csv_multi_label(tmp_path):
    train = write(tmp_path / "t.csv", "text,label\na,x|y\nb,y\n")
    found, space = splits(tmp_path, train, label_delimiter="|")
    assert space.problem_type == MULTI and found["train"]["label"] == [[1.0, 1.0], [0.0, 1.0]]


def test_columns_named_by_the_user(tmp_path):
    train = jsonl(tmp_path / "t.jsonl", [{"q": "a", "a": "b", "y": 1}, {"q": "c", "a": "d", "y": 0}])
    found, space = splits(tmp_path, train, text_columns="q,a", label_column="y")
    assert found["train"]["text_a"] == ["a", "c"] and found["train"]["text_b"] == ["b", "d"]
    assert space.names == ("0", "1")


def test_parquet_reads_like_csv(tmp_path):
    import datasets

    path = tmp_path / "t.parquet"
    datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["u", "v"]}).to_parquet(str(path))
    found, space = splits(tmp_path, str(path))
    assert space.names == ("u", "v") and found["train"]["label"] == [0, 1]


@pytest.mark.parametrize("content, expect", [
    ("text,label\na,1\nb,pos\n", "mixed label types"),
    ("text,label\na,x\nb,x\n", "at least two labels"),
    ("text,label\na,\nb,x\n", "empty label"),
    ("title,label\na,x\nb,y\n", "no text column"),
])
def test_refusals_name_the_record(tmp_path, content, expect):
    train = write(tmp_path / "t.csv", content)
    with pytest.raises(BertTasksError) as err:
        splits(tmp_path, train)
    assert expect in err.value.reason


def test_a_token_level_file_is_sent_to_ner(tmp_path):
    train = jsonl(tmp_path / "t.jsonl", [{"tokens": ["a", "b"], "tags": ["O", "B-X"]}])
    with pytest.raises(BertTasksError, match="finetune ner"):
        splits(tmp_path, train)


def test_a_hub_dataset_reads_its_class_label_names(monkeypatch):
    """The Hub path (offline here: load_dataset replaced) reads ClassLabel ids as their names, as files are read."""
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    hub = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [1, 0, 1]}, features=features),
        "validation": datasets.Dataset.from_dict({"text": ["d"], "label": [0]}, features=features)})
    seen = {}

    def load_dataset(name, config=None):
        seen["args"] = (name, config)
        return hub

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr("bert_tasks.tasks.classify.data.require_hub", lambda what: None)
    found, space = load_splits(ClassifyDataConfig(dataset="someone/reviews", dataset_config="en"),
                               ("train", "validation"))
    assert seen["args"] == ("someone/reviews", "en")
    assert space.names == ("neg", "pos") and found["train"]["label"] == [1, 0, 1]
    assert found["validation"]["label"] == [0]

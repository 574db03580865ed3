"""Reading GLUE: the official layout of all nine tasks, user files, the Hub path, and one-line errors for bad input."""

from __future__ import annotations

import json
import shutil

import datasets
import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.glue.config import GlueDataConfig
from bert_tasks.tasks.glue.run import expand_configs
from bert_tasks.tasks.glue.data import find_tasks, load_glue_splits, read_glue_tsv, read_user_file
from bert_tasks.tasks.glue.spec import GLUE_TASKS, TASK_NAMES, id2label, label2id

EXPECTED_SPLITS = {
    "mnli": {"train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched", "ax"},
    **{task: {"train", "validation", "test"} for task in TASK_NAMES if task != "mnli"},
}


def rows(ds) -> list[tuple]:
    return [(r["idx"], r["text_a"], r.get("text_b"), r["label"]) for r in ds]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_reads_official_layout_of_every_task(glue_layout, task):
    root, expected = glue_layout
    splits = load_glue_splits(GlueDataConfig(task=task, data_dir=str(root), do_predict=True))
    assert set(splits) == EXPECTED_SPLITS[task]
    for split, ds in splits.items():
        got = rows(ds)
        # exact for STS-B too: scores are kept as float64, the value the file gives
        assert got == expected[task][split], split
        columns = ["idx", "text_a", "text_b", "label"] if GLUE_TASKS[task].is_pair else ["idx", "text_a", "label"]
        assert ds.column_names == columns
        assert ds.features["label"].dtype == ("float64" if task == "stsb" else "int64")


def test_quotes_are_taken_literally(glue_layout):
    root, _ = glue_layout
    texts = {t for task in TASK_NAMES for ds in load_glue_splits(GlueDataConfig(task=task, data_dir=str(root))).values() for t in ds["text_a"]}
    assert {'he said "yes', '"quoted start', 'a "b" c'} <= texts


def test_default_splits_skip_test_unless_predicting(glue_layout):
    root, _ = glue_layout
    assert set(load_glue_splits(GlueDataConfig(task="rte", data_dir=str(root)))) == {"train", "validation"}
    assert set(load_glue_splits(GlueDataConfig(task="rte", data_dir=str(root)), groups=["validation"])) == {"validation"}


def test_sample_limits_apply_to_every_split_including_mnli_mismatched(glue_layout):
    root, expected = glue_layout
    cfg = GlueDataConfig(task="mnli", data_dir=str(root), do_predict=True, max_train_samples=4, max_eval_samples=3, max_predict_samples=2)
    splits = load_glue_splits(cfg)
    assert {name: len(ds) for name, ds in splits.items()} == {
        "train": 4, "validation_matched": 3, "validation_mismatched": 3, "test_matched": 2, "test_mismatched": 2, "ax": 2,
    }
    assert rows(splits["validation_mismatched"]) == expected["mnli"]["validation_mismatched"][:3]


def test_find_tasks_and_task_all(glue_layout, tmp_path):
    root, _ = glue_layout
    assert find_tasks(root) == list(TASK_NAMES)
    shutil.copytree(root / "RTE", tmp_path / "RTE")
    shutil.copytree(root / "CoLA", tmp_path / "CoLA")
    (tmp_path / "notes").mkdir()
    assert find_tasks(tmp_path) == ["cola", "rte"]
    assert [c.task for c in expand_configs(GlueDataConfig(task="all", data_dir=str(tmp_path)))] == ["cola", "rte"]
    with pytest.raises(BertTasksError, match="no GLUE task folders"):
        expand_configs(GlueDataConfig(task="all", data_dir=str(tmp_path / "notes")))


def test_data_dir_may_be_the_task_folder_but_not_another_tasks(glue_layout):
    root, expected = glue_layout
    splits = load_glue_splits(GlueDataConfig(task="rte", data_dir=str(root / "RTE")))
    assert rows(splits["validation"]) == expected["rte"]["validation"]
    # RTE and WNLI files look alike: a WNLI folder must not be read as RTE
    with pytest.raises(BertTasksError, match="no RTE folder"):
        load_glue_splits(GlueDataConfig(task="rte", data_dir=str(root / "WNLI")))


def test_label_helpers_follow_hub_order():
    assert id2label("mnli") == {0: "entailment", 1: "neutral", 2: "contradiction"}
    assert label2id("qnli") == {"entailment": 0, "not_entailment": 1}
    assert id2label("sst2", names="hub") == {0: "negative", 1: "positive"}
    assert id2label("stsb") == {0: "score"}
    assert [GLUE_TASKS[t].num_labels for t in TASK_NAMES] == [2, 2, 2, 1, 2, 3, 2, 2, 2]


# --- user files ----------------------------------------------------------------------------------


def test_user_csv_jsonl_and_tsv(tmp_path):
    csv_file = tmp_path / "train.csv"
    csv_file.write_text('sentence,label\n"good, really",positive\nbad,0\n', encoding="utf-8")
    assert rows(read_user_file(csv_file, "sst2")) == [(0, "good, really", None, 1), (1, "bad", None, 0)]

    jsonl = tmp_path / "dev.jsonl"
    jsonl.write_text(json.dumps({"question": "why?", "sentence": "because", "label": "not_entailment", "idx": 7}) + "\n\n"
                     + json.dumps({"question": "who?", "sentence": "me", "label": 0, "idx": 9}) + "\n", encoding="utf-8")
    assert rows(read_user_file(jsonl, "qnli", split="validation")) == [(7, "why?", "because", 1), (9, "who?", "me", 0)]

    stsb = tmp_path / "sts.jsonl"
    stsb.write_text(json.dumps({"sentence1": "a", "sentence2": "b", "label": 3.25}) + "\n", encoding="utf-8")
    assert read_user_file(stsb, "stsb")[0]["label"] == pytest.approx(3.25)

    test_tsv = tmp_path / "test.tsv"
    test_tsv.write_text('question1\tquestion2\tlabel\nis "it\tno\t-1\n', encoding="utf-8")
    assert rows(read_user_file(test_tsv, "qqp", split="test")) == [(0, 'is "it', "no", -1)]


def test_user_files_through_config(tmp_path):
    train, test = tmp_path / "t.jsonl", tmp_path / "p.csv"
    train.write_text("\n".join(json.dumps({"premise": f"p{i}", "hypothesis": "h", "label": "neutral"}) for i in range(5)) + "\n")
    test.write_text("sentence1,sentence2\nx,y\n")
    cfg = GlueDataConfig(task="mnli", train_file=str(train), test_file=str(test), do_predict=True, max_train_samples=2)
    splits = load_glue_splits(cfg)
    assert set(splits) == {"train", "test"} and len(splits["train"]) == 2
    assert splits["train"][1] == {"idx": 1, "text_a": "p1", "text_b": "h", "label": 1}
    assert splits["test"][0]["label"] == -1


# --- the Hub path --------------------------------------------------------------------------------


def test_hub_dataset_offline_is_a_one_line_error():
    with pytest.raises(BertTasksError, match="cannot load the Hub dataset nyu-mll/glue") as err:
        load_glue_splits(GlueDataConfig(task="sst2", dataset="glue"))
    assert "\n" not in str(err.value)


def test_hub_dataset_is_normalized(monkeypatch):
    names = ["entailment", "neutral", "contradiction"]

    def split(n, label):
        features = datasets.Features({"premise": datasets.Value("string"), "hypothesis": datasets.Value("string"),
                                      "label": datasets.ClassLabel(names=names), "idx": datasets.Value("int32")})
        return datasets.Dataset.from_dict({"premise": ["p"] * n, "hypothesis": ["h"] * n, "label": [label] * n, "idx": list(range(n))}, features=features)

    def fake_load(path, config):
        assert path == "nyu-mll/glue"
        if config == "ax":
            return datasets.DatasetDict(test=split(2, -1))
        return datasets.DatasetDict(train=split(3, 2), validation_matched=split(4, 1), validation_mismatched=split(5, 0), test_matched=split(1, -1), test_mismatched=split(1, -1))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    splits = load_glue_splits(GlueDataConfig(task="mnli", dataset="glue", do_predict=True, max_eval_samples=2))
    assert {k: len(v) for k, v in splits.items()} == {"train": 3, "validation_matched": 2, "validation_mismatched": 2, "test_matched": 1, "test_mismatched": 1, "ax": 2}
    assert splits["train"].column_names == ["idx", "text_a", "text_b", "label"]
    assert splits["train"].features["label"].dtype == "int64"
    assert splits["train"][0] == {"idx": 0, "text_a": "p", "text_b": "h", "label": 2}


# --- bad input: one line naming the file, the line and the reason ---------------------------------

BAD_FILES = {
    "wrong column count": ("SST-2/train.tsv", "sentence\tlabel\ngood\t1\ntoo\tmany\t1\n", "line 3", "expected 2 columns"),
    "wrong column count in CoLA": ("CoLA/train.tsv", "gj04\t1\t\tfine\ngj04\t0\n", "line 2", "expected 4 columns"),
    "unknown label": ("RTE/train.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tentailed\n", "line 3", "unknown label 'entailed'"),
    "float label for classification": ("SST-2/train.tsv", "sentence\tlabel\ngood\t0.5\n", "line 2", "float label '0.5'"),
    "empty sentence": ("MRPC/train.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tone\t \n", "line 2", "empty '#2 String'"),
    "missing header": ("SST-2/train.tsv", "good movie\t1\nbad movie\t0\n", "line 1", "missing header"),
    "empty file": ("QNLI/train.tsv", "", "line 1", "file is empty"),
    "header only": ("QNLI/train.tsv", "index\tquestion\tsentence\tlabel\n", "line 2", "no examples"),
    "score not a number": ("STS-B/train.tsv", "\t".join(["index", "g", "f", "y", "o", "s1", "s2", "sentence1", "sentence2", "score"]) + "\n" + "\t".join(["0", "g", "f", "y", "o", "s", "s", "a", "b", "high"]) + "\n", "line 2", "not a number"),
    "index not an integer": ("WNLI/train.tsv", "index\tsentence1\tsentence2\tlabel\nx1\ta\tb\t1\n", "line 2", "index 'x1' is not an integer"),
    "mnli label off the list": ("MNLI/train.tsv", "index\tsentence1\tsentence2\tgold_label\n0\ta\tb\t-\n", "line 2", "unknown label '-'"),
    "not utf-8": ("SST-2/train.tsv", b"sentence\tlabel\nok\t1\n\xff\xfe\t0\n", "line 3", "not UTF-8"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_glue_file_is_one_line_naming_file_and_line(tmp_path, case):
    relpath, content, line, reason = BAD_FILES[case]
    path = tmp_path / relpath
    path.parent.mkdir(parents=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    for dev in ("dev_matched.tsv", "dev_mismatched.tsv") if "MNLI" in relpath else ("dev.tsv",):
        (path.parent / dev).write_text("")
    task = next(t for t, s in GLUE_TASKS.items() if s.folder == path.parent.name)
    with pytest.raises(BertTasksError) as err:
        load_glue_splits(GlueDataConfig(task=task, data_dir=str(tmp_path)))
    message = err.value.one_line()
    assert message.startswith(f"{path}: {line}: "), message
    assert reason in message and "\n" not in message


BAD_USER_FILES = {
    "bad json": ("d.jsonl", '{"sentence": "a", "label": 1}\n{"sentence": "b", label: 1}\n', "sst2", "line 2", "not a JSON object"),
    "json key missing": ("d.jsonl", '{"sentence": "a", "label": 1}\n\n{"sentence": "b"}\n', "sst2", "line 3", "missing key 'label'"),
    "json float label": ("d.jsonl", '{"sentence": "a", "label": 1.0}\n', "sst2", "line 1", "float label '1.0'"),
    "csv unknown label": ("d.csv", "sentence,label\na,positive\nb,great\n", "sst2", "line 3", "unknown label 'great'"),
    "pair task, one text column": ("d.csv", "sentence,label\na,entailment\n", "rte", "line 1", "needs two text columns"),
    "csv wrong width": ("d.csv", "sentence1,sentence2,label\na,b\n", "rte", "line 2", "expected 3 columns"),
    "no label column": ("d.csv", "sentence1,sentence2\na,b\n", "rte", "line 1", "no 'label' column"),
    "empty csv": ("d.csv", "\n\n", "sst2", "line 1", "file is empty"),
}


@pytest.mark.parametrize("case", BAD_USER_FILES)
def test_bad_user_file_is_one_line_naming_file_and_line(tmp_path, case):
    name, content, task, line, reason = BAD_USER_FILES[case]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BertTasksError) as err:
        load_glue_splits(GlueDataConfig(task=task, train_file=str(path)))
    message = err.value.one_line()
    assert message.startswith(f"{path}: {line}: "), message
    assert reason in message and "\n" not in message


def test_missing_file_names_it(glue_layout, tmp_path):
    root, _ = glue_layout
    shutil.copytree(root / "MNLI", tmp_path / "MNLI")
    (tmp_path / "MNLI" / "dev_mismatched.tsv").unlink()
    with pytest.raises(BertTasksError) as err:
        load_glue_splits(GlueDataConfig(task="mnli", data_dir=str(tmp_path)))
    assert err.value.one_line() == f"{tmp_path / 'MNLI' / 'dev_mismatched.tsv'}: missing file for task mnli"
    with pytest.raises(BertTasksError, match="missing file"):
        read_glue_tsv(tmp_path / "nope.tsv", "sst2", split="train")


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"task": "glue2", "data_dir": "."}, "unknown GLUE task 'glue2'"),
        ({"task": "sst2"}, "exactly one data source"),
        ({"task": "sst2", "data_dir": ".", "train_file": "x.csv"}, "exactly one data source"),
        ({"task": "sst2", "dataset": "imdb"}, "unknown dataset 'imdb'"),
        ({"task": "all", "dataset": "glue"}, "task 'all' needs data_dir"),
        ({"task": "sst2", "data_dir": ".", "max_seq_length": 4}, "max_seq_length"),
        ({"task": "sst2", "data_dir": ".", "max_eval_samples": 0}, "max_eval_samples"),
        ({"task": "sst2", "train_file": "/nonexistent/t.csv"}, "train_file does not exist"),
        ({"task": "sst2", "data_dir": "/nonexistent"}, "data_dir is not a folder"),
    ],
)
def test_config_validation(kwargs, reason):
    with pytest.raises(BertTasksError, match=reason.replace("(", r"\(")):
        GlueDataConfig(**kwargs).validate()

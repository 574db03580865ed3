"""Corpus loading: text and JSON Lines files, several files, streaming, Hub datasets, and every bad-input error."""

import json
import os

import datasets
import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.mlm.config import MlmDataConfig
from bert_tasks.tasks.mlm.corpus import load_corpus


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def texts(split):
    return [row["text"] for row in split]


def load(**settings):
    return load_corpus(MlmDataConfig(**settings).validate())


def test_text_file_drops_blank_lines_and_holds_out_the_first_documents(tmp_path):
    docs = [f" = Heading {i} = " if i % 10 == 0 else f"paragraph number {i} ." for i in range(40)]
    lines = [line for doc in docs for line in (doc, "", "   ")]
    corpus = load(train_files=[write_lines(tmp_path / "a.txt", lines)], validation_split=0.1, validation_min_words=0)
    assert isinstance(corpus, datasets.DatasetDict) and corpus["train"].column_names == ["text"]
    assert texts(corpus["validation"]) == docs[:4]
    assert texts(corpus["train"]) == docs[4:]


def test_the_held_out_text_has_a_floor_of_words_within_half_the_corpus(tmp_path):
    docs = [" ".join(f"w{i}" for _ in range(10)) for i in range(40)]  # 10 words each
    path = write_lines(tmp_path / "a.txt", docs)
    assert len(load(train_files=[path], validation_split=0.1, validation_min_words=95)["validation"]) == 10
    assert len(load(train_files=[path], validation_split=0.1, validation_min_words=100)["validation"]) == 10
    assert len(load(train_files=[path], validation_split=0.1, validation_min_words=101)["validation"]) == 11
    assert len(load(train_files=[path], validation_split=0.1, validation_min_words=10_000)["validation"]) == 20  # half
    assert len(load(train_files=[path], validation_split=0.6, validation_min_words=10)["validation"]) == 24  # the share


def test_jsonl_with_another_text_column_and_several_train_files(tmp_path):
    first = tmp_path / "one.jsonl"
    first.write_text('{"body": "alpha beta", "id": 1}\n\n{"body": "gamma", "id": 2}\n{"body": "  ", "id": 3}\n', encoding="utf-8")
    second = write_lines(tmp_path / "two.txt", ["delta", "", "epsilon zeta"])
    validation = write_lines(tmp_path / "valid.jsonl", [json.dumps({"body": "eta", "other": [1]})])
    corpus = load(train_files=[str(first), second], validation_file=validation, text_column="body")
    assert texts(corpus["train"]) == ["alpha beta", "gamma", "delta", "epsilon zeta"]
    assert texts(corpus["validation"]) == ["eta"]
    assert corpus["validation"].column_names == ["text"]


def test_byte_order_mark_and_windows_line_ends_are_not_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffone\r\n\r\ntwo\r\n".encode("utf-8"))
    corpus = load(train_files=[str(path)], validation_file=write_lines(tmp_path / "v.txt", ["three"]))
    assert texts(corpus["train"]) == ["one", "two"]


def test_streaming_gives_the_same_documents(tmp_path, make_docs):
    docs = make_docs(30, seed=3)
    train = write_lines(tmp_path / "t.txt", [d for doc in docs for d in (doc, "")])
    validation = write_lines(tmp_path / "v.txt", ["held out one", "held out two"])
    in_memory = load(train_files=[train], validation_file=validation)
    streamed = load(train_files=[train], validation_file=validation, streaming=True)
    assert isinstance(streamed, datasets.IterableDatasetDict)
    assert isinstance(streamed["train"], datasets.IterableDataset)
    assert texts(streamed["train"]) == texts(in_memory["train"]) == docs
    assert texts(streamed["validation"]) == ["held out one", "held out two"]
    assert texts(streamed["train"]) == docs, "a stream must be readable again for the next epoch"


def test_streaming_without_validation_file_holds_out_the_first_lines(tmp_path, make_docs):
    docs = make_docs(12, seed=4)
    corpus = load(train_files=[write_lines(tmp_path / "t.txt", docs)], streaming=True, streaming_validation_lines=5)
    assert texts(corpus["validation"]) == docs[:5]
    assert texts(corpus["train"]) == docs[5:]


def test_changed_file_is_read_again_not_served_from_cache(tmp_path):
    path = tmp_path / "t.txt"
    validation = write_lines(tmp_path / "v.txt", ["v"])
    write_lines(path, ["first version"])
    assert texts(load(train_files=[str(path)], validation_file=validation)["train"]) == ["first version"]
    write_lines(path, ["second, longer version", "and more"])
    assert texts(load(train_files=[str(path)], validation_file=validation)["train"]) == ["second, longer version", "and more"]


@pytest.mark.parametrize("streaming", [False, True])
def test_hub_dataset_path_loads_a_local_dataset_folder(tmp_path, streaming):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    write_lines(folder / "train.jsonl", [json.dumps({"content": t, "n": i}) for i, t in enumerate(["a b", "", "c d"])])
    write_lines(folder / "validation.jsonl", [json.dumps({"content": "e f", "n": 9})])
    corpus = load(dataset=str(folder), text_column="content", streaming=streaming)
    assert texts(corpus["train"]) == ["a b", "c d"]
    assert texts(corpus["validation"]) == ["e f"]


@pytest.mark.parametrize("streaming", [False, True])
def test_hub_dataset_offline_is_one_clear_line(streaming):
    with pytest.raises(BertTasksError) as err:
        load(dataset="wikitext", dataset_config="wikitext-2-raw-v1", streaming=streaming)
    message = str(err.value)
    assert message.startswith("wikitext: cannot load the dataset") and "\n" not in message


def bad_input(tmp_path, name, data: bytes, **settings):
    path = tmp_path / name
    path.write_bytes(data)
    settings.setdefault("validation_file", write_lines(tmp_path / "valid.txt", ["ok"]))
    with pytest.raises(BertTasksError) as err:
        corpus = load(train_files=[str(path)], **settings)
        list(corpus["train"])  # a streamed corpus reads on iteration
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    return message


@pytest.mark.parametrize("streaming", [False, True])
def test_non_utf8_text_names_file_and_line(tmp_path, streaming):
    message = bad_input(tmp_path, "latin1.txt", "fine\n\nstill fine\ncaf\xe9 au lait\n".encode("latin-1"), streaming=streaming)
    assert "line 4: not UTF-8 text: byte 0xe9 at column 4" in message


def test_binary_file_names_file_and_line(tmp_path):
    assert "line 2: binary data" in bad_input(tmp_path, "blob.txt", b"text\n\x00\x01\x02\xff\n")


def test_invalid_json_names_file_and_line(tmp_path):
    message = bad_input(tmp_path, "bad.jsonl", b'{"text": "ok"}\n\n{"text": "unterminated}\n')
    assert "line 3: invalid JSON" in message


def test_json_array_instead_of_json_lines_says_so(tmp_path):
    message = bad_input(tmp_path, "array.json", b'[{"text": "a"},\n{"text": "b"}]\n')
    assert "line 1: invalid JSON" in message and "JSON Lines" in message


@pytest.mark.parametrize(
    "line, reason",
    [
        (b'{"body": "x"}', "no 'text' field (fields: body)"),
        (b'{"text": 3}', "field 'text' is int, not a string"),
        (b'"text"', "expected a JSON object, got str"),
    ],
)
def test_jsonl_record_without_text_names_file_and_line(tmp_path, line, reason):
    message = bad_input(tmp_path, "rec.jsonl", b'{"text": "fine"}\n' + line + b"\n")
    assert message.endswith(f"line 2: {reason}")


@pytest.mark.parametrize("missing", ["train", "validation"])
def test_missing_file(tmp_path, missing):
    present, absent = write_lines(tmp_path / "present.txt", ["a", "b"]), str(tmp_path / "absent.txt")
    files = {"train": [absent], "validation_file": present} if missing == "train" else {"train": [present], "validation_file": absent}
    with pytest.raises(BertTasksError) as err:
        load(train_files=files["train"], validation_file=files["validation_file"])
    assert str(err.value) == f"{absent}: file not found"


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(BertTasksError, match="is a folder"):
        load(train_files=[str(tmp_path)])


@pytest.mark.parametrize("streaming", [False, True])
def test_blank_corpus_is_rejected(tmp_path, streaming):
    assert "no text: every line is blank" in bad_input(tmp_path, "blank.txt", b"\n   \n\t\n", streaming=streaming)


def test_single_document_cannot_be_split(tmp_path):
    with pytest.raises(BertTasksError, match="too few to hold out a validation split"):
        load(train_files=[write_lines(tmp_path / "one.txt", ["only one"])])


def test_short_stream_cannot_hold_out_all_lines(tmp_path):
    with pytest.raises(BertTasksError, match="streaming_validation_lines"):
        load(train_files=[write_lines(tmp_path / "few.txt", ["a", "b"])], streaming=True, streaming_validation_lines=2)


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "secret.txt"
    write_lines(path, ["x"])
    path.chmod(0)
    with pytest.raises(BertTasksError, match="not readable"):
        load(train_files=[str(path)])


def test_hub_dataset_without_the_text_column_names_the_columns(tmp_path):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    write_lines(folder / "train.jsonl", [json.dumps({"content": "a b"})])
    with pytest.raises(BertTasksError, match=r"no column 'text' \(columns: content\); set text_column$"):
        load(dataset=str(folder))

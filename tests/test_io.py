"""Crash-safe writes: atomic files and folders, output-folder protection, resumable logs."""

import json

import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.io import append_jsonl, atomic_directory, atomic_write_text, prepare_output_dir, write_json


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_failed_atomic_directory_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "ckpt") as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_non_empty_output_folder_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(BertTasksError, match="not empty"):
        prepare_output_dir(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "precious"
    prepare_output_dir(tmp_path, resume=True)
    assert (tmp_path / "keep.txt").exists()
    prepare_output_dir(tmp_path, overwrite=True)
    assert list(tmp_path.iterdir()) == []


def test_append_after_torn_line_starts_a_new_line(tmp_path):
    log = tmp_path / "train_log.jsonl"
    append_jsonl(log, {"step": 1})
    with open(log, "a") as f:
        f.write('{"step": 2, "lo')  # a kill mid-write
    append_jsonl(log, {"step": 3})
    lines = log.read_text().splitlines()
    assert json.loads(lines[0]) == {"step": 1} and json.loads(lines[-1]) == {"step": 3} and len(lines) == 3


def test_atomic_write_text_creates_parents(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "hi")
    assert (tmp_path / "a" / "b.txt").read_text() == "hi"

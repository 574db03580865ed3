"""Crash-safe writes: atomic files and folders, output-folder protection, resumable logs."""

import json
import shutil

import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.io import append_jsonl, atomic_directory, atomic_write_text, prepare_output_dir, write_json

from line_interrupts import interrupt_on_every_line


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


def test_a_ctrl_c_on_any_line_of_an_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"a": "old"})

    def check(where):
        assert [p.name for p in tmp_path.iterdir()] == ["r.json"], where
        assert json.loads(target.read_text())["a"] in ("old", "new"), where
        write_json(target, {"a": "old"})

    assert interrupt_on_every_line(lambda: write_json(target, {"a": "new"}), check) > 20


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_a_ctrl_c_on_any_line_of_an_atomic_folder_leaves_the_old_folder_or_the_new_one(existing, tmp_path):
    final = tmp_path / "ckpt"

    def build():
        with atomic_directory(final) as tmp:
            (tmp / "weights").write_text("new")
            (tmp / "state").write_text("new")

    def reset():
        shutil.rmtree(final, ignore_errors=True)
        if existing:
            final.mkdir()
            (final / "weights").write_text("old")
            (final / "state").write_text("old")

    def check(where):
        names = [p.name for p in tmp_path.iterdir()]
        assert names in ([], ["ckpt"]) and (names or not existing), (where, names)
        if names:
            contents = {p.name: p.read_text() for p in final.iterdir()}
            assert contents in ({"weights": "old", "state": "old"}, {"weights": "new", "state": "new"}), where
        reset()

    reset()
    assert interrupt_on_every_line(build, check) > 50

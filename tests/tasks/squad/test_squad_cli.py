"""The SQuAD commands' contracts: dry runs, refusals, one-line errors for bad input, recipes, predict output."""

from __future__ import annotations

import json

import pytest
import yaml

from bert_tasks.config import list_recipes, read_yaml
from bert_tasks.tasks import resolve_recipe

from conftest import CONTEXT, cli, qa, squad_doc, write_doc

SQUAD_RECIPES = sorted(p for p in list_recipes() if p.stem.startswith("squad-") or p.stem == "quickstart")


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_dry_run_prints_run_qa_defaults_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("finetune", "squad", "--output-dir", out, "--dry-run", "--set", "train.seed=7", "--epochs", "1") == 0
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    train, data = config["train"], config["data"]
    assert (train["learning_rate"], train["batch_size"], data["max_seq_length"], data["doc_stride"]) == (3e-5, 12, 384, 128)
    assert (train["seed"], train["epochs"]) == (7, 1.0)  # --set and flags over the defaults
    assert data["dataset"] == "squad"  # run_qa.py's default data when none is given
    assert "would train task 'squad'" in printed and not out.exists()


def test_version_2_follows_the_flag_the_dataset_and_the_recipe(tmp_path, capsys):
    for argv in (["--version-2-with-negative"], ["--dataset", "squad_v2"], ["--recipe", "squad-v2-minilm-cpu"]):
        assert cli("finetune", "squad", "--output-dir", tmp_path / "x", "--dry-run", *argv) == 0
        config = yaml.safe_load(capsys.readouterr().out)
        assert config["task"] == "squad_v2" and config["data"]["version_2_with_negative"] is True, argv


def test_a_data_flag_replaces_the_recipe_source(tmp_path, capsys):
    from bert_tasks.cli.training import resolve_command_recipe
    from bert_tasks.tasks import FAMILIES

    def resolve_squad_recipe(recipe, sets, values):
        return resolve_command_recipe(FAMILIES["squad"], recipe, sets, values)

    recipe = resolve_squad_recipe("quickstart", None, {"train_file": "t.json", "validation_file": "v.json"})
    assert (recipe.data.synthetic, recipe.data.train_file, recipe.data.dataset) == (False, "t.json", None)
    recipe = resolve_squad_recipe("squad-v1-bert-base", None, {"train_file": "t.json"})
    assert (recipe.data.dataset, recipe.data.train_file) == (None, "t.json")
    assert resolve_squad_recipe("quickstart", None, {}).data.synthetic is True


def test_no_data_and_no_network_points_at_the_quickstart(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    assert cli("finetune", "squad", "--output-dir", out) == 2
    err = one_error_line(capsys)
    assert "--recipe quickstart" in err and "squad" in err
    assert not out.exists()  # data is checked before the output folder is made


def test_non_empty_output_dir_is_refused(squad_files, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert cli("finetune", "squad", "--train-file", squad_files["v1-train"], "--output-dir", tmp_path) == 2
    assert "--overwrite-output-dir" in one_error_line(capsys)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def _doc_with(**change) -> dict:
    question = qa("q-bad", "Where was Ada born?", CONTEXT, "London")
    question.update(change.pop("qa", {}))
    return squad_doc([(change.pop("context", CONTEXT), [qa("q-ok", "When?", CONTEXT, "1815"), question])])


BAD_FILES = {
    "malformed JSON": (lambda p: p.write_text('{"data": [{"paragraphs": [}', encoding="utf-8"), "malformed JSON", "line 1"),
    "missing key": (lambda p: write_doc(p, squad_doc([(CONTEXT, [{"id": "q-bad", "answers": []}])])), "missing key 'question'", "q-bad"),
    "misaligned answer_start": (lambda p: write_doc(p, _doc_with(qa={"answers": [{"text": "London", "answer_start": 3}]})),
                                "does not match the context", "q-bad"),
    "empty context": (lambda p: write_doc(p, squad_doc([(" ", [{"id": "q-bad", "question": "Why?", "answers": [{"text": "x", "answer_start": 0}]}])])),
                      "'context' is empty", "q-bad"),
    "empty question": (lambda p: write_doc(p, _doc_with(qa={"question": "  "})), "'question' is empty", "q-bad"),
    "non-UTF-8 bytes": (lambda p: p.write_bytes(json.dumps(_doc_with()).encode().replace(b"Ada Lovelace", b"Ada Lovel\xe9ce", 1)),
                        "not valid UTF-8", "line 1"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_training_data_is_one_line_naming_file_and_record(case, tmp_path, capsys):
    make, reason, record = BAD_FILES[case]
    path = tmp_path / "train.json"
    make(path)
    out = tmp_path / "out"
    assert cli("finetune", "squad", "--model", "minilm", "--train-file", path, "--output-dir", out) == 2
    err = one_error_line(capsys)
    assert str(path) in err and reason in err and record in err, err
    assert not out.exists()


def test_unknown_dataset_and_bad_settings_are_one_line(tmp_path, capsys):
    assert cli("finetune", "squad", "--dataset", "squad3", "--output-dir", tmp_path / "o") == 2
    assert "unknown dataset 'squad3'" in one_error_line(capsys)
    assert cli("finetune", "squad", "--dataset", "squad", "--doc-stride", "400", "--output-dir", tmp_path / "o") == 2
    assert "doc_stride" in one_error_line(capsys)


def test_skip_bad_examples_drops_the_misaligned_one(tmp_path, tiny_qa_dir, capsys):
    path = write_doc(tmp_path / "train.json", _doc_with(qa={"answers": [{"text": "London", "answer_start": 3}]}))
    out = tmp_path / "out"
    assert cli("finetune", "squad", "--model", tiny_qa_dir, "--train-file", path, "--validation-file", path,
               "--skip-bad-examples", "--output-dir", out, "--max-steps", "1", "--max-seq-length", "64",
               "--doc-stride", "16", "--max-query-length", "16") == 0
    assert json.loads((out / "eval_results.json").read_text())["total"] == 1


@pytest.mark.parametrize("path", SQUAD_RECIPES, ids=lambda p: p.stem)
def test_squad_recipes_validate_dry_run_and_say_how_to_run_them(path, tmp_path, capsys):
    text = path.read_text()
    assert text.splitlines()[0].startswith("# bert-tasks finetune squad --recipe " + path.stem), path
    data = read_yaml(path)
    assert data["task"] in ("squad", "squad_v2") and len(str(data["description"]).splitlines()) == 1
    recipe = resolve_recipe(str(path), task="squad")
    assert recipe.data.version_2_with_negative == (data["task"] == "squad_v2")
    settings = [line for line in text.splitlines() if line.startswith("  ") and ":" in line and not line.strip().endswith(":")]
    assert all("#" in line for line in settings if not line.strip().startswith(("backend:", "seed:"))), path
    assert cli("finetune", "squad", "--recipe", path.stem, "--output-dir", tmp_path / "x", "--dry-run") == 0
    assert "would train task" in capsys.readouterr().out and not (tmp_path / "x").exists()


def test_expected_recipes_exist():
    assert {p.stem for p in SQUAD_RECIPES} == {
        "quickstart", "squad-v1-bert-base", "squad-v2-bert-base", "squad-v1-minilm-cpu", "squad-v2-minilm-cpu"}
    quick = resolve_recipe("quickstart", task="squad")
    assert quick.model.name_or_path == "minilm" and quick.data.synthetic and quick.data.eval_before_training


def test_every_squad_command_documents_an_example(capsys):
    from bert_tasks.cli import squad, training

    training.attach_training_commands()
    for command in (training.COMMANDS["finetune", "squad"], squad.eval_squad, squad.predict_squad):
        assert "Example: bert-tasks " in command.__doc__
    for group in ("finetune", "eval", "predict"):
        assert cli(group, "squad", "--help") == 0
        assert "Example: bert-tasks" in capsys.readouterr().out


# --------------------------------------------------------------------------- predict


def test_predict_prints_answer_score_and_offsets(tiny_qa_dir, capsys):
    context = "Ada Lovelace was born in London in 1815."
    assert cli("predict", "squad", "--model", tiny_qa_dir, "--question", "Where was Ada born?", "--context", context) == 0
    text, score, chars = capsys.readouterr().out.rstrip("\n").split("\t")
    start, end = map(int, chars.removeprefix("characters ").split("-"))
    assert context[start:end] == text and 0 < float(score.removeprefix("score ")) <= 1

    assert cli("predict", "squad", "--model", tiny_qa_dir, "--question", "Where was Ada born?", "--context", context, "--json") == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) == {"answer", "score", "start", "end"} and row["answer"] == text
    assert context[row["start"] : row["end"]] == row["answer"]


def test_predict_file_answers_every_line_in_order(tiny_qa_dir, tmp_path, capsys):
    records = [{"id": "a", "question": "Where was Ada born?", "context": "Ada was born in London."},
               {"question": "Who built it?", "context": "Babbage built the engine in 1837. " * 40}]  # several windows
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    assert cli("predict", "squad", "--model", tiny_qa_dir, "--file", path, "--json") == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["a", "2"]  # a record without an id is named by its line
    for record, row in zip(records, rows):
        assert record["context"][row["start"] : row["end"]] == row["answer"] != ""
    assert cli("predict", "squad", "--model", tiny_qa_dir, "--file", path) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["a", "2"]


@pytest.mark.parametrize("content, reason, record", [
    (b'{"question": "Q?", "context": "C."}\n{"question": "Q?", \n', "malformed JSON", "line 2"),
    (b'{"id": "x7", "question": "", "context": "C."}\n', "'question' is missing, empty", "line 1 (id x7)"),
    (b'{"question": "Q?"}\n', "'context' is missing", "line 1"),
    (b'{"question": "Q?", "context": "caf\xe9"}\n', "not valid UTF-8", "line 1"),
])
def test_predict_bad_file_is_one_line(tiny_qa_dir, tmp_path, capsys, content, reason, record):
    path = tmp_path / "q.jsonl"
    path.write_bytes(content)
    assert cli("predict", "squad", "--model", tiny_qa_dir, "--file", path) == 2
    err = one_error_line(capsys)
    assert str(path) in err and reason in err and record in err, err


def test_predict_needs_a_question_and_a_context(tiny_qa_dir, capsys):
    assert cli("predict", "squad", "--model", tiny_qa_dir, "--question", "Q?") == 2
    assert "--context" in one_error_line(capsys)
    assert cli("predict", "squad", "--model", tiny_qa_dir, "--question", " ", "--context", "C.") == 2
    assert "'question' is missing, empty or not text" in one_error_line(capsys)

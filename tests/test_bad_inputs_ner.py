"""The bad-input corpus of token classification: hostile NER files and flags, generated here.

As in tests/test_bad_inputs.py, every case must end with exit code 2 and exactly one line on stderr that names
the file (and the line where there is one) and the reason, with no traceback and no output folder left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bert_tasks.cli import main
from test_bad_inputs import Case, assert_one_clear_line, write

GOOD_CONLL = "Ada B-PER\nLovelace I-PER\nwent O\nto O\nLondon B-LOC\n\nAlan B-PER\nsaw O\nParis B-LOC\n"


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def ner_case(name: str, train: str | bytes, *expect: str, suffix: str = ".conll", dev: str | bytes = GOOD_CONLL,
             dev_suffix: str = ".conll", extra: tuple[str, ...] = ()) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        train_file = write(tmp / f"train{suffix}", train)
        dev_file = write(tmp / f"dev{dev_suffix}", dev)
        return ["finetune", "ner", "--model", str(model), "--train-file", str(train_file), "--validation-file",
                str(dev_file), "--output-dir", str(tmp / "out"), "--max-steps", "1", *extra]

    return Case(f"ner-{name}", build, expect)


GOOD = {"tokens": ["Ada", "went"], "tags": ["B-PER", "O"]}
CASES = [
    ner_case("jsonl-more-tags-than-words", jsonl(GOOD, {"tokens": ["Ada", "went"], "tags": ["B-PER", "O", "O"]}),
             "train.jsonl", "line 2", "2 tokens but 3 tags", suffix=".jsonl"),
    ner_case("b-tag-in-an-io-file", "Ada I-PER\nwent O\n\nAlan B-PER\n", "train.conll", "line 4",
             "'B-PER' does not fit the IO scheme", extra=("--tag-scheme", "IO")),
    ner_case("x-prefix", "Ada B-PER\nwent O\n\nAlan X-PER\n", "train.conll", "line 4",
             "'X-PER' does not fit the BIO scheme"),
    ner_case("e-tag-in-bio", "Ada B-PER\nLovelace E-PER\n", "train.conll", "line 2",
             "'E-PER' does not fit the BIO scheme", extra=("--tag-scheme", "BIO")),
    ner_case("e-tag-in-a-bio-dev-file", GOOD_CONLL, "dev.conll", "line 4", "'E-PER' does not fit the BIO scheme",
             dev="Ada O\n\nAda B-PER\nLovelace E-PER\n"),
    ner_case("no-words", jsonl(GOOD, {"tokens": [], "tags": []}), "train.jsonl", "line 2", "a sentence with no words",
             suffix=".jsonl"),
    ner_case("columns-vary", "Ada NNP B-PER\nwent VBD O\nto O\n", "train.conll", "line 3",
             "2 columns, but line 1 has 3"),
    ner_case("one-column", "Ada B-PER\nwent\n", "train.conll", "line 2", "a word and its tag"),
    ner_case("empty-file", "", "train.conll", "file is empty"),
    ner_case("only-docstart", "-DOCSTART- O\n\n", "train.conll", "no sentences"),
    ner_case("dev-tag-not-in-training", GOOD_CONLL, "dev.conll", "line 3", "'B-MISC' is not among the training tags",
             dev="Ada B-PER\n\nEnglish B-MISC\n"),
    ner_case("single-tag", "a O\nb O\n\nc O\n", "train.conll", "only one tag (O)"),
    ner_case("integer-ids-without-labels", jsonl({"tokens": ["Ada", "went"], "ner_tags": [1, 0]}), "train.jsonl",
             "line 1", "integer tag ids (1) need their names: pass --labels", suffix=".jsonl"),
    ner_case("id-out-of-range", jsonl({"tokens": ["Ada"], "ner_tags": [1]}, {"tokens": ["Ada"], "ner_tags": [9]}),
             "train.jsonl", "line 2", "tag id 9 is out of range for the 3 labels", suffix=".jsonl",
             extra=("--labels", "O,B-PER,I-PER")),
    ner_case("a-training-tag-not-in-labels", GOOD_CONLL, "train.conll", "line 5", "'B-LOC' is not among the --labels",
             extra=("--labels", "O,B-PER,I-PER")),
    ner_case("sentence-csv", "text,label\na fine film,1\na dull film,0\n", "train.csv", "line 1",
             "this looks like a sentence classification file", "use finetune classify", suffix=".csv"),
    ner_case("other-csv", "word,tag\nAda,B-PER\n", "train.csv", "line 1", "a CSV file is no token classification format",
             suffix=".csv"),
    ner_case("sentence-tsv", "sentence\tlabel\na fine film\t1\n", "train.tsv", "line 1",
             "use finetune classify", suffix=".tsv"),
    ner_case("sentence-jsonl", jsonl({"text": "a fine film", "label": 1}), "train.jsonl", "line 1",
             "use finetune classify", suffix=".jsonl"),
    ner_case("not-utf8", b"Ada B-PER\ncaf\xe9 O\n", "train.conll", "line 2", "not UTF-8"),
    ner_case("whitespace-token", jsonl(GOOD, {"tokens": ["Ada", " "], "tags": ["B-PER", "O"]}), "train.jsonl",
             "line 2", "token 1 is whitespace only", suffix=".jsonl"),
    ner_case("tags-not-a-list", jsonl({"tokens": ["Ada"], "tags": "B-PER"}), "train.jsonl", "line 1",
             "tags is not a list", suffix=".jsonl"),
    ner_case("labels-outside-the-scheme", GOOD_CONLL, "key labels", "'PER' does not fit the BIO scheme",
             extra=("--labels", "O,PER,B-PER,I-PER,B-LOC")),
    ner_case("stride-too-long", GOOD_CONLL, "doc_stride 20 leaves no new tokens",
             extra=("--max-seq-length", "16", "--doc-stride", "20")),
]


@pytest.mark.timeout(120)  # a hang fails the case instead of the suite
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_ner_input_gets_one_clear_line_and_leaves_nothing(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)
    assert not (tmp_path / "out").exists()  # no output folder at all


def test_the_ner_corpus_is_large_enough():
    assert len(CASES) >= 12


def test_predict_ner_refuses_an_empty_text_and_a_folder_without_the_head(tiny_model, capsys):
    assert main(["predict", "ner", "--model", str(tiny_model), "--text", "Ada went"]) == 2
    assert "no trained token-classification head" in capsys.readouterr().err

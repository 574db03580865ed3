"""The bad-input corpus of ``finetune classify`` (and its eval/predict): the user's own files, each case one line.

Run through :func:`test_bad_inputs.assert_one_clear_line`: exit 2, one ``error:`` line naming file, record and reason,
no traceback, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_bad_inputs import Case, assert_one_clear_line, write

GOOD = "text,label\na fine film,pos\na dull film,neg\nan odd film,neu\n"


def classify_case(name: str, train: str | bytes, *expect: str, dev: str | bytes | None = None, suffix: str = ".csv",
                  extra: tuple[str, ...] = ()) -> Case:
    def build(tmp: Path, model: Path) -> list[str]:
        bad = write(tmp / f"bad{suffix}", train)
        good = write(tmp / f"dev{suffix}", dev if dev is not None else train)
        return ["finetune", "classify", "--model", str(model), "--train-file", str(bad), "--validation-file", str(good),
                "--output-dir", str(tmp / "out"), "--max-steps", "1", *extra]

    return Case(f"classify-{name}", build, expect)


def lines(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


CASES = [
    classify_case("no-text-column", "title,label\na,x\nb,y\n", "bad.csv", "line 1", "no text column", "--text-columns"),
    classify_case("text-column-named-wrong", GOOD, "bad.csv", "no text column 'body'", extra=("--text-columns", "body")),
    classify_case("no-label-column", "text,stars\na,1\nb,2\n", "bad.csv", "line 1", "no label column", "--label-column"),
    classify_case("empty-label", "text,label\na,pos\nb,\n", "bad.csv", "line 3", "empty label"),
    classify_case("mixed-label-types", lines({"text": "a", "label": 1}, {"text": "b", "label": "pos"}),
                  "bad.jsonl", "line 2", "mixed label types", suffix=".jsonl"),
    classify_case("list-and-scalar-labels", lines({"text": "a", "label": ["x"]}, {"text": "b", "label": "y"}),
                  "bad.jsonl", "line 2", "mixed label types", suffix=".jsonl"),
    classify_case("one-class", "text,label\na,pos\nb,pos\n", "bad.csv", "all 'pos'", "at least two labels"),
    classify_case("delimiter-in-no-row", GOOD, "bad.csv", "label_delimiter '|' appears in no row",
                  extra=("--label-delimiter", "|")),
    classify_case("dev-label-unseen", GOOD, "dev.csv", "line 3", "'great'", "not among the training labels",
                  dev="text,label\na,pos\nb,great\n"),
    classify_case("token-file", lines({"tokens": ["a", "b"], "tags": ["O", "B-PER"]}), "bad.jsonl",
                  "token classification file", "finetune ner", suffix=".jsonl"),
    classify_case("conll-file", "EU B-ORG\nrejects O\n", "bad.conll", "unsupported file type", "finetune ner",
                  suffix=".conll"),
    classify_case("empty-text", "text,label\na,pos\n  ,neg\n", "bad.csv", "line 3", "empty 'text'"),
    classify_case("regression-not-a-number", "text,score\na,0.5\nb,high\n", "bad.csv", "mixed label types",
                  extra=("--label-column", "score")),
    classify_case("regression-infinite", "text,score\na,0.5\nb,inf\n", "bad.csv", "line 3", "not a finite number",
                  extra=("--label-column", "score", "--problem-type", "regression")),
    classify_case("labels-with-regression", GOOD, "labels is for classification",
                  extra=("--labels", "a,b", "--problem-type", "regression")),
    classify_case("labels-repeated", GOOD, "names a label twice", extra=("--labels", "pos,neg,pos")),
    classify_case("class-weight-unknown-label", GOOD, "class_weights", "'great=2'",
                  extra=("--class-weights", "great=2,pos=1,neg=1")),
    classify_case("multi-label-nested", lines({"text": "a", "labels": [["x"]]}, {"text": "b", "labels": ["y"]}),
                  "bad.jsonl", "line 1", "nested label", suffix=".jsonl"),
    classify_case("not-utf8", b"text,label\n\xff\xfe,pos\n", "bad.csv", "not UTF-8"),
    classify_case("pair-dev-for-single-train", GOOD, "dev.csv", "1 text column(s), this file 2",
                  dev="sentence1,sentence2,label\na,b,pos\nc,d,neg\n"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_classify_input_gets_one_clear_line_and_leaves_nothing(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)


def test_predict_with_a_glue_model_that_is_not_a_classify_folder_is_one_line(tmp_path, tiny_model, capsys):
    from bert_tasks.cli import main

    code = main(["predict", "classify", "--model", str(tiny_model), "--text", "a film"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err

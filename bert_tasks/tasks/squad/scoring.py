"""Score SQuAD predictions with the bundled official metrics into the ``eval_results.json`` dict."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from ...metrics import load_metric

log = logging.getLogger(__name__)

V2_KEYS = ("HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh")


def _references(examples: Any) -> list[dict[str, Any]]:
    if hasattr(examples, "select_columns"):  # datasets.Dataset: skip the context column
        examples = examples.select_columns(["id", "answers"]).to_list()
    return [{"id": e["id"], "answers": e["answers"]} for e in examples]


def score_predictions(
    examples: Any,
    predictions: Mapping[str, str],
    null_odds: Mapping[str, float] | None = None,
    version_2: bool = False,
) -> dict[str, float]:
    """Official SQuAD scores of ``predictions`` (id -> answer) against ``examples`` (Hub schema).

    Returns ``exact_match``, ``f1`` and ``total``; SQuAD 2.0 adds the HasAns/NoAns splits
    (when such questions exist) and the official best-threshold search over ``null_odds``.
    The answers are taken as final: ``exact_match``/``f1`` apply no further threshold. A
    question without a prediction counts as answered with "" (v1.1: scores 0). SQuAD 2.0 also
    reports ``answered``, the questions given a non-empty answer: 0 means the model abstained on
    every question, which scores the no-answer share however little it learnt.
    """
    references = _references(examples)
    missing = sum(1 for r in references if r["id"] not in predictions)
    if missing:
        log.warning("%d of %d questions have no prediction; they count as answered with \"\"", missing, len(references))
    answer_of = {r["id"]: predictions.get(r["id"], "") for r in references}
    if not version_2:
        result = load_metric("squad").compute(
            predictions=[{"id": qid, "prediction_text": text} for qid, text in answer_of.items()], references=references
        )
        return {"exact_match": result["exact_match"], "f1": result["f1"], "total": len(references)}

    odds = null_odds or {}
    result = load_metric("squad_v2").compute(
        predictions=[
            {"id": qid, "prediction_text": text, "no_answer_probability": float(odds.get(qid, 0.0))}
            for qid, text in answer_of.items()
        ],
        references=references,
        no_answer_threshold=float("inf"),
    )
    scores = {"exact_match": result["exact"], "f1": result["f1"], "total": result["total"]}
    scores.update({key: result[key] for key in V2_KEYS if key in result})
    scores["answered"] = sum(1 for text in answer_of.values() if text)
    return scores

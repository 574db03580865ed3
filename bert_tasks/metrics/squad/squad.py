"""SQuAD v1.1 metric (exact match and F1) as an offline ``evaluate`` module.

Reproduces the official ``evaluate-v1.1.py``: answers are normalised (lower case, no
punctuation, no articles a/an/the, single spaces), each prediction scores the best exact
match and best token F1 over its gold answers, and both are averaged over all questions
as percentages. A question without a prediction scores 0. Self-contained: it is loaded
by path, so it must not import ``bert_tasks``.
"""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = "Exact match and token F1 of SQuAD v1.1, as the official evaluate-v1.1.py script."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"id": str, "prediction_text": str}
    references: list of {"id": str, "answers": {"text": list[str], "answer_start": list[int]}}
Returns:
    {"exact_match": float, "f1": float}, both from 0 to 100.
"""
_CITATION = "Rajpurkar et al., SQuAD: 100,000+ Questions for Machine Comprehension of Text, EMNLP 2016."

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def f1_score(prediction, gold):
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)).values())
    if same == 0:
        return 0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction, gold):
    return normalize_answer(prediction) == normalize_answer(gold)


def best_over_golds(score, prediction, golds):
    return max(score(prediction, gold) for gold in golds)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Squad(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")},
                    "references": {
                        "id": datasets.Value("string"),
                        "answers": {
                            "text": datasets.List(datasets.Value("string")),
                            "answer_start": datasets.List(datasets.Value("int32")),
                        },
                    },
                }
            ),
        )

    def _compute(self, predictions, references):
        answer_of = {p["id"]: p["prediction_text"] for p in predictions}
        exact = f1 = 0.0
        for reference in references:
            golds = list(reference["answers"]["text"])
            if not golds:
                raise ValueError(f"question {reference['id']!r} has no gold answer; SQuAD v1.1 needs one (use squad_v2)")
            if reference["id"] not in answer_of:
                continue  # the official script scores an unanswered question 0
            prediction = answer_of[reference["id"]]
            exact += best_over_golds(exact_match_score, prediction, golds)
            f1 += best_over_golds(f1_score, prediction, golds)
        total = len(references)
        return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}

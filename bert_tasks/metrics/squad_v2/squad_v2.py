"""SQuAD v2.0 metric as an offline ``evaluate`` module, reproducing the official ``evaluate-v2.0.py``.

Gold answers whose normalised text is empty are ignored and an unanswerable question's
only gold answer is "". Scores are split into HasAns/NoAns, a prediction counts as
"no answer" when its no-answer probability exceeds ``no_answer_threshold`` (official
default 1.0), and ``best_exact``/``best_f1`` come from the official threshold search over
the no-answer probabilities (``find_best_thresh``). Self-contained: it is loaded by path,
so it must not import ``bert_tasks``.
"""

import collections
import re
import string

import datasets
import evaluate

_DESCRIPTION = "Exact match, F1 and best no-answer thresholds of SQuAD v2.0, as the official evaluate-v2.0.py script."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"id": str, "prediction_text": str, "no_answer_probability": float}
        (no_answer_probability may be any score that grows with "no answer", such as null odds)
    references: list of {"id": str, "answers": {"text": list[str], "answer_start": list[int]}}
    no_answer_threshold: a prediction whose no_answer_probability exceeds it becomes "" (default 1.0)
Returns:
    exact, f1, total, HasAns_exact, HasAns_f1, HasAns_total, NoAns_exact, NoAns_f1, NoAns_total
    (HasAns_*/NoAns_* only when such questions exist), best_exact, best_exact_thresh, best_f1,
    best_f1_thresh. Scores are 0 to 100.
"""
_CITATION = "Rajpurkar, Jia and Liang, Know What You Don't Know: Unanswerable Questions for SQuAD, ACL 2018."

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def get_tokens(text):
    return normalize_answer(text).split() if text else []


def compute_exact(gold, prediction):
    return int(normalize_answer(gold) == normalize_answer(prediction))


def compute_f1(gold, prediction):
    gold_tokens, prediction_tokens = get_tokens(gold), get_tokens(prediction)
    if not gold_tokens or not prediction_tokens:
        return int(gold_tokens == prediction_tokens)  # no-answer on either side: 1 only if both
    same = sum((collections.Counter(gold_tokens) & collections.Counter(prediction_tokens)).values())
    if same == 0:
        return 0
    precision = same / len(prediction_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def raw_scores(golds_of, answer_of):
    exact, f1 = {}, {}
    for qid, golds in golds_of.items():
        golds = [g for g in golds if normalize_answer(g)] or [""]
        if qid not in answer_of:
            continue
        exact[qid] = max(compute_exact(g, answer_of[qid]) for g in golds)
        f1[qid] = max(compute_f1(g, answer_of[qid]) for g in golds)
    return exact, f1


def apply_no_answer_threshold(scores, na_probs, has_answer, threshold):
    return {qid: float(not has_answer[qid]) if na_probs[qid] > threshold else s for qid, s in scores.items()}


def eval_dict(exact, f1, qids=None):
    qids = list(exact) if not qids else qids
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact[q] for q in qids) / total,
        "f1": 100.0 * sum(f1[q] for q in qids) / total,
        "total": total,
    }


def find_best_thresh(answer_of, scores, na_probs, has_answer):
    """Official search: start from "no answer everywhere", admit answers in order of rising na_prob."""
    score = best = sum(1 for q in has_answer if not has_answer[q])
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif answer_of[qid]:
            score -= 1
        if score > best:
            best, best_thresh = score, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SquadV2(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": {
                        "id": datasets.Value("string"),
                        "prediction_text": datasets.Value("string"),
                        "no_answer_probability": datasets.Value("float64"),
                    },
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

    def _compute(self, predictions, references, no_answer_threshold=1.0):
        answer_of = {p["id"]: p["prediction_text"] for p in predictions}
        na_probs = {p["id"]: p["no_answer_probability"] for p in predictions}
        golds_of = {r["id"]: list(r["answers"]["text"]) for r in references}
        missing = [qid for qid in golds_of if qid not in answer_of]
        if missing:
            raise ValueError(f"{len(missing)} questions have no prediction, e.g. {missing[0]!r}")
        has_answer = {qid: bool(golds) for qid, golds in golds_of.items()}
        exact_raw, f1_raw = raw_scores(golds_of, answer_of)
        exact = apply_no_answer_threshold(exact_raw, na_probs, has_answer, no_answer_threshold)
        f1 = apply_no_answer_threshold(f1_raw, na_probs, has_answer, no_answer_threshold)
        result = eval_dict(exact, f1)
        for prefix, wanted in (("HasAns", True), ("NoAns", False)):
            qids = [qid for qid, has in has_answer.items() if has == wanted]
            if qids:
                result.update({f"{prefix}_{k}": v for k, v in eval_dict(exact, f1, qids).items()})
        na_probs = {qid: p for qid, p in na_probs.items() if qid in has_answer}
        result["best_exact"], result["best_exact_thresh"] = find_best_thresh(answer_of, exact_raw, na_probs, has_answer)
        result["best_f1"], result["best_f1_thresh"] = find_best_thresh(answer_of, f1_raw, na_probs, has_answer)
        return result

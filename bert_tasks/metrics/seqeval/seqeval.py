"""Offline seqeval metric: entity-level scores of tagged sequences, with conlleval's semantics.

The ``seqeval`` library in its default mode, as conlleval.pl reads tags: an entity is a maximal run of one
type's tags that starts at ``B-`` or ``S-``, or at an ``I-``/``E-`` that follows ``O``, another type or an ended
entity (conlleval's rule: ``O I-PER`` is a PER entity); BIO (IOB2), IOB1, IO and BIOES all read this way. An
entity counts as found only when its type and both its ends match the gold one.
"""

import warnings

import numpy as np
from seqeval.metrics import accuracy_score, classification_report

import datasets
import evaluate

_CITATION = """\
@misc{seqeval,
  title={{seqeval}: A Python framework for sequence labeling evaluation},
  url={https://github.com/chakki-works/seqeval},
  author={Hiroki Nakayama},
  year={2018}
}
"""

_DESCRIPTION = "Entity-level precision, recall and F1 (micro over entities), per type, and token accuracy."

_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of tags (strings) per sentence.
    references: the gold tags, the same number per sentence.
Returns:
    overall_precision, overall_recall, overall_f1 (micro over entities), overall_accuracy (over tokens),
    and for each entity type a dict with precision, recall, f1 and number (its gold entities).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Seqeval(evaluate.Metric):
    def _info(self):
        tags = datasets.Sequence(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions, references):
        predictions = [list(p) for p in predictions]
        references = [list(r) for r in references]
        for i, (p, r) in enumerate(zip(predictions, references)):
            if len(p) != len(r):
                raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(r)} gold tags")
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # no entities at all: every score is 0, said once
            warnings.simplefilter("ignore")
            report = classification_report(references, predictions, output_dict=True, zero_division=0)
        overall = report.pop("micro avg")
        for summary in ("macro avg", "weighted avg"):
            report.pop(summary, None)
        scores = {
            name: {"precision": float(values["precision"]), "recall": float(values["recall"]),
                   "f1": float(values["f1-score"]), "number": int(values["support"])}
            for name, values in sorted(report.items())
        }
        return {
            **scores,
            "overall_precision": float(overall["precision"]),
            "overall_recall": float(overall["recall"]),
            "overall_f1": float(overall["f1-score"]),
            "overall_accuracy": float(accuracy_score(references, predictions)),
        }

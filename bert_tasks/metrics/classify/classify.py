"""Offline classification metric: single-label, multi-label and regression scores, as scikit-learn and scipy compute them.

Config names: ``single_label_classification`` (accuracy, macro and micro F1, per-class precision/recall/F1/support),
``multi_label_classification`` (micro and macro F1, micro precision and recall, subset accuracy, per-class scores),
``regression`` (mean squared error, Pearson and Spearman correlation). ``num_labels`` gives the per-class table a row
for every label, present in the data or not.
"""

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

import datasets
import evaluate

_DESCRIPTION = "Scores of a text classifier: single-label, multi-label or regression (the config name)."

_KWARGS_DESCRIPTION = """
Args:
    predictions: class ids (single-label), 0/1 rows over the labels (multi-label) or scores (regression).
    references: the same for the gold labels.
    num_labels: the number of labels (classification), so every label has a row in the per-class table.
Returns:
    single_label_classification: accuracy, macro_f1, micro_f1, per_class {id: {precision, recall, f1, support}};
    multi_label_classification: micro_f1, macro_f1, micro_precision, micro_recall, subset_accuracy, per_class;
    regression: mse, pearson, spearmanr.
"""

CONFIGS = ("single_label_classification", "multi_label_classification", "regression")


def per_class(references, predictions, num_labels):
    precision, recall, f1, support = precision_recall_fscore_support(
        references, predictions, labels=list(range(num_labels)), average=None, zero_division=0)
    return {str(i): {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                     "support": int(support[i])} for i in range(num_labels)}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classify(evaluate.Metric):
    def _info(self):
        if self.config_name not in CONFIGS:
            raise KeyError(f"unknown problem type {self.config_name!r}; expected one of {', '.join(CONFIGS)}")
        value = {"single_label_classification": datasets.Value("int64"),
                 "multi_label_classification": datasets.Sequence(datasets.Value("int64")),
                 "regression": datasets.Value("float64")}[self.config_name]
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": value, "references": value}),
            # numpy format takes only scalar features; a multi-label row is a list, made an array in _compute
            format=None if self.config_name == "multi_label_classification" else "numpy",
        )

    def _compute(self, predictions, references, num_labels=None):
        if self.config_name == "regression":
            predictions, references = np.asarray(predictions, np.float64), np.asarray(references, np.float64)
            return {"mse": float(np.mean((predictions - references) ** 2)),
                    "pearson": float(pearsonr(predictions, references)[0]),
                    "spearmanr": float(spearmanr(predictions, references)[0])}
        predictions, references = np.asarray(predictions), np.asarray(references)
        if self.config_name == "multi_label_classification":
            k = num_labels or predictions.shape[1]
            precision, recall, micro, _ = precision_recall_fscore_support(references, predictions, average="micro",
                                                                          zero_division=0)
            return {"micro_f1": float(micro), "macro_f1": float(f1_score(references, predictions, average="macro",
                                                                         zero_division=0)),
                    "micro_precision": float(precision), "micro_recall": float(recall),
                    "subset_accuracy": float(accuracy_score(references, predictions)),
                    "per_class": per_class(references, predictions, k)}
        k = num_labels or int(max(predictions.max(), references.max())) + 1
        labels = list(range(k))
        return {"accuracy": float((predictions == references).mean()),
                "macro_f1": float(f1_score(references, predictions, labels=labels, average="macro", zero_division=0)),
                "micro_f1": float(f1_score(references, predictions, labels=labels, average="micro", zero_division=0)),
                "per_class": per_class(references, predictions, k)}

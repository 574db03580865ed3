"""Offline GLUE metric: the official score of each of the nine GLUE tasks.

Config names are the task names. CoLA is scored by Matthews correlation;
SST-2, MNLI, QNLI, RTE and WNLI by accuracy; MRPC and QQP by F1 (of class 1)
and accuracy; STS-B by Pearson and Spearman correlation.

STS-B predictions of shape [N, 1] (raw regression logits) are flattened before
scoring: compared as [N, 1] against [N] references they broadcast to an N x N
grid and give a meaningless correlation.
"""

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, matthews_corrcoef

import datasets
import evaluate

_CITATION = """\
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""

_DESCRIPTION = "The official metric of each GLUE task; the config name is the task (cola, sst2, ..., wnli)."

_KWARGS_DESCRIPTION = """
Args:
    predictions: class ids (int), or similarity scores (float) for stsb; stsb also takes shape [N, 1].
    references: gold class ids (int), or gold scores (float) for stsb.
Returns:
    cola: matthews_correlation; sst2, mnli, qnli, rte, wnli: accuracy;
    mrpc, qqp: f1 and accuracy; stsb: pearson and spearmanr. All as plain floats.
"""

ACCURACY_TASKS = ("sst2", "mnli", "qnli", "rte", "wnli", "ax")
F1_TASKS = ("mrpc", "qqp")
TASKS = ("cola", "stsb", *ACCURACY_TASKS, *F1_TASKS)


def _scores_1d(values):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"stsb scores must have shape [N] or [N, 1], got {list(array.shape)}")
    return array


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    def _info(self):
        if self.config_name not in TASKS:
            raise KeyError(f"unknown GLUE task {self.config_name!r}; expected one of {', '.join(TASKS)}")
        value = datasets.Value("float32" if self.config_name == "stsb" else "int64")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": value, "references": value}),
            format="numpy",
        )

    def _flatten(self, predictions, references):
        if self.config_name == "stsb":
            predictions = None if predictions is None else _scores_1d(predictions)
            references = None if references is None else _scores_1d(references)
        return predictions, references

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references; stsb scores may be [N, 1]."""
        predictions, references = self._flatten(predictions, references)
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Score everything added so far plus these predictions; stsb scores may be [N, 1]."""
        predictions, references = self._flatten(predictions, references)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references):
        task = self.config_name
        if task == "cola":
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        if task == "stsb":
            predictions, references = _scores_1d(predictions), _scores_1d(references)
            return {
                "pearson": float(pearsonr(predictions, references)[0]),
                "spearmanr": float(spearmanr(predictions, references)[0]),
            }
        accuracy = float((np.asarray(predictions) == np.asarray(references)).mean())
        if task in F1_TASKS:
            return {"f1": float(f1_score(references, predictions)), "accuracy": accuracy}
        return {"accuracy": accuracy}

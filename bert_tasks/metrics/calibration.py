"""Calibration of a classifier's probabilities: the expected calibration error (Guo et al., 2017).

The predictions are binned by their confidence (the top softmax probability) into equal-width bins over [0, 1]
(bin ``b`` of ``B`` holds confidences in ``((b - 1) / B, b / B]``, the first one 0 too); ECE is the mean over
examples of ``|accuracy(bin) - mean confidence(bin)|``, each bin weighted by its share of the examples.
"""

from __future__ import annotations

import numpy as np

#: the usual count (Guo et al.; torchmetrics' default)
ECE_BINS = 15


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of ``probabilities`` [N, K] (each row sums to 1) against class ids ``labels`` [N]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)

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


def calibration_bins(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: (examples, accuracy, mean confidence); an empty bin has NaN for both."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(which, weights=correct, minlength=bins) / counts
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
    return counts, accuracy, mean_confidence


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of ``probabilities`` [N, K] (each row sums to 1) against class ids ``labels`` [N]."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    correct = probabilities.argmax(axis=1) == np.asarray(labels).astype(np.int64)
    counts, accuracy, confidence = calibration_bins(probabilities.max(axis=1), correct, bins)
    filled = counts > 0
    return float((counts[filled] / counts.sum() * np.abs(accuracy[filled] - confidence[filled])).sum())


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = scaled - scaled.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), np.asarray(labels).astype(np.int64)].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature scaling (Guo et al., 2017): the one T > 0 minimising the dev NLL of ``softmax(logits / T)``,
    searched over log T in [-4, 4] (T from 0.018 to 55) by :func:`scipy.optimize.minimize_scalar`."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))), bounds=(-4.0, 4.0),
                            method="bounded", options={"xatol": 1e-6})
    return float(np.exp(found.x))

"""Which way a metric improves: the one table, read by best-checkpoint selection, early stopping and ``compare``.

A metric whose name holds one of :data:`LOWER_IS_BETTER`'s words (a loss, an error, a calibration error) is
minimised; every other metric (accuracy, F1, correlations, exact match) is maximised.
"""

from __future__ import annotations

#: name fragments of metrics where lower is better
LOWER_IS_BETTER = ("loss", "mse", "mae", "rmse", "error", "perplexity", "ece", "brier", "nll")


def higher_is_better(name: str) -> bool:
    """True unless ``name`` is a loss- or error-like metric (:data:`LOWER_IS_BETTER`)."""
    lowered = name.lower()
    parts = lowered.replace("-", "_").replace("/", "_").split("_")
    return not any(word in parts or lowered.endswith(word) for word in LOWER_IS_BETTER)

"""Classify one text (pair) with a fine-tuned ``classify`` folder: the engine behind ``predict classify``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...checkpoint.files import read_config
from ...checkpoint.locate import resolve_model_dir
from ...config import trained_settings
from ...errors import BertTasksError
from ..calibrate import class_probabilities
from ..sentences import run_on_text
from .config import ClassifyDataConfig
from .data import MULTI, REGRESSION
from .task import trained_space, trained_threshold


def predict_text(model_dir: str | Path, text: str, text_pair: str | None = None, *, backend: str = "scratch",
                 precision: str | None = None, threshold: float | None = None) -> dict[str, Any]:
    """The prediction for one text (pair): the label and every label's probability (at the folder's calibrated
    temperature, if ``eval classify --calibrate`` fitted one); multi-label: every label at or above the threshold (the
    folder's tuned one unless given); regression: the score."""
    if not text or not text.strip():
        raise BertTasksError("--text is empty")
    if text_pair is not None and not text_pair.strip():
        raise BertTasksError("--text-pair is empty")
    folder = resolve_model_dir(str(model_dir))
    space = trained_space(folder)
    cfg = trained_settings(folder, ClassifyDataConfig)
    columns = cfg.text_column_names()
    if columns is not None and (len(columns) == 2) != (text_pair is not None):
        raise BertTasksError("this model was trained on " + ("text pairs: pass --text-pair too" if len(columns) == 2
                             else "single texts: drop --text-pair"), file=folder)
    output, _, _ = run_on_text(folder, cfg, text, text_pair, num_labels=space.num_labels, backend=backend,
                              precision=precision)
    logits = output.logits[0].float()
    out: dict[str, Any] = {"text": text, **({"text_pair": text_pair} if text_pair is not None else {})}
    if space.problem_type == REGRESSION:
        return {**out, "score": float(logits[0])}
    if space.problem_type == MULTI:
        cut = threshold if threshold is not None else trained_threshold(folder)
        probs = torch.sigmoid(logits).tolist()
        chosen = [name for name, p in zip(space.names, probs) if p >= cut]
        return {**out, "labels": chosen, "threshold": cut, "probabilities": dict(zip(space.names, probs))}
    probs = class_probabilities(logits, read_config(folder))  # at eval classify --calibrate's temperature
    best = max(range(len(probs)), key=probs.__getitem__)
    return {**out, "label": space.names[best], "score": probs[best], "probabilities": dict(zip(space.names, probs))}

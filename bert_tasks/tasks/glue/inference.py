"""Classify one sentence (pair) with a fine-tuned GLUE folder: the engine behind ``predict glue``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ...checkpoint.files import read_config
from ...checkpoint.locate import resolve_model_dir
from ...config import trained_settings
from ...errors import BertTasksError
from ..calibrate import class_probabilities
from ..sentences import run_on_text
from .config import GlueDataConfig
from .spec import TASK_NAMES, get_spec


def predict_text(model_dir: str | Path, text: str, text_pair: str | None = None,
                 backend: str = "scratch", precision: str | None = None) -> dict[str, Any]:
    """The predicted label of one sentence (pair) and every label's probability (STS-B: the score).

    A model with an attention pooling head also gives its weights over the input's tokens: ``pooling_weights``,
    ``{"tokens": [...], "weights": [...]}`` (the weights sum to 1).
    """
    if not text or not text.strip():
        raise BertTasksError("--text is empty")
    if text_pair is not None and not text_pair.strip():
        raise BertTasksError("--text-pair is empty")
    folder = resolve_model_dir(str(model_dir))
    config = read_config(folder)
    labels = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    if not labels:
        held = ", ".join(config.get("architectures") or []) or "no recorded architecture"
        raise BertTasksError(f"config.json has no id2label: not a fine-tuned classifier (it holds {held})",
                             file=folder / "config.json")
    cfg = trained_settings(folder, GlueDataConfig)
    task = cfg.task
    if task in TASK_NAMES and get_spec(task).is_pair != (text_pair is not None):
        raise BertTasksError(f"this model was fine-tuned on {task}, which "
                             + ("compares two sentences: pass --text-pair too" if get_spec(task).is_pair
                                else "classifies one sentence: drop --text-pair"), file=folder)
    output, inputs, tokenizer = run_on_text(folder, cfg, text, text_pair, num_labels=len(labels), backend=backend,
                                            precision=precision)
    logits = output.logits[0].float()
    out: dict[str, Any] = {"text": text, **({"text_pair": text_pair} if text_pair is not None else {})}
    extra: dict[str, Any] = {}
    weights = getattr(output, "pooling_weights", None)
    if weights is not None:
        extra["pooling_weights"] = {"tokens": tokenizer.convert_ids_to_tokens(inputs["input_ids"][0].tolist()),
                                  "weights": [round(float(w), 6) for w in weights[0]]}
    if len(labels) == 1 or config.get("problem_type") == "regression":
        return {**out, "label": labels[0], "score": float(logits[0]), **extra}
    probs = class_probabilities(logits, config)  # at eval glue --calibrate's temperature
    best = int(np.argmax(probs))
    probabilities = {labels[i]: float(p) for i, p in enumerate(probs)}
    if not math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-4):  # duplicate label names collapse
        raise BertTasksError("config.json id2label has repeated names", file=folder / "config.json")
    return {**out, "label": labels[best], "score": probs[best], "probabilities": probabilities, **extra}

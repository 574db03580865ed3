"""The export checks itself: ONNX Runtime against PyTorch on probe batches and on the dev data, int8 against fp32.

* **Probes** (:func:`probe_batches`): fixed sentences tokenized with the folder's own tokenizer, one at a time, in
  padded batches of 2, 3 and 7, as pairs (two segments), and one cut at the longest length the model trains on:
  lengths and batch sizes the trace never saw; and the folder's own dev texts where its eval_predictions.jsonl
  keeps them (:func:`folder_texts`).
* **Dev data** (:func:`score_on_dev`): the task's own evaluator (the one ``eval`` and training use) runs each model;
  :class:`Recorder` keeps every batch's outputs, so the same batches compare PyTorch with ONNX Runtime too.
* **Figures**: the largest |difference| of any output (:func:`max_difference`), and the share of equal argmax
  predictions, over real tokens only for per-token heads (:func:`agreement`).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch import nn

from ..model.heads import Head

#: ONNX Runtime fp32 must give PyTorch's outputs to this (float32 sums in another order differ by ~1e-6)
FP32_TOLERANCE = 1e-4

PROBES = (
    "ok",
    "a fine film",
    "Ada Lovelace was born in London.",
    "the plot wanders, but the actors hold it together for two long and oddly moving hours",
    "Who wrote it?",
    "It was not good; it was not bad; it was, in the end, a film that one forgets by the next morning.",
    "bad",
)


#: the most texts taken from a folder's own eval_predictions.jsonl
FOLDER_TEXTS = 32
#: the rows' fields that are ids, predictions or labels, never the input's text
NOT_TEXT = {"idx", "prediction", "predictions", "label", "labels", "split", "probabilities"}


def folder_texts(folder: Path, limit: int = FOLDER_TEXTS) -> list[str]:
    """Up to ``limit`` input texts from the folder's eval_predictions.jsonl, where its rows keep them (NER's
    ``tokens``, a classify run's text columns); GLUE's rows keep ids only, and give none."""
    path = folder / "eval_predictions.jsonl"
    texts: list[str] = []
    if not path.is_file():
        return texts
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if not isinstance(row, dict):
                continue
            for key, value in row.items():
                if key in NOT_TEXT:
                    continue
                if isinstance(value, list) and value and all(isinstance(w, str) for w in value):
                    value = " ".join(value)
                if isinstance(value, str) and value.strip():
                    texts.append(value)
            if len(texts) >= limit:
                break
    return texts[:limit]


def probe_batches(tokenizer: Any, max_length: int, extra: list[str] = ()) -> list[dict[str, torch.Tensor]]:
    """Batches of 1, 2, 3 and 7 probe sentences (padded), two of pairs, one truncated to ``max_length``, and
    ``extra`` texts (the folder's own) in batches of 8."""
    def encode(texts, pairs=None):
        return dict(tokenizer(list(texts), list(pairs) if pairs else None, padding=True, truncation=True,
                              max_length=max_length, return_token_type_ids=True, return_tensors="pt"))

    batches = [encode([text]) for text in PROBES[:3]]
    batches += [encode(PROBES[1:3]), encode(PROBES[3:6]), encode(PROBES)]
    batches += [encode(PROBES[4:5], PROBES[2:3]), encode(PROBES[:3], PROBES[3:6])]
    batches.append(encode([" ".join(PROBES) * 8]))  # longer than max_length: cut to it
    batches += [encode(extra[i:i + 8]) for i in range(0, len(extra), 8)]
    return batches


class Recorder(nn.Module):
    """``model`` as it is, keeping each batch's outputs (``names``, as numpy) and attention mask."""

    def __init__(self, model: nn.Module, names: Iterable[str]):
        super().__init__()
        self.model, self.names = model, tuple(names)
        self.outputs: list[dict[str, np.ndarray]] = []
        self.masks: list[np.ndarray] = []

    @property
    def config(self):
        return self.model.config

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        self.outputs.append({n: getattr(out, n).detach().float().cpu().numpy() for n in self.names})
        self.masks.append((torch.ones_like(input_ids) if attention_mask is None else attention_mask).cpu().numpy())
        return out


@torch.no_grad()
def run_probes(model: nn.Module, batches: list[dict[str, torch.Tensor]], names: Iterable[str]) -> Recorder:
    recorder = Recorder(model, names).eval()
    for batch in batches:
        recorder(**batch)
    return recorder


def max_difference(a: Recorder, b: Recorder) -> float:
    """The largest |a - b| over every output of every batch the two recorded (the same batches, in order)."""
    worst = 0.0
    for x, y in zip(a.outputs, b.outputs, strict=True):
        for name in x:
            worst = max(worst, float(np.max(np.abs(x[name] - y[name]), initial=0.0)))
    return worst


def agreement(a: Recorder, b: Recorder, head: Head) -> float | None:
    """The share of equal argmax predictions (per example, or per real token); None for a one-output regression."""
    equal = total = 0
    for x, y, mask in zip(a.outputs, b.outputs, a.masks, strict=True):
        for name in x:
            if name == "pooling_weights" or (x[name].shape[-1] == 1 and head.outputs == "sequence"):
                continue
            pa, pb = x[name].argmax(-1), y[name].argmax(-1)  # a span head: one argmax over the tokens per example
            if head.outputs in ("token", "masked-lm"):
                real = mask.astype(bool)
                pa, pb = pa[real], pb[real]
            equal += int((pa == pb).sum())
            total += int(pa.size)
    return equal / total if total else None


def points(value: float | None, head: Head) -> float | None:
    """A metric in percentage points: SQuAD's scores are already 0-100, the others' 0-1."""
    if value is None:
        return None
    return float(value) if head.outputs == "span" else 100.0 * float(value)


def score_on_dev(evaluator: Any, task: Any, models: dict[str, nn.Module], names: Iterable[str]
                 ) -> tuple[dict[str, dict[str, Any]], dict[str, Recorder]]:
    """Each model's metrics from the task's evaluator (its files go to a folder thrown away), and its outputs."""
    metrics, recorders = {}, {}
    for key, model in models.items():
        recorder = Recorder(model, names).eval()
        with tempfile.TemporaryDirectory(prefix="bert-tasks-export-eval.") as scratch, torch.no_grad():
            metrics[key] = evaluator(recorder, None, Path(scratch))
        recorders[key] = recorder
    return metrics, recorders


def main_metric(task: Any, metrics: dict[str, Any]) -> float | None:
    return task.main_metric(metrics) if metrics else None

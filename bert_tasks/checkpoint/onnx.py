"""An export folder (``bert-tasks export``) run on ONNX Runtime, in the shape of our own models.

The folder holds ``model.onnx`` (and ``model.int8.onnx`` when quantized), config.json, the tokenizer and the
run's recipe.yaml, so ``predict`` and the export's own checks read it as they read a trained folder.
:class:`OnnxModel` is an ``nn.Module`` whose forward takes the batch our heads take and returns their output
classes (:class:`~bert_tasks.model.heads.LogitsOutput`, :class:`~bert_tasks.model.heads.QuestionAnsweringOutput`),
so the task code that scores or predicts with a PyTorch model runs it unchanged.

``onnx`` and ``onnxruntime`` are the optional ``export`` extra: imported only here and in the export command,
and a missing one is one line naming the pip command (:func:`require_export_extra`).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import BertTasksError
from ..model.heads import HEADS, Head, LogitsOutput, QuestionAnsweringOutput
from .files import read_config

EXPORT_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
REPORT_FILE = "export_report.json"
PIP_EXTRA = 'pip install "bert-tasks[export]"'
#: the graph's inputs, in this order; a family without token types (DistilBERT) has no third one
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def require_export_extra() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or one line naming the pip command that installs them."""
    try:
        onnx = importlib.import_module("onnx")
        onnxruntime = importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise BertTasksError(f"exporting and running ONNX models needs the export extra ({exc.name or 'onnx'} is "
                             f"not installed): {PIP_EXTRA}") from None
    return onnx, onnxruntime


def is_export_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder ``bert-tasks export`` wrote (it holds model.onnx)."""
    return (Path(path) / EXPORT_FILE).is_file()


def exported_head(folder: Path) -> Head:
    """The head an export folder's graph computes, as its export_report.json records it."""
    report = folder / REPORT_FILE
    try:
        name = json.loads(report.read_text(encoding="utf-8")).get("head")
    except (OSError, ValueError):
        raise BertTasksError("an export folder without a readable export_report.json; export it again "
                             "(bert-tasks export ...)", file=report) from None
    if name not in HEADS or name is None:
        raise BertTasksError(f"export_report.json names no head of ours ({name!r})", file=report)
    return HEADS[name]


def session_options(threads: int | None = None) -> Any:
    _, ort = require_export_extra()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors reach the user as ours, not as ORT's warnings
    return options


def open_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for ``path``; a graph it cannot run is one line naming why."""
    _, ort = require_export_extra()
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own classes (Fail, InvalidGraph, ...) for one cause
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BertTasksError(f"onnxruntime {ort.__version__} cannot run this graph ({reason[:300]})", file=path) from None


class OnnxModel(nn.Module):
    """An exported graph behind our models' forward: ``(input_ids, attention_mask, token_type_ids)`` in, the head's
    output class out (torch tensors, float32, on the CPU). ``config`` is the folder's :class:`BertConfig`."""

    def __init__(self, path: Path, head: Head, config: Any, threads: int | None = None):
        super().__init__()
        self.path, self.head, self.config = Path(path), head, config
        self.session = open_session(self.path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # predict() and evaluate read the device from a parameter; the graph holds the real weights
        self.device_marker = nn.Parameter(torch.zeros(0), requires_grad=False)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feed = {name: np.ascontiguousarray(given[name].detach().cpu().numpy().astype(np.int64))
                for name in self.input_names}
        outputs = dict(zip(self.output_names, (torch.from_numpy(o) for o in self.session.run(None, feed))))
        if self.head.outputs == "span":
            return QuestionAnsweringOutput(start_logits=outputs["start_logits"], end_logits=outputs["end_logits"])
        return LogitsOutput(logits=outputs["logits"], pooling_weights=outputs.get("pooling_weights"))


def load_export(folder: str | Path, file: str = EXPORT_FILE, threads: int | None = None, head: str | None = None
                ) -> OnnxModel:
    """The export folder's graph (``file``: model.onnx, or model.int8.onnx) as an :class:`OnnxModel`; ``head``: the
    head the caller needs (a folder with another is one line, as a trained folder's is)."""
    from .load import build_config

    folder = Path(folder)
    exported = exported_head(folder)
    if head is not None and exported.name != head:
        wanted = HEADS[head]
        raise BertTasksError(f"this export holds a {exported.description} head, not a {wanted.description} one "
                             f"({wanted.architecture})", file=folder)
    head = exported
    config = read_config(folder)
    labels = len(config.get("id2label") or {}) or None if head.labels else None
    return OnnxModel(folder / file, head, build_config(config, labels, source=folder / "config.json"), threads)

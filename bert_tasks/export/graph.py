"""Our model -> an ONNX graph with dynamic batch and sequence axes, checked; and its int8 twin.

The exporter is ``torch.onnx.export(..., dynamo=False)``, the TorchScript tracer. Both of torch 2.13's exporters
export our encoder at parity (checked on a tiny SST-2 classifier, a batch of 5 x 37 tokens never traced: max |diff|
7e-9 for either); the dynamo one needs ``onnxscript`` (and ``onnx_ir``), two more packages in the extra, and took
7.9 s against 1.5 s. The tracer suffices because in eval mode our encoder's forward has no Python branch on tensor
values (dropout is the identity, unpadding is off, the attention mask goes to SDPA as a tensor) and raises no
TracerWarning, so a trace is the whole graph, and the sequence length it reads (``input_ids.shape[1]``: the position
table's slice) is traced as a shape, not a constant; the tests run the graph at other lengths and batch sizes than
the trace's. torch marks the tracer deprecated: should a release drop it, ``dynamo=True`` with
``dynamic_shapes`` is the replacement, at the same parity.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..checkpoint.onnx import INPUT_NAMES, require_export_extra
from ..errors import BertTasksError
from ..model.heads import Head
from ..model.encoder import set_unpadding

#: the default opset: onnxruntime 1.17 and later run it, and it has LayerNormalization as one op
DEFAULT_OPSET = 17


def output_names(head: Head, model: nn.Module) -> tuple[str, ...]:
    """The graph's outputs for ``head``: a span head's two logits, else ``logits`` (and an attention pooling's
    ``pooling_weights``)."""
    if head.outputs == "span":
        return ("start_logits", "end_logits")
    attention = getattr(getattr(model, "config", None), "pooling_spec", None)
    if head.pools and attention is not None and attention.pooling == "attention":
        return ("logits", "pooling_weights")
    return ("logits",)


class HeadGraph(nn.Module):
    """The model with plain tensors out, in :func:`output_names` order: what the tracer records."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return tuple(getattr(out, name) for name in self.names)


def dynamic_axes(head: Head, names: tuple[str, ...]) -> dict[str, dict[int, str]]:
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    for name in names:
        per_token = head.outputs != "sequence" or name == "pooling_weights"
        axes[name] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    return axes


def example_inputs(config: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A [2, 11] batch to trace, its second row padded, with both segments: no shape the probes reuse."""
    ids = torch.arange(11).repeat(2, 1) % max(config.vocab_size - 1, 1) + 1
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    types = torch.zeros_like(ids)
    if config.type_vocab_size and config.type_vocab_size > 1:
        types[:, 6:] = 1
    return ids, mask, types


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """File descriptors 1 and 2 into a scratch file for the block: the tracer prints its whole IR graph (from C++,
    past Python's sys.stdout) when it refuses a model, and the user is owed one line."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in (1, 2)]
    with tempfile.TemporaryFile() as scratch:
        for fd in (1, 2):
            os.dup2(scratch.fileno(), fd)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def export_onnx(model: nn.Module, head: Head, path: Path, opset: int) -> tuple[str, ...]:
    """Trace ``model`` (eval mode, plain path) into ``path``, checked by ``onnx.checker``; returns its outputs."""
    onnx, _ = require_export_extra()
    model = model.eval()
    set_unpadding(model, False)  # the plain path: unpadding picks tensor rows by value, which a trace fixes
    names = output_names(head, model)
    graph = HeadGraph(model, names).eval()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), quiet_output(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's deprecation and constant-folding notes are not the user's
            torch.onnx.export(graph, example_inputs(model.config), str(path), dynamo=False, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=list(names),
                              dynamic_axes=dynamic_axes(head, names), do_constant_folding=True)
    except (ValueError, RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BertTasksError(f"torch {torch.__version__} cannot export opset {opset} ({reason[:300]})") from None
    finally:
        graph.train(False)  # the exporter restores the wrapper's mode, and with it the model's
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # noqa: BLE001 - onnx's ValidationError and shape-inference errors alike
        raise BertTasksError(f"the exported graph fails onnx's checker ({str(exc).splitlines()[0][:300]})",
                             file=path) from None
    return names


#: what ``quantize_int8`` quantizes, as the export report states it
INT8_RECIPE = ("dynamic: int8 weights per output channel in every MatMul with a constant weight, activations "
               "quantized per batch at run time; embeddings and every other op stay fp32")


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the MatMuls' weights, per output channel (:data:`INT8_RECIPE`).

    ONNX Runtime's default also quantizes the embedding ``Gather`` and uses one scale per weight matrix. Measured on
    MiniLM fine-tuned on the shared SQuAD articles (124 dev questions, 1 thread; benchmarks/RESULTS.md, export),
    dev F1 fp32 41.95 against int8: default 30.48; per-channel 39.19; MatMul only 32.04; per-channel + MatMul only
    42.04 (p50 66 ms against the default's 64). Keeping the embeddings fp32 costs file size (58.7 MB against 23.4;
    fp32 90.4): most of the model's error came from one scale over its 30,522 x 384 word embeddings.
    """
    require_export_extra()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process first is for vision models, and not the user's to act on
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_dynamic(model_input=str(source), model_output=str(target), weight_type=QuantType.QInt8,
                             per_channel=True, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)

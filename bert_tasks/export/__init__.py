"""The export floor's room: a trained folder -> an ONNX folder that checked itself (``bert-tasks export``).

====== ==========================================================================
graph  our model -> an ONNX graph (dynamic batch and sequence axes), checked; its int8 twin
check  ONNX Runtime against PyTorch: probe batches, the dev data, int8 agreement
run    ``export_folder``: the steps in order, written whole or not at all
====== ==========================================================================

The runtime side (an export folder run on ONNX Runtime, for ``predict``) is :mod:`bert_tasks.checkpoint.onnx`.
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "DEFAULT_OPSET": "graph", "export_onnx": "graph", "quantize_int8": "graph",
    "FP32_TOLERANCE": "check", "probe_batches": "check",
    "export_folder": "run", "trained_head": "run",
})

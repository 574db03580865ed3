"""FSDP through Accelerate, on GPUs and on CPU, wrapped at the encoder layers.

``accelerate launch --config_file recipes/accelerate/fsdp*.yaml`` asks for FSDP through the environment
(``ACCELERATE_USE_FSDP``). On GPUs Accelerate then selects it by itself. On CPU Accelerate 1.15 never does
(it keeps FSDP for accelerators), although torch's FSDP2 (``fully_shard``) runs there over gloo:
:func:`shard_on_cpu` marks Accelerate's state as FSDP, after which Accelerate's own FSDP2 code shards,
clips, saves and loads, the same code a GPU run takes. So the CPU tests prove the GPU path's logic.

The wrap policy needs no class names from the user: :func:`wrap_at_layers` names the model's repeated
blocks (our ``EncoderLayer``; ``BertLayer``, ``RobertaLayer``, ``TransformerBlock``... under
``--backend hf``), the classes of its ``nn.ModuleList`` items, whatever the config file says.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from accelerate import FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

from .errors import BertTasksError


def fsdp_requested() -> bool:
    """``distributed_type: FSDP`` in the ``accelerate launch`` config (the launcher exports it)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def cpu_fsdp_plugin() -> FullyShardedDataParallelPlugin | None:
    """The FSDP settings of the launch config, when FSDP is asked for on a machine without CUDA."""
    if not fsdp_requested() or torch.cuda.is_available():
        return None
    plugin = FullyShardedDataParallelPlugin()  # reads the launcher's FSDP_* variables
    if plugin.fsdp_version != 2:
        raise BertTasksError("FSDP on CPU needs torch's FSDP2: set `fsdp_version: 2` under fsdp_config in the "
                             "accelerate config (recipes/accelerate/fsdp-cpu.yaml does)")
    return plugin


def shard_on_cpu(accelerator: Any, plugin: FullyShardedDataParallelPlugin, precision: str) -> None:
    """Make the CPU process group an FSDP one in Accelerate's state, as Accelerate does on a GPU.

    Both shared states carry the type (an ``AcceleratorState`` made later copies ``PartialState``'s);
    the plugin's mixed precision is set as Accelerate sets it when it selects FSDP itself.
    """
    if accelerator.num_processes == 1:
        raise BertTasksError("FSDP on CPU needs at least 2 processes (num_processes in the accelerate config)")
    for state in (PartialState(), AcceleratorState()):
        state.distributed_type = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin
    if precision != "no":
        plugin.set_mixed_precision(precision)


def is_sharded(accelerator: Any) -> bool:
    return accelerator is not None and accelerator.distributed_type == DistributedType.FSDP


def repeated_blocks(model: torch.nn.Module) -> list[str]:
    """Class names of the items of the model's ``nn.ModuleList``s: its encoder layers, FSDP's wrap units."""
    names = [type(item).__name__ for module in model.modules() if isinstance(module, torch.nn.ModuleList) for item in module]
    return list(dict.fromkeys(names))


def wrap_at_layers(accelerator: Any, model: torch.nn.Module) -> None:
    """Before ``accelerator.prepare``: one FSDP unit per encoder layer, the embeddings and heads in the root's."""
    if not is_sharded(accelerator):
        return
    plugin = accelerator.state.fsdp_plugin
    plugin.auto_wrap_policy = transformer_auto_wrap_policy
    plugin.transformer_cls_names_to_wrap = repeated_blocks(model)


def full_state_dict(accelerator: Any, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The whole model's weights, gathered from the shards onto the main process (every process must call
    this; the others get an empty dict). None when the model is not sharded: read it directly."""
    if not is_sharded(accelerator):
        return None
    return accelerator.get_state_dict(model)

"""Sharded training through Accelerate, on GPUs and on CPU: FSDP wrapped at the encoder layers, and DeepSpeed ZeRO
with its ``auto`` settings taken from the recipe.

``accelerate launch --config_file recipes/accelerate/fsdp*.yaml`` asks for FSDP through the environment
(``ACCELERATE_USE_FSDP``). On GPUs Accelerate then selects it by itself. On CPU Accelerate 1.15 never does
(it keeps FSDP for accelerators), although torch's FSDP2 (``fully_shard``) runs there over gloo:
:func:`shard_on_cpu` marks Accelerate's state as FSDP, after which Accelerate's own FSDP2 code shards,
clips, saves and loads, the same code a GPU run takes. So the CPU tests prove the GPU path's logic.

The wrap policy needs no class names from the user: :func:`wrap_at_layers` names the model's repeated
blocks (our ``EncoderLayer``; ``BertLayer``, ``RobertaLayer``, ``TransformerBlock``... under
``--backend hf``), the classes of its ``nn.ModuleList`` items, whatever the config file says.

DeepSpeed (``distributed_type: DEEPSPEED``, ``pip install deepspeed``) runs on CPU too, with its CPU accelerator
and gloo: Accelerate forms that process group only when handed the backend (:func:`process_group_kwargs`).
:func:`configure_deepspeed` fills the DeepSpeed config's ``auto`` values (micro-batch, accumulation, clipping)
from the recipe, and refuses a config that says otherwise, so the recipe stays the one place for them.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
from accelerate import FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType, InitProcessGroupKwargs
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

from ..errors import BertTasksError


def fsdp_requested() -> bool:
    """``distributed_type: FSDP`` in the ``accelerate launch`` config (the launcher exports it)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def cpu_fsdp_plugin() -> FullyShardedDataParallelPlugin | None:
    """The FSDP settings of the launch config, when FSDP is asked for on a machine without CUDA.

    FSDP1 is refused everywhere: it wraps the model in a new module, where the run keeps using its own
    (FSDP2's ``fully_shard`` shards the model in place)."""
    if not fsdp_requested():
        return None
    if os.environ.get("FSDP_VERSION", "1") != "2":
        raise BertTasksError("bert-tasks runs torch's FSDP2: set `fsdp_version: 2` under fsdp_config in the "
                             "accelerate config (recipes/accelerate/fsdp.yaml and fsdp-cpu.yaml do)")
    if torch.cuda.is_available():
        return None  # Accelerate selects FSDP itself
    return FullyShardedDataParallelPlugin()  # reads the launcher's FSDP_* variables


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


def deepspeed_requested() -> bool:
    """``distributed_type: DEEPSPEED`` in the ``accelerate launch`` config."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def process_group_kwargs() -> list[Any]:
    """Accelerator ``kwargs_handlers``: DeepSpeed without CUDA needs Accelerate to be told the backend (gloo), or
    Accelerate counts 1 process while DeepSpeed counts them all (and its batch-size check fails)."""
    return [InitProcessGroupKwargs(backend="gloo")] if deepspeed_requested() and not torch.cuda.is_available() else []


#: DeepSpeed config keys the recipe decides (``auto`` in the accelerate config); resolved before ``prepare``
def deepspeed_settings(cfg: Any) -> dict[str, Any]:
    return {"train_micro_batch_size_per_gpu": cfg.batch_size,
            "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
            "gradient_clipping": float(cfg.max_grad_norm or 0.0)}


#: where a DeepSpeed plugin keeps its config as the launch config gave it, ``auto`` values included: Accelerate
#: keeps one plugin for the life of a process, so every run (seeds, grid points) starts again from it
LAUNCH_CONFIG = "bert_tasks_launch_config"


def configure_deepspeed(accelerator: Any, cfg: Any) -> None:
    """Fill the DeepSpeed config's ``auto`` values from the recipe; a value the config fixes must agree with it."""
    if accelerator is None or accelerator.distributed_type != DistributedType.DEEPSPEED:
        return
    plugin = accelerator.state.deepspeed_plugin
    if not hasattr(plugin, LAUNCH_CONFIG):
        setattr(plugin, LAUNCH_CONFIG, copy.deepcopy(plugin.deepspeed_config))
    launch = getattr(plugin, LAUNCH_CONFIG)
    plugin.deepspeed_config.clear()  # in place: Accelerate's views of the config keep pointing at it
    plugin.deepspeed_config.update(copy.deepcopy(launch))
    if cfg.skip_nonfinite:
        raise BertTasksError("train.skip_nonfinite is not available under DeepSpeed, which steps the optimizer "
                             "inside backward; run without --skip-nonfinite")
    for key, value in deepspeed_settings(cfg).items():
        current = plugin.get_value(key)
        if current in (None, "auto"):
            plugin.deepspeed_config[key] = value
        elif current != value:
            raise BertTasksError(f"the DeepSpeed config sets {key}={current} but the recipe says {value}: "
                                 f"set it to auto in the accelerate config (the recipe decides it)")


def is_sharded(accelerator: Any) -> bool:
    """FSDP or DeepSpeed: the weights are read whole only through :func:`full_state_dict`."""
    return accelerator is not None and accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def repeated_blocks(model: torch.nn.Module) -> list[str]:
    """Class names of the items of the model's ``nn.ModuleList``s: its encoder layers, FSDP's wrap units."""
    names = [type(item).__name__ for module in model.modules() if isinstance(module, torch.nn.ModuleList) for item in module]
    return list(dict.fromkeys(names))


def wrap_at_layers(accelerator: Any, model: torch.nn.Module) -> None:
    """Before ``accelerator.prepare``: one FSDP unit per encoder layer, the embeddings and heads in the root's."""
    if accelerator is None or accelerator.distributed_type != DistributedType.FSDP:
        return
    plugin = accelerator.state.fsdp_plugin
    plugin.auto_wrap_policy = transformer_auto_wrap_policy
    plugin.transformer_cls_names_to_wrap = repeated_blocks(model)


def full_state_dict(accelerator: Any, model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The whole model's weights, gathered from the shards onto the main process (every process must call
    this; the others may get an empty dict). None when the model is not sharded: read it directly.

    DeepSpeed: each parameter's fp32 master, assembled from the optimizer's partitions one parameter at a time
    (``safe_get_full_fp32_param``, ZeRO-1 to 3), so a bf16 run saves fp32 weights as FSDP and DDP do and ZeRO-3
    never holds the whole model at once."""
    if not is_sharded(accelerator):
        return None
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return _deepspeed_fp32_state_dict(accelerator, accelerator.unwrap_model(model))
    return accelerator.get_state_dict(model)


def _deepspeed_fp32_state_dict(accelerator: Any, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    from deepspeed.utils import safe_get_full_fp32_param

    state: dict[str, torch.Tensor] = {}
    for name, value in module.state_dict(keep_vars=True).items():  # in one order on every process: collectives
        full = safe_get_full_fp32_param(value) if isinstance(value, torch.nn.Parameter) else None
        if accelerator.is_main_process:
            state[name] = (value if full is None else full).detach().to("cpu", copy=True)
    return state

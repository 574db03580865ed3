"""The training floor: the one loop every task trains through, and what it needs.

============ ======================================================================
loop         ``fit``: the Accelerate loop (forward/backward, steps, logging, evaluation, budget)
batching     the epoch sampler (order a function of seed and epoch), the step plan
optim        AdamW with BERT's decay groups, fused where it can; the LR schedule
precision    threads, precision (``auto``), the Accelerator
checkpoints  resumable checkpoints: written whole or not at all, resumed exactly
progress     the logged window, the bar or plain lines
prediction   batched prediction in dataset order
sharding     FSDP2 and DeepSpeed ZeRO through Accelerate, on CPU and GPU
compiled     optional ``torch.compile`` with an eager fallback
threads      how many threads a run takes (torch-free: ``bert-tasks env`` reads it)
hardware     the CPU's flags (native bf16), read without torch
============ ======================================================================
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "fit": "loop", "FitResult": "loop", "NonFiniteLoss": "loop",
    "EpochBatchSampler": "batching", "StepPlan": "batching", "feature_lengths": "batching",
    "make_optimizer": "optim", "decay_groups": "optim", "lr_lambda": "optim",
    "make_accelerator": "precision", "resolve_precision": "precision", "apply_num_threads": "precision",
    "checkpoint_dirs": "checkpoints", "resolve_resume": "checkpoints", "checkpoint_run_config": "checkpoints",
    "save_checkpoint": "checkpoints", "LoopState": "checkpoints", "CHECKPOINTS": "checkpoints",
    "STATE_FILE": "checkpoints", "RUN_CONFIG_FILE": "checkpoints",
    "format_metrics": "progress", "Progress": "progress",
    "predict": "prediction",
})

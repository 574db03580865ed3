"""AdamW with BERT's decay groups and the fused kernel where the device has it, and the learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from ..config import TrainConfig


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and LayerNorm weights, as BERT and run_*.py do."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lowered = name.lower()
        (no_decay if param.ndim < 2 or "norm" in lowered or "bias" in lowered else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


#: devices whose torch has a fused AdamW kernel
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over :func:`decay_groups`, with the kernel ``cfg.adam_kernel`` names (fused where the device has it)."""
    kernel = cfg.adam_kernel
    if kernel == "fused" and torch.device(device).type not in FUSED_ADAMW_DEVICES:
        kernel = "foreach"
    options = {"fused": True} if kernel == "fused" else {"foreach": kernel == "foreach"}
    return torch.optim.AdamW(decay_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                             betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon, **options)


def lr_lambda(kind: str, warmup: int, total: int) -> Callable[[int], float]:
    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1) if warmup else 1.0
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return max(0.0, 1.0 - progress) if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule

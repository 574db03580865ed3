"""A run's hardware setup: its threads, its precision (``auto``: bf16 where the hardware computes it natively),
and its Accelerator."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration

from ..config import TrainConfig, trained_recipe
from ..errors import BertTasksError
from .hardware import cpu_bf16_flag
from .sharding import cpu_fsdp_plugin, deepspeed_requested, process_group_kwargs, shard_on_cpu
from .threads import ThreadChoice, choose_threads


def resolve_precision(setting: str) -> tuple[str, str]:
    """``train.mixed_precision`` as Accelerate takes it, and why: ``auto`` picks bf16 only where the matmuls run in
    bf16 natively (a GPU that supports it; a CPU with AVX512-BF16 or AMX, read from its flags once)."""
    if setting != "auto":
        return setting, "set by train.mixed_precision"
    if torch.cuda.is_available():
        native, device, how = torch.cuda.is_bf16_supported(), "CUDA", ""
    else:
        flag = cpu_bf16_flag()
        native, device, how = flag is not None, "CPU", f" ({flag})"
    if native:
        return "bf16", f"auto: this {device} computes bf16 natively{how}"
    return "no", f"auto: this {device} has no native bf16, so fp32"


#: how results name each precision (Accelerate's "no" is fp32)
PRECISION_NAMES = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}


def folder_precision(model_dir: str | Path, given: str | None = None) -> str:
    """The precision ``eval`` and ``predict`` compute in: ``given`` (a flag), else what the folder was trained in
    (its recipe.yaml), else fp32; ``auto`` resolved as training resolves it."""
    setting = given or (trained_recipe(model_dir).get("train") or {}).get("mixed_precision") or "no"
    if setting not in ("auto", *PRECISION_NAMES):
        setting = "no"  # a recipe.yaml this version cannot read: fp32, which every backend computes alike
    return resolve_precision(setting)[0]


@contextmanager
def computing_in(precision: str, device: torch.device | str = "cpu") -> Iterator[str]:
    """Compute as training in ``precision`` does (Accelerate's autocast: bf16 on CPU or CUDA, fp16 on CUDA; "no"
    is fp32), for evaluation and prediction outside a run; yields the precision's name for the results."""
    device = torch.device(device)
    if precision == "fp16" and device.type != "cuda":
        raise BertTasksError("mixed_precision fp16 needs a CUDA GPU; on CPU use bf16 or no")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    with (torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()):
        yield PRECISION_NAMES[precision]


#: the precision this process's first Accelerator was made with: Accelerate keeps it for the life of the process
PROCESS_PRECISION: list[str] = []


def make_accelerator(cfg: TrainConfig, project_dir: Path | None = None):
    trackers = [t for t in cfg.report_to if t != "none"]
    project = ProjectConfiguration(project_dir=str(project_dir), logging_dir=str(project_dir / "logs")) if project_dir else None
    precision = resolve_precision(cfg.mixed_precision)[0]
    if PROCESS_PRECISION and PROCESS_PRECISION[0] != precision:
        raise BertTasksError(f"this process already trained in precision {PROCESS_PRECISION[0]!r} and Accelerate keeps "
                             f"that for the life of a process; run mixed_precision {precision!r} in a new process")
    PROCESS_PRECISION[:1] = [precision]
    fsdp_on_cpu = cpu_fsdp_plugin()
    accelerator = Accelerator(
        # Without CUDA, Accelerate forms a gloo process group under torchrun only when told it is on CPU, or
        # (DeepSpeed, which must not be told so) when handed the backend: see sharding.process_group_kwargs.
        cpu=not torch.cuda.is_available() and not deepspeed_requested(),
        kwargs_handlers=process_group_kwargs(),
        mixed_precision=precision,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        log_with=trackers or None,
        project_config=project,
        fsdp_plugin=fsdp_on_cpu,
    )
    if fsdp_on_cpu is not None:
        shard_on_cpu(accelerator, fsdp_on_cpu, precision)
    return accelerator


def apply_num_threads(num_threads: int | None) -> ThreadChoice:
    """``torch.set_num_threads`` from ``TrainConfig.num_threads`` (None: :func:`threads.choose_threads` decides)."""
    choice = choose_threads(num_threads)
    if choice.threads != torch.get_num_threads():
        torch.set_num_threads(choice.threads)
    return choice

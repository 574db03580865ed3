"""The one Accelerate training loop every task trains through, and batched prediction.

The same code runs on a laptop CPU, several GPUs and several nodes: Accelerate
owns devices, mixed precision, gradient accumulation and process groups. The
task supplies collate, forward and loss (see :mod:`bert_tasks.protocol`).

Data order is a pure function of (seed, epoch), so a resumed run rebuilds the
exact order and skips the batches already seen by index, without loading them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from .compiled import compile_model, uncompile_model
from .config import TrainConfig
from .errors import BertTasksError
from .hardware import cpu_bf16_flag
from .io import append_jsonl, atomic_write_text, write_json
from .protocol import Task
from .sharding import (configure_deepspeed, cpu_fsdp_plugin, deepspeed_requested, process_group_kwargs, shard_on_cpu,
                       wrap_at_layers)
from .threads import ThreadChoice, choose_threads

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
RUN_CONFIG_FILE = "run_config.json"

# --------------------------------------------------------------------------- batching


def feature_lengths(dataset: Any) -> list[int]:
    """Token count of every feature; a stored ``length`` column avoids re-reading ``input_ids``."""
    columns = getattr(dataset, "column_names", None) or []
    if "length" in columns:
        return list(dataset["length"])
    return [len(ids) for ids in dataset["input_ids"]]


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of indices whose order depends only on (seed, epoch).

    With ``group_by_length`` the data is shuffled, cut into mega-batches of 50
    batches, each sorted by length and split into batches, and the batches
    shuffled again: far less padding, while training still sees random batches.
    ``skip`` drops the first batches of the epoch (for resume) without touching data.
    """

    MEGA = 50

    def __init__(self, lengths: Sequence[int], batch_size: int, *, seed: int, shuffle: bool = True,
                 group_by_length: bool = True, sort: bool = False):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.sort = sort
        self.epoch = 0
        self.skip = 0

    def start_epoch(self, epoch: int, skip: int = 0) -> None:
        # Deliberately not named set_epoch: Accelerate calls set_epoch itself and would reset the skip.
        self.epoch, self.skip = epoch, skip

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if self.sort:  # evaluation: longest first, so memory peaks at once, and minimal padding
            order = np.argsort(-self.lengths, kind="stable")
            return [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if not self.group_by_length:
            return [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        mega = self.MEGA * self.batch_size
        batches = []
        for start in range(0, n, mega):
            chunk = order[start : start + mega]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.skip :]

    def __len__(self) -> int:
        return max(0, math.ceil(len(self.lengths) / self.batch_size) - self.skip)


# --------------------------------------------------------------------------- threads


def apply_num_threads(num_threads: int | None) -> ThreadChoice:
    """``torch.set_num_threads`` from ``TrainConfig.num_threads`` (None: :func:`threads.choose_threads` decides)."""
    choice = choose_threads(num_threads)
    if choice.threads != torch.get_num_threads():
        torch.set_num_threads(choice.threads)
    return choice


# --------------------------------------------------------------------------- optimisation


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


# --------------------------------------------------------------------------- the loop


@dataclass
class FitResult:
    """What a training run did. ``train_loss`` is the mean loss over every micro-batch of the whole run
    (steps before a resume included), as the HF Trainer reports it, not the last logged value."""

    global_step: int = 0
    epochs_completed: float = 0.0
    train_loss: float = float("nan")
    train_seconds: float = 0.0
    train_tokens: int = 0
    skipped_nonfinite: int = 0
    stopped_by_budget: bool = False
    seconds_per_epoch: float | None = None
    eval_history: list[dict[str, Any]] = field(default_factory=list)


class NonFiniteLoss(BertTasksError):
    pass


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


def checkpoint_dirs(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first; a folder without its state file was cut off mid-write."""
    root = output_dir / CHECKPOINTS
    found = [p for p in root.glob("step-*") if (p / STATE_FILE).is_file() and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def resolve_resume(resume_from: str | os.PathLike | None, output_dir: Path) -> Path | None:
    """The checkpoint folder ``resume_from`` names: a path, or ``latest`` in ``output_dir``; None for a fresh run."""
    if resume_from is None:
        return None
    if str(resume_from) == "latest":
        found = checkpoint_dirs(output_dir)
        if not found:
            raise BertTasksError("--resume-from latest: no complete checkpoint to resume from (a run saves them "
                                 "with --save-steps); run without --resume-from to start over",
                                 file=output_dir / CHECKPOINTS)
        return found[-1]
    path = Path(resume_from)
    if not (path / STATE_FILE).is_file():
        raise BertTasksError("not a complete bert-tasks checkpoint (no trainer_state.json)", file=path)
    return path


def checkpoint_run_config(checkpoint: Path) -> dict[str, Any] | None:
    """The resolved recipe a checkpoint was saved with (``run_config.json``), if it kept one."""
    try:
        data = json.loads((checkpoint / RUN_CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def truncate_log(log_path: Path, step: int) -> None:
    """Drop log lines of steps after ``step``: a resumed run redoes them, and each step is logged once."""
    if not log_path.is_file():
        return
    kept = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill
        if isinstance(record, dict) and int(record.get("step", 0)) <= step:
            kept.append(line + "\n")
    atomic_write_text(log_path, "".join(kept))


@dataclass
class StepPlan:
    """How many optimizer steps a run takes, from the data, the batch and the processes."""

    batches_per_epoch: int
    steps_per_epoch: int
    total: int
    warmup: int

    @classmethod
    def of(cls, sampler: EpochBatchSampler, cfg: TrainConfig, processes: int) -> "StepPlan":
        batches = len(sampler.batches())
        # Accelerate shards each batch list across processes; one optimizer step consumes
        # processes x accumulation batches of the sampler.
        steps_per_epoch = max(1, math.ceil(batches / (processes * cfg.gradient_accumulation_steps)))
        total = cfg.max_steps or math.ceil(cfg.epochs * steps_per_epoch)
        return cls(batches, steps_per_epoch, total, cfg.warmup_steps or int(cfg.warmup_ratio * total))


@dataclass
class LoopState:
    """Where training stands: ``trainer_state.json`` of every checkpoint, so a resume continues exactly."""

    global_step: int = 0
    epoch: int = 0
    #: sampler batches of this epoch already consumed (by all processes)
    micro_in_epoch: int = 0
    skipped_nonfinite: int = 0
    train_tokens: int = 0
    #: every finite micro-batch loss of the run (resumes included), for FitResult.train_loss
    loss_sum: float = 0.0
    loss_count: int = 0

    @classmethod
    def load(cls, checkpoint: Path) -> "LoopState":
        saved = json.loads((checkpoint / STATE_FILE).read_text())
        return cls(**{k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(cls)}})


class LogWindow:
    """The micro-batches since the last logged step: their mean loss and tokens per second."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss, self.count, self.tokens, self.started = 0.0, 0, 0, time.monotonic()

    def restart_clock(self) -> None:
        """Tokens/s from now on (after a compile); the losses so far still count."""
        self.tokens, self.started = 0, time.monotonic()

    def add(self, loss: float | None, tokens: int) -> None:
        self.tokens += tokens
        if loss is not None:
            self.loss, self.count = self.loss + loss, self.count + 1

    def record(self, accelerator: Any, state: LoopState, plan: StepPlan, scheduler: Any, start: float) -> dict[str, Any]:
        mean_loss = self.loss / max(1, self.count)
        if accelerator.num_processes > 1:  # the loss of the whole global batch, not rank 0's share
            mean_loss = accelerator.reduce(torch.tensor(mean_loss, device=accelerator.device), "mean").item()
        record = {
            "step": state.global_step,
            "epoch": round(state.epoch + state.micro_in_epoch / max(1, plan.batches_per_epoch), 4),
            "loss": mean_loss,
            "learning_rate": scheduler.get_last_lr()[0],
            "tokens_per_second": self.tokens / max(time.monotonic() - self.started, 1e-9),
            "elapsed_seconds": round(time.monotonic() - start, 3),
        }
        self.reset()
        return record


def fit(
    model: torch.nn.Module,
    task: Task,
    train_dataset: Any,
    cfg: TrainConfig,
    output_dir: str | os.PathLike,
    *,
    evaluate: Callable[[torch.nn.Module, Any], dict[str, Any]] | None = None,
    resume_from: str | os.PathLike | None = None,
    accelerator: Any = None,
    collate: Callable | None = None,
    run_config: dict[str, Any] | None = None,
) -> FitResult:
    """Train ``model`` on ``train_dataset`` with the task's collate and loss.

    ``evaluate(model, accelerator)`` is called every ``cfg.eval_steps`` and at the end;
    its dict is logged and returned in ``FitResult.eval_history``.
    """
    output_dir = Path(output_dir)
    accelerator = accelerator or make_accelerator(cfg, output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.num_threads:  # the runner chose and stated the default already; an explicit count holds here too
        torch.set_num_threads(cfg.num_threads)
    set_seed(cfg.seed)
    if len(train_dataset) == 0:
        raise BertTasksError("the training set is empty after preprocessing")
    sampler = EpochBatchSampler(feature_lengths(train_dataset), cfg.batch_size, seed=cfg.seed,
                                group_by_length=cfg.group_by_length)
    plan = StepPlan.of(sampler, cfg, accelerator.num_processes)
    model, optimizer, scheduler, loader = _prepare(model, task, train_dataset, sampler, cfg, plan, accelerator, collate)
    log_path = output_dir / "train_log.jsonl"
    state = _resume(accelerator, resolve_resume(resume_from, output_dir), log_path)

    result = FitResult(global_step=state.global_step, skipped_nonfinite=state.skipped_nonfinite)
    start = epoch_started = time.monotonic()
    budget = cfg.budget_minutes * 60 if cfg.budget_minutes else None
    progress = Progress(accelerator, plan.total, state.global_step)
    window = LogWindow()
    compile_pending = cfg.compile
    finished = state.global_step >= plan.total
    while not finished:
        sampler.start_epoch(state.epoch, skip=state.micro_in_epoch)
        model.train()
        window_finite = True
        for batch in loader:
            step_started = time.monotonic()
            state.micro_in_epoch += accelerator.num_processes
            with accelerator.accumulate(model):
                if compile_pending:
                    loss, finite = _first_compiled_step(model, task, batch, accelerator, optimizer)
                else:
                    loss, finite = _forward_backward(model, task, batch, accelerator)
                window_finite = window_finite and finite
                if accelerator.sync_gradients:
                    _optimizer_step(model, optimizer, scheduler, accelerator, cfg, state, window_finite, loss, output_dir)
                    window_finite = True
            tokens = int(batch["attention_mask"].sum().item()) * accelerator.num_processes
            state.train_tokens += tokens
            value = loss.detach().float().item() if finite else None
            window.add(value, tokens)
            if value is not None:
                state.loss_sum, state.loss_count = state.loss_sum + value, state.loss_count + 1
            if compile_pending:  # compile time is reported apart; the logged tokens/s stays steady-state
                compile_pending = False
                accelerator.print(f"torch.compile: first step (compile + run) took {time.monotonic() - step_started:.1f} s")
                window.restart_clock()
            if not accelerator.sync_gradients:
                continue

            state.global_step += 1
            step = state.global_step
            progress.update(step)
            if step % cfg.logging_steps == 0 or step == plan.total:
                _log_step(window.record(accelerator, state, plan, scheduler, start), accelerator, log_path, progress)
            if evaluate and cfg.eval_steps and step % cfg.eval_steps == 0 and step < plan.total:
                _run_eval(evaluate, model, accelerator, step, log_path, result, progress)
                model.train()
            # every process stops at the same step: each clock is its own, and a lone stop would hang the others
            out_of_budget = budget is not None and not _on_every_process(accelerator, time.monotonic() - start < budget)
            finished = step >= plan.total or out_of_budget
            if cfg.save_steps and (step % cfg.save_steps == 0 or finished):
                _pool_losses(accelerator, state)
                save_checkpoint(accelerator, output_dir, dataclasses.asdict(state), cfg.save_total_limit, run_config)
            if out_of_budget and step < plan.total:
                result.stopped_by_budget = True
                accelerator.print(f"time budget of {cfg.budget_minutes} minutes spent; stopping at step {step}")
            if finished:
                break
        else:
            state.epoch, state.micro_in_epoch = state.epoch + 1, 0
            if result.seconds_per_epoch is None:
                result.seconds_per_epoch = time.monotonic() - epoch_started
    progress.close()

    result.global_step = state.global_step
    result.epochs_completed = state.epoch + state.micro_in_epoch / max(1, plan.batches_per_epoch)
    result.train_seconds = time.monotonic() - start
    result.train_tokens = state.train_tokens
    result.skipped_nonfinite = state.skipped_nonfinite
    result.train_loss = _run_mean_loss(accelerator, state)
    if evaluate:
        _run_eval(evaluate, model, accelerator, state.global_step, log_path, result, progress)
    accelerator.wait_for_everyone()
    return result


def _prepare(model, task: Task, train_dataset, sampler, cfg: TrainConfig, plan: StepPlan, accelerator, collate):
    """The model, AdamW, the LR schedule and the loader, handed to Accelerate."""
    loader = DataLoader(train_dataset, batch_sampler=sampler, collate_fn=collate or task.collate,
                        num_workers=cfg.dataloader_workers, generator=torch.Generator().manual_seed(cfg.seed))
    optimizer = make_optimizer(model, cfg, accelerator.device)
    if cfg.compile:
        compile_model(model, cfg.compile_scope)  # in place; the first step pays the compile time
    wrap_at_layers(accelerator, model)  # FSDP: one unit per encoder layer
    configure_deepspeed(accelerator, cfg)  # ZeRO: the recipe's batch, accumulation and clipping
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    # Not prepared: Accelerate would step it once per process, but plan.total already counts
    # optimizer steps of the whole group. Registered so checkpoints still carry it.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.lr_scheduler, plan.warmup, plan.total))
    accelerator.register_for_checkpointing(scheduler)
    return model, optimizer, scheduler, loader


def _resume(accelerator, checkpoint: Path | None, log_path: Path) -> LoopState:
    """The state to start from: a fresh one, or a checkpoint's (its weights, optimizer, RNG and position)."""
    if checkpoint is None:
        return LoopState()
    try:
        accelerator.load_state(str(checkpoint))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise BertTasksError(f"this checkpoint does not fit the model being trained "
                             f"({str(exc).splitlines()[0][:200]})", file=checkpoint) from None
    state = LoopState.load(checkpoint)
    if not accelerator.is_main_process:  # the saved loss sums are the whole group's: counted once, on rank 0
        state.loss_sum, state.loss_count = 0.0, 0
    if accelerator.is_main_process:
        truncate_log(log_path, state.global_step)
    accelerator.print(f"resumed from {checkpoint} at step {state.global_step}")
    return state


def _optimizer_step(model, optimizer, scheduler, accelerator, cfg: TrainConfig, state: LoopState, window_finite: bool,
                    loss: torch.Tensor, output_dir: Path) -> None:
    """Step (clipped), or skip a non-finite step, or stop the run naming it; every process decides alike, since
    ``window_finite`` is made of micro-batch verdicts all processes agreed on (:func:`_forward_backward`)."""
    finite = window_finite
    if not finite and not cfg.skip_nonfinite:
        raise NonFiniteLoss(
            f"loss became {loss.item()} at step {state.global_step + 1}; "
            f"the last good checkpoint is {_last_checkpoint_text(output_dir)}; "
            "pass --skip-nonfinite to skip such steps"
        )
    if finite:
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
    else:
        state.skipped_nonfinite += 1
    optimizer.zero_grad(set_to_none=True)


def _log_step(record: dict[str, Any], accelerator, log_path: Path, progress: "Progress") -> None:
    progress.log(record)
    if accelerator.is_main_process:
        append_jsonl(log_path, record)
    accelerator.log({"train/" + k: v for k, v in record.items() if k != "step"}, step=record["step"])


def _forward_backward(model, task: Task, batch, accelerator) -> tuple[torch.Tensor, bool]:
    """One micro-batch: the task's forward and loss, and the backward pass when the loss is finite on every
    process (a backward holds collectives, DDP's, FSDP's or ZeRO's, that all processes must enter or none)."""
    loss = task.loss(task.forward(model, batch), batch)
    finite = _on_every_process(accelerator, bool(torch.isfinite(loss.detach()).item()))
    if finite:
        accelerator.backward(loss)
    return loss, finite


def _first_compiled_step(model, task: Task, batch, accelerator, optimizer) -> tuple[torch.Tensor, bool]:
    """The first step compiles the backward graph too; if that step fails, it is retried uncompiled, as the forward
    guard does: a compiler failure then goes away, and any other error comes back from the eager retry. Not under
    several processes: the failing one would repeat collectives the others have passed, so the error stands."""
    try:
        return _forward_backward(model, task, batch, accelerator)
    except Exception as exc:  # the fast path is optional
        if accelerator.num_processes > 1:
            raise
        warnings.warn(f"the first compiled step failed ({type(exc).__name__}: {str(exc)[:120]}); retrying it and "
                      "continuing uncompiled", RuntimeWarning, stacklevel=2)
        uncompile_model(model)
        optimizer.zero_grad(set_to_none=True)
        return _forward_backward(model, task, batch, accelerator)


def _pool_losses(accelerator: Any, state: LoopState) -> None:
    """Before a checkpoint: rank 0 takes the whole group's loss sums, the others keep none, so the saved state
    is the run's and a resumed run counts every loss once."""
    if accelerator.num_processes == 1:
        return
    totals = torch.tensor([state.loss_sum, float(state.loss_count)], dtype=torch.float64, device=accelerator.device)
    totals = accelerator.reduce(totals, "sum").cpu()
    state.loss_sum, state.loss_count = (float(totals[0]), int(totals[1])) if accelerator.is_main_process else (0.0, 0)


def _run_mean_loss(accelerator: Any, state: LoopState) -> float:
    """Mean training loss over every micro-batch of the run, across all processes."""
    totals = torch.tensor([state.loss_sum, float(state.loss_count)], dtype=torch.float64, device=accelerator.device)
    if accelerator.num_processes > 1:
        totals = accelerator.reduce(totals, "sum")
    return float(totals[0] / totals[1]) if totals[1] > 0 else float("nan")


def _on_every_process(accelerator: Any, holds: bool) -> bool:
    """True when ``holds`` is true on every process: they must agree to run a backward (and so to step, or their
    weights would drift apart) and to stop."""
    if accelerator.num_processes == 1:
        return holds
    flag = torch.tensor([1.0 if holds else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() == accelerator.num_processes)


def _last_checkpoint_text(output_dir: Path) -> str:
    found = checkpoint_dirs(output_dir)
    return str(found[-1]) if found else "none (no checkpoint was saved)"


def format_metrics(metrics: dict[str, Any]) -> str:
    """``k=v`` pairs, floats to 4 significant digits: the one format of every summary and eval line."""
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool))


def _run_eval(evaluate, model, accelerator, step, log_path, result, progress: "Progress") -> None:
    metrics = evaluate(model, accelerator)
    record = {"step": step, **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}}
    result.eval_history.append(record)
    if accelerator.is_main_process:
        append_jsonl(log_path, {"eval": True, **record})
        progress.write(f"eval  {format_metrics(record)}")
    accelerator.log({"eval/" + k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}, step=step)


def save_checkpoint(accelerator, output_dir: Path, state: dict, keep: int | None, run_config: dict | None) -> Path:
    """Model, optimizer, scheduler, RNG states and data position; renamed into place only when complete."""
    final = output_dir / CHECKPOINTS / f"step-{state['global_step']}"
    tmp = final.with_name(f".{final.name}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
        if accelerator.is_main_process:
            if run_config is not None:
                write_json(tmp / RUN_CONFIG_FILE, run_config)
            write_json(tmp / STATE_FILE, state)  # written last: its presence marks the checkpoint complete
            for child in tmp.iterdir():
                if child.is_file():
                    with open(child, "rb") as f:
                        os.fsync(f.fileno())
    except BaseException:  # an error or Ctrl-C mid-write: leave no half-written checkpoint behind
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        if keep:
            for old in checkpoint_dirs(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Training progress for people: a live bar on a terminal, one plain line per logged step elsewhere.

    Without a terminal (CI logs, ``nohup``, a file) a bar would print nothing useful, so each
    logging step prints ``step, loss, learning rate, tokens/s, ETA`` on one line instead. Other
    messages (evaluations) go through :meth:`write`, which on a terminal prints above the bar
    rather than onto its line.
    """

    def __init__(self, accelerator: Any, total: int, initial: int):
        self.enabled = accelerator.is_main_process
        self.total, self.initial, self.step = total, initial, initial
        self.started = time.monotonic()
        self.bar = None
        if self.enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)

    def update(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(step - self.step)
        self.step = step

    def eta(self) -> str:
        done = self.step - self.initial
        if done <= 0:
            return "?"
        return format_duration((time.monotonic() - self.started) / done * (self.total - self.step))

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['learning_rate']:.2e}",
                                 tok_s=f"{record['tokens_per_second']:.0f}")
            return
        print(f"step {record['step']}/{self.total}  loss {record['loss']:.4f}  lr {record['learning_rate']:.2e}  "
              f"tokens/s {record['tokens_per_second']:.0f}  eta {self.eta()}", file=sys.stderr, flush=True)

    def write(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --------------------------------------------------------------------------- prediction

@torch.no_grad()
def predict(
    model: torch.nn.Module,
    task: Task,
    dataset: Any,
    *,
    batch_size: int = 64,
    accelerator: Any = None,
    collate: Callable | None = None,
) -> dict[str, list[np.ndarray]]:
    """Model outputs for every feature, in dataset order, one float32 array per feature.

    Features are batched longest-first to minimise padding; per-token outputs are
    trimmed back to each feature's own length. Under several processes,
    ``gather_for_metrics`` drops the duplicates Accelerate pads the last batch with.
    """
    if len(dataset) == 0:
        return {}
    lengths = feature_lengths(dataset)
    sampler = EpochBatchSampler(lengths, batch_size, seed=0, sort=True)
    order = [i for batch in sampler.batches() for i in batch]
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate or task.collate)
    if accelerator is not None:
        loader = accelerator.prepare_data_loader(loader)
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    collected: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        outputs = task.forward(model, batch)
        seq_len = batch["attention_mask"].sum(dim=1)
        for key, kind in task.prediction_outputs.items():
            value = getattr(outputs, key)
            per_token = kind == "token"
            if accelerator is not None and accelerator.num_processes > 1:
                value = accelerator.pad_across_processes(value, dim=1) if per_token else value
                value, lens = accelerator.gather_for_metrics((value.contiguous(), seq_len))
            else:
                lens = seq_len
            value = value.float().cpu().numpy()
            lens = lens.cpu().numpy()
            collected.setdefault(key, []).extend(
                value[i, : lens[i]] if per_token else value[i] for i in range(len(value))
            )
    model.train(was_training)
    restored: dict[str, list[np.ndarray]] = {}
    for key, values in collected.items():
        ordered = [None] * len(order)
        for position, index in enumerate(order):
            ordered[index] = values[position]
        restored[key] = ordered
    return restored

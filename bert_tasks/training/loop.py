"""The one Accelerate training loop every task trains through.

The same code runs on a laptop CPU, several GPUs and several nodes: Accelerate owns devices, mixed
precision, gradient accumulation and process groups. The task supplies collate, forward and loss
(:mod:`bert_tasks.protocol`); batches come from :mod:`.batching`, checkpoints go through :mod:`.checkpoints`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from ..config import TrainConfig
from ..errors import BertTasksError
from ..io import append_jsonl
from ..protocol import Task
from .batching import EpochBatchSampler, StepPlan, feature_lengths
from .checkpoints import LoopState, last_checkpoint_text, resolve_resume, save_checkpoint, truncate_log
from .compiled import compile_model, uncompile_model
from .optim import lr_lambda, make_optimizer
from .precision import make_accelerator
from .progress import LogWindow, Progress, format_metrics
from .selection import BestWeights, Selection
from .sharding import configure_deepspeed, wrap_at_layers


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
    #: with a selection: the kept evaluation (``step``, ``metric``, ``score``, ``metrics``), None otherwise
    best: dict[str, Any] | None = None
    stopped_early: bool = False
    #: stopped by the selection's own stop rule (a search's pruner), not by the patience
    stopped_by_rule: bool = False


class NonFiniteLoss(BertTasksError):
    pass


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
    select: Selection | None = None,
) -> FitResult:
    """Train ``model`` on ``train_dataset`` with the task's collate and loss.

    ``evaluate(model, accelerator)`` is called every ``cfg.eval_steps`` and at the end;
    its dict is logged and returned in ``FitResult.eval_history``. With ``select`` (:mod:`.selection`) the best
    evaluated state is kept and is the model's state when ``fit`` returns, and early stopping may end the run.
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
    sharded = any(kind in str(accelerator.distributed_type) for kind in ("FSDP", "DEEPSPEED"))
    if select is not None and evaluate is not None and sharded:
        raise BertTasksError("--select-best and early stopping keep a full copy of the weights; they do not run under "
                             "FSDP or DeepSpeed yet: use plain data parallelism")
    loop = _Loop(model, task, cfg, accelerator, optimizer, scheduler, plan, state, output_dir, log_path, evaluate,
                 run_config, select if evaluate is not None else None)
    finished = state.global_step >= plan.total or state.stopped_early
    while not finished:
        sampler.start_epoch(state.epoch, skip=state.micro_in_epoch)
        model.train()
        loop.window_finite = True
        for batch in loader:
            loop.micro_batch(batch)
            if accelerator.sync_gradients and (finished := loop.end_of_step()):
                break
        else:
            state.epoch, state.micro_in_epoch = state.epoch + 1, 0
            if loop.result.seconds_per_epoch is None:
                loop.result.seconds_per_epoch = time.monotonic() - loop.start
    return loop.finish()


class _Loop:
    """One :func:`fit`: the prepared pieces and where training stands. ``fit`` hands it the batches; it runs each
    micro-batch (:meth:`micro_batch`) and, after each optimizer step, logging, evaluation, the time budget and
    checkpoints (:meth:`end_of_step`)."""

    def __init__(self, model, task: Task, cfg: TrainConfig, accelerator, optimizer, scheduler, plan: StepPlan,
                 state: LoopState, output_dir: Path, log_path: Path, evaluate, run_config: dict[str, Any] | None,
                 select: Selection | None = None):
        self.model, self.task, self.cfg, self.accelerator = model, task, cfg, accelerator
        self.optimizer, self.scheduler, self.plan, self.state = optimizer, scheduler, plan, state
        self.output_dir, self.log_path, self.evaluate, self.run_config = output_dir, log_path, evaluate, run_config
        self.result = FitResult(global_step=state.global_step, skipped_nonfinite=state.skipped_nonfinite)
        self.start = time.monotonic()
        self.budget = cfg.budget_minutes * 60 if cfg.budget_minutes else None
        self.progress = Progress(accelerator, plan.total, state.global_step)
        self.window = LogWindow()
        self.compile_pending = cfg.compile
        self.window_finite = True  # every micro-batch of the step being accumulated had a finite loss
        self.select = select
        self.best = BestWeights(output_dir) if select is not None else None
        if self.best is not None:
            self.best.load(state.best_step)

    def micro_batch(self, batch: Any) -> None:
        """Forward and backward (the first compiled one guarded), the optimizer step when the gradients are
        synced, and the loss and token counts."""
        accelerator, state = self.accelerator, self.state
        step_started = time.monotonic()
        state.micro_in_epoch += accelerator.num_processes
        with accelerator.accumulate(self.model):
            if self.compile_pending:
                loss, finite = _first_compiled_step(self.model, self.task, batch, accelerator, self.optimizer)
            else:
                loss, finite = _forward_backward(self.model, self.task, batch, accelerator)
            self.window_finite = self.window_finite and finite
            if accelerator.sync_gradients:
                _optimizer_step(self.model, self.optimizer, self.scheduler, accelerator, self.cfg, state,
                                self.window_finite, loss, self.output_dir)
                self.window_finite = True
        tokens = int(batch["attention_mask"].sum().item()) * accelerator.num_processes
        state.train_tokens += tokens
        value = loss.detach().float().item() if finite else None
        self.window.add(value, tokens)
        if value is not None:
            state.loss_sum, state.loss_count = state.loss_sum + value, state.loss_count + 1
        if self.compile_pending:  # compile time is reported apart; the logged tokens/s stays steady-state
            self.compile_pending = False
            accelerator.print(f"torch.compile: first step (compile + run) took {time.monotonic() - step_started:.1f} s")
            self.window.restart_clock()

    def end_of_step(self) -> bool:
        """After an optimizer step: log, evaluate, check the budget, save a checkpoint; True when training is done."""
        accelerator, cfg, state = self.accelerator, self.cfg, self.state
        state.global_step += 1
        step = state.global_step
        self.progress.update(step)
        if step % cfg.logging_steps == 0 or step == self.plan.total:
            record = self.window.record(accelerator, state, self.plan, self.scheduler, self.start)
            _log_step(record, accelerator, self.log_path, self.progress)
        evaluated = bool(self.evaluate and cfg.eval_steps and step % cfg.eval_steps == 0 and step < self.plan.total)
        if evaluated:
            value = self._judge(_run_eval(self.evaluate, self.model, accelerator, step, self.log_path, self.result,
                                          self.progress), step)
            self.model.train()
            rule = self.select.stop_rule if self.select is not None else None
            if rule is not None and not _on_every_process(accelerator, not rule(step, value)):
                state.stopped_early = self.result.stopped_by_rule = True
                accelerator.print(f"stopped at step {step} by the search's pruner")
        # every process stops at the same step: each clock is its own, and a lone stop would hang the others
        out_of_budget = self.budget is not None and not _on_every_process(
            accelerator, time.monotonic() - self.start < self.budget)
        patience = self.select.patience if self.select is not None else None
        if patience and evaluated and not state.stopped_early and not _on_every_process(
                accelerator, state.evals_without_improvement < patience):
            state.stopped_early = True
            accelerator.print(f"early stopping: {patience} evaluation{'s' * (patience > 1)} without an improvement of {self.select.name}; "
                              f"stopping at step {step} (best: step {state.best_step})")
        finished = step >= self.plan.total or out_of_budget or state.stopped_early
        if cfg.save_steps and (step % cfg.save_steps == 0 or finished):
            _pool_losses(accelerator, state)
            if self.best is not None:
                self.best.persist(accelerator.is_main_process)
            save_checkpoint(accelerator, self.output_dir, dataclasses.asdict(state), cfg.save_total_limit,
                            self.run_config)
        if out_of_budget and step < self.plan.total:
            self.result.stopped_by_budget = True
            accelerator.print(f"time budget of {cfg.budget_minutes} minutes spent; stopping at step {step}")
        return finished

    def finish(self) -> FitResult:
        """The run's summary, and the final evaluation."""
        self.progress.close()
        result, state = self.result, self.state
        result.global_step = state.global_step
        result.epochs_completed = state.epoch + state.micro_in_epoch / max(1, self.plan.batches_per_epoch)
        result.train_seconds = time.monotonic() - self.start
        result.train_tokens = state.train_tokens
        result.skipped_nonfinite = state.skipped_nonfinite
        result.train_loss = _run_mean_loss(self.accelerator, state)
        result.stopped_early = state.stopped_early
        if self.evaluate and not state.stopped_early:  # an early stop comes right after its step's evaluation
            self._judge(_run_eval(self.evaluate, self.model, self.accelerator, state.global_step, self.log_path, result,
                                  self.progress), state.global_step)
        if self.select is not None and state.best_step is not None:
            self._keep_best(result)
        self.accelerator.wait_for_everyone()
        return result

    def _judge(self, record: dict[str, Any], step: int) -> float | None:
        """With a selection: keep this evaluation's state if it is the best so far, else count it against the
        patience. Every process decides alike (a lone keeper would restore other weights than the rest)."""
        if self.select is None:
            return None
        state, value = self.state, self.select.value_of(record)
        if _on_every_process(self.accelerator, self.select.improves(value, state.best_score)):
            state.best_step, state.best_score, state.evals_without_improvement = step, value, 0
            state.best_metrics = {k: v for k, v in record.items() if k != "step"}
            self.best.keep(self.model, step)
        else:
            state.evals_without_improvement += 1
        return value

    def _keep_best(self, result: FitResult) -> None:
        """The kept state becomes the model's; re-evaluated when it is not the last one evaluated, so that the
        task's prediction files in the run folder are the kept state's."""
        state = self.state
        metrics = state.best_metrics or {}
        if state.best_step != state.global_step:
            self.best.restore(self.model, state.best_step)
            metrics = {k: v for k, v in self.evaluate(self.model, self.accelerator).items()
                       if isinstance(v, (int, float, str))}
        result.best = {"step": state.best_step, "metric": self.select.name, "score": state.best_score,
                       "metrics": metrics}
        self.best.remove(self.accelerator.is_main_process)


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
            f"the last good checkpoint is {last_checkpoint_text(output_dir)}; "
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


def _run_eval(evaluate, model, accelerator, step, log_path, result, progress: "Progress") -> dict[str, Any]:
    metrics = evaluate(model, accelerator)
    record = {"step": step, **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}}
    result.eval_history.append(record)
    if accelerator.is_main_process:
        append_jsonl(log_path, {"eval": True, **record})
        progress.write(f"eval  {format_metrics(record)}")
    accelerator.log({"eval/" + k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}, step=step)
    return record

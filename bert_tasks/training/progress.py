"""What a run shows people while it trains: the logged window's loss and tokens/s, a bar or plain lines, ETA."""

from __future__ import annotations

import sys
import time
from typing import Any

import torch
from tqdm.auto import tqdm


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


def format_metrics(metrics: dict[str, Any]) -> str:
    """``k=v`` pairs, floats to 4 significant digits: the one format of every summary and eval line."""
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()
                     if isinstance(v, (int, float, str)) and not isinstance(v, bool))


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

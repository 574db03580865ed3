"""Keeping the best evaluated state, and early stopping: what :func:`bert_tasks.training.fit` does with each
evaluation when ``train.select_best`` (or ``train.early_stopping_patience``) is set.

The best state's weights are kept in memory on the CPU (one copy); a run that writes checkpoints also keeps them
as one file in the run folder, ``best_state.safetensors`` (rewritten just before each checkpoint when the best
changed, removed when training ends), so ``--resume-from`` finds them. Where the run stands (best step, score,
evaluations without improvement) is part of ``trainer_state.json`` (:class:`~.checkpoints.LoopState`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint.modelcard import is_score
from ..errors import BertTasksError
from ..io import atomic_write_bytes
from ..model.fast import unwrap

BEST_STATE_FILE = "best_state.safetensors"


@dataclass
class Selection:
    """How to score an evaluation (``score(metrics)``, None when the metric is missing) and which way is better."""

    name: str
    score: Callable[[dict[str, Any]], float | None]
    maximize: bool = True
    patience: int | None = None
    threshold: float = 0.0
    #: a caller's own stop rule, asked after each evaluation during training with (step, score): a search's pruner
    stop_rule: Callable[[int, float], bool] | None = None

    def improves(self, value: float, best: float | None) -> bool:
        """Better than ``best`` by more than the threshold (the first evaluation always is; NaN never is)."""
        if not math.isfinite(value):
            return False
        if best is None:
            return True
        gain = value - best if self.maximize else best - value
        return gain > self.threshold

    def value_of(self, metrics: dict[str, Any]) -> float:
        """The evaluation's score; one line naming the metrics it does report when it lacks the chosen one."""
        value = self.score(metrics)
        if value is None:
            reported = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                                 and k != "step" and is_score(k))
            raise BertTasksError(f"--select-best {self.name}: the task does not report this metric; it reports "
                                 f"{reported}", record="key train.select_best")
        return float(value)


class BestWeights:
    """The best state's weights: a CPU copy in memory, and on disk when the run writes checkpoints."""

    def __init__(self, output_dir: Path):
        self.path = Path(output_dir) / BEST_STATE_FILE
        self.weights: dict[str, torch.Tensor] | None = None
        self.step: int | None = None
        self.saved_step: int | None = None

    def keep(self, model: torch.nn.Module, step: int) -> None:
        self.weights = {k: v.detach().to("cpu", copy=True) for k, v in unwrap(model).state_dict().items()}
        self.step = step

    def persist(self, main_process: bool) -> None:
        """Before a checkpoint: the file holds the state that checkpoint names as best."""
        if self.weights is None or self.saved_step == self.step:
            return
        if main_process:
            from safetensors.torch import save

            atomic_write_bytes(self.path, save(self.weights, metadata={"step": str(self.step)}))
        self.saved_step = self.step

    def load(self, best_step: int | None) -> None:
        """On resume: the file's weights when they are the checkpoint's best (a kill between writing the file and
        completing the checkpoint leaves a later best there, which the resumed run reaches again)."""
        if best_step is None or not self.path.is_file():
            return
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(self.path), "pt") as f:
            step = int((f.metadata() or {}).get("step", -1))
        if step == best_step:
            self.weights, self.step, self.saved_step = load_file(str(self.path)), step, step

    def restore(self, model: torch.nn.Module, best_step: int) -> None:
        if self.weights is None or self.step != best_step:
            raise BertTasksError(f"the weights of the best step {best_step} were lost (the run was resumed from a "
                                 "checkpoint older than them and did not reach them again); rerun without "
                                 "--resume-from", file=self.path)
        target = unwrap(model)
        device = next(target.parameters()).device
        target.load_state_dict({k: v.to(device) for k, v in self.weights.items()})

    def remove(self, main_process: bool) -> None:
        if main_process:
            self.path.unlink(missing_ok=True)

"""Resumable checkpoints: ``OUTPUT/checkpoints/step-N/`` with the Accelerate state, where the run stands, and the
recipe; written under a temporary name and renamed into place only when complete."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BertTasksError
from ..io import atomic_directory, atomic_write_text, write_json

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
RUN_CONFIG_FILE = "run_config.json"


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
    #: best-state selection (:mod:`.selection`): the kept evaluation's step, score and metrics, the evaluations
    #: since it without improvement, and whether early stopping ended the run
    best_step: int | None = None
    best_score: float | None = None
    best_metrics: dict | None = None
    evals_without_improvement: int = 0
    stopped_early: bool = False

    @classmethod
    def load(cls, checkpoint: Path) -> "LoopState":
        saved = json.loads((checkpoint / STATE_FILE).read_text())
        return cls(**{k: v for k, v in saved.items() if k in {f.name for f in dataclasses.fields(cls)}})


def last_checkpoint_text(output_dir: Path) -> str:
    found = checkpoint_dirs(output_dir)
    return str(found[-1]) if found else "none (no checkpoint was saved)"


def save_checkpoint(accelerator, output_dir: Path, state: dict, keep: int | None, run_config: dict | None) -> Path:
    """Model, optimizer, scheduler, RNG states and data position; renamed into place only when complete
    (:func:`bert_tasks.io.atomic_directory`: every process writes its part into one staging folder, the main
    process renames it)."""
    final = output_dir / CHECKPOINTS / f"step-{state['global_step']}"
    staging = final.with_name(f".{final.name}.tmp")
    main = accelerator.is_main_process
    with atomic_directory(final, staging=staging, commit=main):  # the main process makes the staging folder
        accelerator.wait_for_everyone()  # ... before any other writes into it
        accelerator.save_state(str(staging), safe_serialization=True)
        if main:
            if run_config is not None:
                write_json(staging / RUN_CONFIG_FILE, run_config)
            write_json(staging / STATE_FILE, state)  # written last: its presence marks the checkpoint complete
    if main:
        _remove_stale(output_dir, keep)
    accelerator.wait_for_everyone()
    return final


def _remove_stale(output_dir: Path, keep: int | None) -> None:
    """Checkpoints beyond the newest ``keep``, and folders a removal cut off left behind. The state file goes
    first, so a removal a Ctrl-C cuts off leaves a folder no resume takes for a checkpoint (and the next save
    removes it)."""
    complete = checkpoint_dirs(output_dir)
    torn = [p for p in (output_dir / CHECKPOINTS).glob("step-*") if p.is_dir() and p not in complete]
    for old in [*(complete[:-keep] if keep else []), *torn]:
        (old / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)

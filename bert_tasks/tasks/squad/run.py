"""SQuAD orchestration: fine-tune and evaluate extractive QA (v1.1 and v2.0) from a resolved recipe.

Built only from the shared pieces (``runner``, ``train.fit``, ``train.predict``) and the SQuAD
adapter (loader, windows, n-best postprocessing, official scoring), so a SQuAD run folder looks
like any other: an HF model folder, ``recipe.yaml``, ``train_log.jsonl``, ``eval_results.json``
(``exact_match``, ``f1``, ``total``; v2.0 adds the HasAns/NoAns and best-threshold keys), a model
card, and the official-format ``predictions.json``, ``nbest_predictions.json`` and (v2.0)
``null_odds.json``.

:func:`finetune_squad` checks and loads the data before it touches the output folder, so bad
input fails early and leaves nothing behind. With no data source at all it falls back to
run_qa.py's default, the Hub ``squad`` (``squad_v2``) dataset; offline that ends in one line
pointing at the quickstart recipe, whose ``synthetic: true`` data is written into the run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ...config import Recipe
from ...io import append_jsonl, write_json
from ...modelcard import eval_set_text
from .config import SquadDataConfig
from .data import load_from_config, load_squad_examples
from .postprocess import write_prediction_files
from .task import SquadTask

log = logging.getLogger(__name__)

#: run_qa.py's README settings (bert-base-uncased on SQuAD), below any recipe
RUN_QA_DEFAULTS: dict[str, Any] = {
    "train.learning_rate": 3e-5,
    "train.batch_size": 12,
    "train.epochs": 2.0,
    "train.weight_decay": 0.0,  # TrainingArguments' default
    "data.max_seq_length": 384,
    "data.doc_stride": 128,
}
#: where ``synthetic: true`` writes its invented train and validation files
SYNTHETIC_DIR = "data"
#: config.json key that tells a folder's SQuAD version to QuestionAnswerer when recipe.yaml is gone
VERSION_KEY = "bert_tasks_version_2_with_negative"


def settle_version(recipe: Recipe) -> bool:
    """One truth for v1.1/v2.0: task ``squad_v2`` and ``version_2_with_negative`` imply each other."""
    cfg: SquadDataConfig = recipe.data
    version_2 = bool(cfg.version_2_with_negative) or recipe.task == "squad_v2"
    cfg.version_2_with_negative = version_2
    recipe.task = "squad_v2" if version_2 else "squad"
    return version_2


def _default_source(cfg: SquadDataConfig) -> None:
    if not (cfg.synthetic or cfg.dataset or cfg.train_file or cfg.validation_file):
        cfg.dataset = "squad_v2" if cfg.version_2_with_negative else "squad"  # run_qa.py's --dataset_name


def _dataset_card(cfg: SquadDataConfig) -> dict[str, str]:
    kind = "squad_v2" if cfg.version_2_with_negative else "squad"
    if cfg.synthetic:
        name = "bert-tasks synthetic SQuAD (quickstart)"
    elif cfg.train_file:
        name = Path(cfg.train_file).name
    else:
        name = "SQuAD v2.0" if cfg.version_2_with_negative else "SQuAD v1.1"
    return {"dataset_name": name, "dataset_type": kind}


# --------------------------------------------------------------------------- fine-tuning


def finetune_squad(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None,
                   dry_run: bool = False) -> dict[str, Any]:
    """Fine-tune on SQuAD; returns the final evaluation metrics ({} without validation data)."""
    from accelerate.utils import set_seed

    from ...runner import announce_training, build_model, finish_run, load_run_tokenizer, print_summary, start_run
    from ...train import fit

    cfg: SquadDataConfig = recipe.data
    version_2 = settle_version(recipe)
    _default_source(cfg)
    cfg.validate()
    if dry_run:
        start_run(recipe, dry_run=True)
        return {}
    # Real data is read and checked before the output folder is touched.
    train_examples = eval_examples = None
    if not cfg.synthetic:
        train_examples = load_from_config(cfg, train=True)
        if cfg.validation_file or cfg.dataset:
            eval_examples = load_from_config(cfg, train=False)
    run = start_run(recipe, overwrite=overwrite, resume_from=resume_from)
    if cfg.synthetic:
        train_examples, eval_examples = _synthetic_examples(cfg, run.output_dir / SYNTHETIC_DIR)

    task = SquadTask(version_2=version_2)
    tokenizer = load_run_tokenizer(recipe)
    train_features = task.preprocess(train_examples, tokenizer, cfg, train=True)
    eval_features = task.preprocess(eval_examples, tokenizer, cfg, train=False) if eval_examples is not None else None
    set_seed(recipe.train.seed)  # a fresh QA head is drawn from the run's seed, so a run repeats exactly
    model = build_model(recipe, "squad", tokenizer=tokenizer, resuming=run.resume_from is not None)
    batch_size = recipe.train.eval_batch_size

    def evaluate(model, accelerator) -> dict[str, Any]:
        return evaluate_squad(model, tokenizer, cfg, accelerator, run.output_dir, examples=eval_examples,
                              features=eval_features, batch_size=batch_size)

    before = None
    if eval_examples is not None and cfg.eval_before_training and resume_from is None:
        model.to(run.accelerator.device)
        before = evaluate_squad(model, tokenizer, cfg, run.accelerator, None, examples=eval_examples,
                                features=eval_features, batch_size=batch_size)
        if run.accelerator.is_main_process:
            append_jsonl(run.output_dir / "train_log.jsonl", {"eval": True, "step": 0, "before_training": True, **before})
        print_summary("before fine-tuning", _headline(before))

    announce_training(run)
    result = fit(model, task, train_features, recipe.train, run.output_dir,
                 evaluate=evaluate if eval_examples is not None else None, resume_from=run.resume_from,
                 accelerator=run.accelerator, run_config=recipe.to_dict())
    metrics = result.eval_history[-1] if result.eval_history else None
    if metrics is not None:
        metrics = {k: v for k, v in metrics.items() if k != "step"}
    _mark_version(run.accelerator.unwrap_model(model), version_2)
    card = _dataset_card(cfg)
    if metrics is not None:
        card["eval_set"] = eval_set_text(f"{card['dataset_name']} validation", int(metrics["total"]), "questions",
                                         cfg.max_eval_samples)
    finish_run(run, model, tokenizer, metrics, result, card=card)
    if metrics is None:
        print(f"no validation data: trained without evaluation; model in {run.output_dir}", flush=True)
        return {}
    if before is not None:
        print_summary("before fine-tuning", _headline(before))
    print_summary(f"after fine-tuning ({run.output_dir})", _headline(metrics) if before is not None else metrics)
    return metrics


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: metrics[k] for k in ("exact_match", "f1", "total") if k in metrics}


def _synthetic_examples(cfg: SquadDataConfig, folder: Path):
    """The invented quickstart set, written into the run folder so the run documents its own data."""
    from .synthetic import write_synthetic_splits

    paths = write_synthetic_splits(folder, version_2=cfg.version_2_with_negative)
    loaded = []
    for split, limit in (("train", cfg.max_train_samples), ("validation", cfg.max_eval_samples)):
        examples = load_squad_examples(paths[split], version_2=cfg.version_2_with_negative, split_hint=split)
        if limit is not None and limit < len(examples):
            examples = examples.select(range(limit))
        loaded.append(examples)
    return tuple(loaded)


def _mark_version(model: Any, version_2: bool) -> None:
    config = model.config
    if hasattr(config, "extra"):  # our BertConfig keeps unknown HF keys in .extra
        config.extra[VERSION_KEY] = version_2
    else:
        setattr(config, VERSION_KEY, version_2)


# --------------------------------------------------------------------------- evaluation


def evaluate_squad(model: Any, tokenizer: Any, cfg: SquadDataConfig, accelerator: Any = None,
                   output_dir: str | Path | None = None, *, examples: Any = None, features: Any = None,
                   batch_size: int = 64) -> dict[str, Any]:
    """Official EM/F1 of ``model`` on the config's validation data; writes the prediction files.

    ``examples``/``features`` reuse an already loaded and windowed validation set (fit's callback
    does, at every evaluation). With ``output_dir``, the main process writes ``predictions.json``,
    ``nbest_predictions.json``, ``null_odds.json`` (v2.0) and ``eval_results.json`` there.
    """
    from ...train import predict

    task = SquadTask(version_2=cfg.version_2_with_negative)
    if examples is None:
        examples = load_from_config(cfg, train=False)
    if features is None:
        features = task.preprocess(examples, tokenizer, cfg, train=False)
    logits = predict(model, task, features, batch_size=batch_size, accelerator=accelerator)
    predictions = task.postprocess(examples, features, logits["start_logits"], logits["end_logits"], cfg)
    metrics = task.metrics(predictions, examples)
    if output_dir is not None and (accelerator is None or accelerator.is_main_process):
        output_dir = Path(output_dir)
        write_prediction_files(output_dir, predictions, cfg.version_2_with_negative)
        write_json(output_dir / "eval_results.json", metrics)
    return metrics


def trained_settings(model_dir: str | Path) -> dict[str, Any]:
    """The ``task`` and ``data:`` settings a run folder was trained with (from recipe.yaml), if any."""
    import yaml

    path = Path(model_dir) / "recipe.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    settings = dict(data.get("data") or {}) if isinstance(data.get("data"), dict) else {}
    if data.get("task") == "squad_v2":
        settings["version_2_with_negative"] = True
    return settings


def trained_version_2(model_dir: str | Path) -> bool | None:
    """Whether a folder holds a SQuAD 2.0 model: its recipe.yaml, else its config.json mark; None if unknown."""
    import json

    settings = trained_settings(model_dir)
    if "version_2_with_negative" in settings:
        return bool(settings["version_2_with_negative"])
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = config.get(VERSION_KEY) if isinstance(config, dict) else None
    return bool(value) if value is not None else None


#: data settings ``eval squad`` takes from the trained recipe unless a flag says otherwise
_INHERITED = ("max_seq_length", "doc_stride", "max_query_length", "n_best_size", "max_answer_length",
              "null_score_diff_threshold", "version_2_with_negative")


def eval_config(model_dir: str | Path, **given: Any) -> SquadDataConfig:
    """The evaluation settings: flags given, else the folder's recipe.yaml, else run_qa's defaults.

    Without a validation source, a run trained on the synthetic set is scored on its own
    synthetic validation file.
    """
    model_dir = Path(model_dir)
    trained = trained_settings(model_dir)
    values = {k: trained[k] for k in _INHERITED if trained.get(k) is not None}
    values.update({k: v for k, v in given.items() if v is not None})
    if given.get("dataset") == "squad_v2":
        values["version_2_with_negative"] = True
    cfg = SquadDataConfig(**values)
    if not (cfg.validation_file or cfg.dataset):
        suffix = "v2" if cfg.version_2_with_negative else "v1"
        synthetic = model_dir / SYNTHETIC_DIR / f"synthetic-{suffix}-validation.json"
        if trained.get("synthetic") and synthetic.is_file():
            cfg.validation_file = str(synthetic)
        else:
            _default_source(cfg)
    return cfg.validate()


def evaluate_squad_folder(model_dir: str | Path, cfg: SquadDataConfig, *, output_dir: str | Path | None = None,
                          backend: str = "scratch", batch_size: int = 64) -> dict[str, Any]:
    """Score a fine-tuned folder (our encoder, or transformers with ``backend="hf"``) and write the files."""
    import torch

    from ...checkpoint import check_vocab_fits, load_pretrained, load_tokenizer, resolve_model_dir
    from ...runner import print_summary

    folder = resolve_model_dir(str(model_dir))
    examples = load_from_config(cfg, train=False)  # bad data fails before the model is loaded
    model = load_pretrained(folder, task="squad", backend=backend, trained_head=True)
    if torch.cuda.is_available():
        model = model.to("cuda")
    tokenizer = load_tokenizer(str(folder))
    check_vocab_fits(tokenizer, model.config, source=folder)
    out = Path(output_dir) if output_dir else folder
    out.mkdir(parents=True, exist_ok=True)
    metrics = evaluate_squad(model, tokenizer, cfg, None, out, examples=examples, batch_size=batch_size)
    print_summary(f"{'squad_v2' if cfg.version_2_with_negative else 'squad'} ({folder}, backend {backend})", metrics)
    return metrics


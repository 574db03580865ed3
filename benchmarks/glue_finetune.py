"""GLUE fine-tuning end to end: our `finetune glue` against a plain transformers Trainer, on SST-2.

In one run, on the same data, model (the bundled MiniLM), thread count and hyperparameters
(``--lr``, ``--warmup-ratio``, batch 32, AdamW, linear schedule, weight decay 0, seed 42, 128 tokens):

(a) ours: ``runner.train`` on the scratch encoder, dynamic padding + length-grouped batches,
    evaluation sorted by length;
(b) the Trainer padding every example to 128 tokens, as run_glue.py does by default;
(c) the Trainer with dynamic padding (``DataCollatorWithPadding``), random batches.

Each is timed from loading the model to the dev accuracy (tokenize, train, evaluate; ours also
saves its run folder). The 3-epoch padded baseline is far too slow on a few CPU cores, so
``--epochs`` and ``--max-train-samples`` shrink the training set; the dev set is always whole.

    python -m benchmarks.glue_finetune --data-dir ../shared/data/SST-2 --epochs 3 --max-train-samples 2500
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA, load_note, shown

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BATCH, EVAL_BATCH, MAX_LEN, SEED, WEIGHT_DECAY = 32, 64, 128, 42, 0.0


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.glue_finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA / "SST-2"), help="SST-2 folder with train.tsv and dev.tsv")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for all three runs (default: torch's, i.e. one per core)")
    parser.add_argument("--max-train-samples", type=int, default=2500)
    parser.add_argument("--max-eval-samples", type=int, default=None, help="default: the whole dev set")
    parser.add_argument("--only", nargs="+", choices=("ours", "padded", "dynamic"), default=("ours", "padded", "dynamic"))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 train and 200 dev sentences, not recorded")
    parser.add_argument("--no-record", action="store_true", help="print the table but leave benchmarks/RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_train_samples, args.max_eval_samples, args.no_record = 200, 200, True
    return args


def optimizer_steps(args) -> int:
    return math.ceil(args.epochs * math.ceil(args.max_train_samples / BATCH))


def warmup_steps(args) -> int:
    """One count for both sides (the Trainer rounds a warmup ratio up, our recipe down)."""
    return math.ceil(args.warmup_ratio * optimizer_steps(args))


def run_ours(args, workdir: Path) -> dict:
    from bert_tasks.runner import train
    from bert_tasks.tasks import resolve_recipe

    recipe = resolve_recipe(None, task="glue", flags={
        "data.task": "sst2", "data.data_dir": args.data_dir, "data.max_train_samples": args.max_train_samples,
        "data.max_eval_samples": args.max_eval_samples, "train.epochs": args.epochs, "train.seed": SEED,
        "train.learning_rate": args.lr, "train.warmup_steps": warmup_steps(args), "train.batch_size": BATCH, "train.eval_batch_size": EVAL_BATCH,
        "train.weight_decay": WEIGHT_DECAY, "train.num_threads": args.threads, "train.logging_steps": 1000, "output_dir": str(workdir / "ours"),
    })
    start = time.perf_counter()
    metrics = train(recipe)
    total = time.perf_counter() - start
    train = json.loads((workdir / "ours" / "train_results.json").read_text())
    return {"accuracy": metrics["accuracy"], "seconds": total, "train_seconds": train["train_seconds"],
            "train_tokens": train["train_tokens"]}


def _sst2(args):
    import datasets

    from bert_tasks.tasks.glue.config import GlueDataConfig
    from bert_tasks.tasks.glue.data import load_glue_splits

    cfg = GlueDataConfig(task="sst2", data_dir=args.data_dir, max_train_samples=args.max_train_samples,
                         max_eval_samples=args.max_eval_samples)
    splits = load_glue_splits(cfg)
    return splits["train"], splits["validation"]


def run_trainer(args, workdir: Path, *, padded: bool, cpu: bool = True, bf16: bool = False) -> dict:
    """run_glue.py's recipe in miniature: tokenize, Trainer.train(), Trainer.evaluate() (on the CPU, or on the
    GPU with ``cpu=False``, in bf16 autocast with ``bf16``)."""
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, default_data_collator, set_seed)

    from bert_tasks.checkpoint import bundled_model_path

    folder = str(bundled_model_path())
    start = time.perf_counter()
    set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    train_raw, dev_raw = _sst2(args)

    def encode(batch):
        out = tokenizer(batch["text_a"], truncation=True, max_length=MAX_LEN, padding="max_length" if padded else False)
        out["labels"] = batch["label"]
        return out

    train = train_raw.map(encode, batched=True, remove_columns=train_raw.column_names)
    dev = dev_raw.map(encode, batched=True, remove_columns=dev_raw.column_names)
    training_args = TrainingArguments(
        output_dir=str(workdir / ("padded" if padded else "dynamic")), learning_rate=args.lr,
        per_device_train_batch_size=BATCH, per_device_eval_batch_size=EVAL_BATCH, num_train_epochs=args.epochs,
        weight_decay=WEIGHT_DECAY, lr_scheduler_type="linear", warmup_steps=warmup_steps(args), optim="adamw_torch",
        max_grad_norm=1.0, seed=SEED, save_strategy="no", eval_strategy="no", logging_steps=1000,
        report_to="none", use_cpu=cpu, bf16=bf16, disable_tqdm=True,
    )
    collator = default_data_collator if padded else DataCollatorWithPadding(tokenizer)

    def accuracy(prediction):
        return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}

    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=dev,
                      data_collator=collator, compute_metrics=accuracy)
    trained = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - trained
    metrics = trainer.evaluate()
    return {"accuracy": metrics["eval_accuracy"], "seconds": time.perf_counter() - start, "train_seconds": train_seconds}


LABELS = {
    "ours": "(a) bert-tasks, scratch encoder, dynamic padding + length grouping",
    "padded": "(b) transformers Trainer, padded to 128 (run_glue default)",
    "dynamic": "(c) transformers Trainer, DataCollatorWithPadding",
}


def render(args, results: dict, loads: tuple) -> str:
    import torch

    rows = ["| run | dev accuracy | wall time (s) | of which training (s) | speed-up vs (b) | speed-up vs (c) "
            "| accuracy vs (b) | accuracy vs (c) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        cells = []
        for anchor in ("padded", "dynamic"):
            base = results.get(anchor)
            cells.append(f"{base['seconds'] / r['seconds']:.2f}x" if base and name != anchor else "-")
        for anchor in ("padded", "dynamic"):
            base = results.get(anchor)
            cells.append(f"{100 * (r['accuracy'] - base['accuracy']):+.2f} pts" if base and name != anchor else "-")
        rows.append(f"| {LABELS[name]} | {100 * r['accuracy']:.2f} | {r['seconds']:.1f} | {r['train_seconds']:.1f} | "
                    + " | ".join(cells) + " |")
    steps = optimizer_steps(args)
    chance = all(r["accuracy"] < 0.6 for r in results.values())
    note = (f"At this budget ({steps} optimizer steps at lr {args.lr:g}) no run has left chance level yet, so the "
            "accuracy column cannot separate them; the wall times are the finding." if chance else "")
    dev = "all 1821 dev sentences" if args.max_eval_samples is None else f"the first {args.max_eval_samples} dev sentences"
    return "\n".join([
        f"SST-2 (`{shown(args.data_dir)}`), bundled MiniLM-L6-H384; {args.epochs:g} epoch(s) on the first "
        f"{args.max_train_samples} training sentences ({steps} optimizer steps), scored on {dev}. lr {args.lr:g}, "
        f"batch {BATCH}, eval batch {EVAL_BATCH}, AdamW, linear schedule with {warmup_steps(args)} warmup steps, "
        f"weight decay {WEIGHT_DECAY}, max grad norm 1.0, seed {SEED}, max length {MAX_LEN}; "
        f"{torch.get_num_threads()} torch threads for every run. Wall time = load model + tokenize + train + "
        "evaluate (ours also writes its run folder). Speed-up = the anchor's wall time / this run's.",
        "",
        *rows,
        "",
        *([note, ""] if note else []),
        f"{load_note(*loads)}; the three runs ran back to back in one process.",
    ])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    args.threads = torch.get_num_threads()  # ours is given the same count, not its load-aware default
    load_start = os.getloadavg()[0]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="glue-bench-") as tmp:
        work = Path(tmp)
        for name in ("ours", "padded", "dynamic"):
            if name not in args.only:
                continue
            print(f"== {LABELS[name]}", flush=True)
            results[name] = run_ours(args, work) if name == "ours" else run_trainer(args, work, padded=name == "padded")
            print(f"   accuracy {100 * results[name]['accuracy']:.2f}  wall {results[name]['seconds']:.1f} s", flush=True)
    markdown = render(args, results, (load_start, os.getloadavg()[0]))
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("glue_finetune", markdown)


if __name__ == "__main__":
    main()

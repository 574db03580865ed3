"""Your own labels, side by side: `finetune classify` against the transformers Trainer on a 3-class task from STS-B.

The task: the shared STS-B sentence pairs (``../shared/data/STS-B``, official GLUE TSV) with their gold similarity
binned into three classes, **low** (score < 2), **mid** (2 <= score < 3.5) and **high** (score >= 3.5), written as a
CSV with those label names: a real-text multi-class task no GLUE preset covers. The first ``--train-samples`` training
pairs train, every dev pair scores.

(a) ``bert-tasks finetune classify`` (the run template, labels inferred from the CSV), fp32;
(b) the transformers ``Trainer`` with ``AutoModelForSequenceClassification`` and ``DataCollatorWithPadding``
    (run_classification.py with dynamic padding), fp32; the same hyperparameters, one warmup count for both.

Both are scored by one scorer (the bundled ``classify`` metric, from each side's dev predictions). Both sides run
fp32 (ours with ``mixed_precision no``: ``auto`` would pick bf16 on a CPU with native bf16), so the ratio is at equal
precision.

    python -m benchmarks classify_trainer              # the recorded run: 3 seeds, about 15 minutes on 2 cores
    python -m benchmarks classify_trainer --quick      # 1 seed, 64 pairs, not recorded
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA, load_note, shown
from benchmarks._side_by_side import start, cell, every_run, interleaved, wall

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LR, BATCH, EVAL_BATCH, WARMUP, MAX_LEN, WEIGHT_DECAY, EPOCHS = 1e-4, 32, 128, 0.1, 128, 0.0, 2.0
BINS = ((2.0, "low"), (3.5, "mid"), (math.inf, "high"))
CONFIGS = {"ours": "(a) bert-tasks finetune classify, fp32",
           "trainer": "(b) transformers Trainer, DataCollatorWithPadding, fp32"}
MODULE = "benchmarks.classify_trainer"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding STS-B/")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="1 seed, 64 pairs, 1 epoch, not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.no_record, args.train_samples = "1", True, 64
    args.epochs = 1.0 if args.quick else EPOCHS
    return args


def binned(score: float) -> str:
    return next(name for top, name in BINS if score < top)


def write_task(data: Path, work: Path, train_samples: int) -> dict[str, Path]:
    """STS-B's pairs with their score binned, as train.csv (the first N pairs) and dev.csv (every pair)."""
    files = {}
    for split, limit in (("train", train_samples), ("dev", None)):
        with (data / "STS-B" / f"{split}.tsv").open(encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f][1:]
        path = work / f"{split}.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["sentence1", "sentence2", "label"])
            for row in rows[:limit]:
                writer.writerow([row[7], row[8], binned(float(row[9]))])
        files[split] = path
    return files


def warmup_steps(n_train: int, epochs: float) -> int:
    return math.ceil(WARMUP * math.ceil(epochs * math.ceil(n_train / BATCH)))


def score(predictions, references) -> dict:
    from bert_tasks.metrics import load_metric

    found = load_metric("classify", "single_label_classification").compute(
        predictions=predictions, references=references, num_labels=len(BINS))
    return {"accuracy": found["accuracy"], "macro_f1": found["macro_f1"]}


def run_ours(args, seed: int, work: Path, files: dict) -> dict:
    from bert_tasks.runner import train
    from bert_tasks.tasks import resolve_recipe

    out = work / f"ours-{seed}"
    recipe = resolve_recipe(None, task="classify", flags={
        "data.train_file": str(files["train"]), "data.validation_file": str(files["dev"]), "data.max_seq_length": MAX_LEN,
        "data.labels": "low,mid,high", "train.epochs": args.epochs, "train.seed": seed, "train.learning_rate": LR,
        "train.warmup_steps": warmup_steps(args.train_samples, args.epochs), "train.batch_size": BATCH,
        "train.eval_batch_size": EVAL_BATCH, "train.weight_decay": WEIGHT_DECAY, "train.num_threads": args.threads,
        "train.mixed_precision": "no", "train.logging_steps": 10_000, "output_dir": str(out),
    })
    start = time.perf_counter()
    train(recipe)
    seconds = time.perf_counter() - start
    names = {"low": 0, "mid": 1, "high": 2}
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    metrics = score([names[r["prediction"]] for r in rows], [names[r["label"]] for r in rows])
    trained = json.loads((out / "train_results.json").read_text())
    return {"metrics": metrics, "seconds": seconds, "train_seconds": trained["train_seconds"]}


def run_trainer(args, seed: int, work: Path, files: dict) -> dict:
    """run_classification.py in miniature with dynamic padding: tokenize, Trainer.train(), Trainer.predict()."""
    import datasets
    import numpy as np
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    from bert_tasks.checkpoint import bundled_model_path

    folder = str(bundled_model_path())
    start = time.perf_counter()
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    names = ["low", "mid", "high"]
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, num_labels=3, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    raw = datasets.load_dataset("csv", data_files={s: str(p) for s, p in files.items()})

    def encode(batch):
        out = tokenizer(batch["sentence1"], batch["sentence2"], truncation=True, max_length=MAX_LEN)
        out["labels"] = [names.index(label) for label in batch["label"]]
        return out

    train_set, dev = (raw[s].map(encode, batched=True, remove_columns=raw[s].column_names) for s in ("train", "dev"))
    training_args = TrainingArguments(
        output_dir=str(work / f"trainer-{seed}"), learning_rate=LR, per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=EVAL_BATCH, num_train_epochs=args.epochs, weight_decay=WEIGHT_DECAY,
        lr_scheduler_type="linear", warmup_steps=warmup_steps(args.train_samples, args.epochs), max_grad_norm=1.0,
        seed=seed, save_strategy="no", eval_strategy="no", logging_steps=10_000, report_to="none", use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=train_set,
                      data_collator=DataCollatorWithPadding(tokenizer))
    trained = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - trained
    output = trainer.predict(dev)
    metrics = score(np.argmax(output.predictions, axis=-1), output.label_ids)
    return {"metrics": metrics, "seconds": time.perf_counter() - start, "train_seconds": train_seconds}


def render(args, runs: dict, loads: tuple, counts: dict) -> str:
    import torch

    anchor = runs["trainer"]
    rows = ["| run | accuracy, median (min-max; std) | macro F1, median (min-max; std) | median wall (s) "
            "| wall-time ratio (b)/(a) | accuracy vs (b) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, items in runs.items():
        accuracy = [r["metrics"]["accuracy"] for r in items]
        macro = [r["metrics"]["macro_f1"] for r in items]
        ratio = f"{wall(anchor) / wall(items):.2f}x" if name != "trainer" else "-"
        import statistics

        delta = (f"{100 * (statistics.median(accuracy) - statistics.median(r['metrics']['accuracy'] for r in anchor)):+.2f}"
                 " pts" if name != "trainer" else "-")
        rows.append(f"| {CONFIGS[name]} | {cell(accuracy)} | {cell(macro)} | {wall(items):.1f} | {ratio} | {delta} |")
    seeds = ", ".join(str(r["seed"]) for r in anchor)
    return "\n".join([
        f"Task: `{shown(args.data)}/STS-B` pairs, gold score binned into low (< 2), mid (2 to < 3.5), high (>= 3.5); "
        f"the first {args.train_samples} training pairs ({counts['train']}), all {counts['dev']['n']} dev pairs "
        f"({counts['dev']['classes']}). Bundled MiniLM-L6-H384; seeds {seeds}; {args.epochs:g} epochs, lr {LR:g}, "
        f"batch {BATCH}, linear schedule with {warmup_steps(args.train_samples, args.epochs)} warmup steps on both "
        f"sides, weight decay {WEIGHT_DECAY:g}, max grad norm 1.0, max length {MAX_LEN}, {torch.get_num_threads()} "
        "torch threads, both sides fp32 (equal precision). One scorer for both (the bundled classify metric). Wall "
        "time = load + tokenize + train + predict the dev set (ours also writes its run folder).",
        "", *rows, "", f"{load_note(*loads)}; every run in its own process, seeds interleaved.", "",
        every_run(runs, ("accuracy", "macro_f1")),
    ])


def class_counts(path: Path) -> str:
    from collections import Counter

    with path.open(encoding="utf-8") as f:
        counts = Counter(row["label"] for row in csv.DictReader(f))
    return ", ".join(f"{name} {counts[name]}" for _, name in BINS)


def main(argv: list[str] | None = None) -> None:
    argv, args = start(argv, parse_args)
    if args.one:
        name, seed, work = args.one.split(",", 2)
        files = {"train": Path(work) / "train.csv", "dev": Path(work) / "dev.csv"}
        run = (run_trainer if name == "trainer" else run_ours)(args, int(seed), Path(work), files)
        print(json.dumps(run))
        return
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="classify-trainer-") as tmp:
        work = Path(tmp)
        files = write_task(args.data, work, args.train_samples)
        counts = {"train": class_counts(files["train"]),
                  "dev": {"n": sum(1 for _ in files["dev"].open()) - 1, "classes": class_counts(files["dev"])}}
        runs = interleaved(MODULE, argv, list(CONFIGS), [int(s) for s in args.seeds.split(",")], work,
                           lambda r: f"accuracy {100 * r['metrics']['accuracy']:.2f}  macro F1 "
                                     f"{100 * r['metrics']['macro_f1']:.2f}")
    markdown = render(args, runs, (load_start, os.getloadavg()[0]), counts)
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("classify_trainer", markdown)


if __name__ == "__main__":
    main()

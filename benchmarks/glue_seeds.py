"""GLUE on real data over seeds, side by side: ours (fp32 and bf16) against the HF Trainer with dynamic padding.

For each task (SST-2, MRPC, STS-B from ``../shared/data``) and each seed, the bundled MiniLM is fine-tuned
with the same hyperparameters three ways, one after another, each in a fresh process on the same number of threads:

(a) ``bert-tasks`` (``runner.train``, the real run template), fp32;
(b) ``bert-tasks`` with bf16 autocast (what ``--mixed-precision auto`` picks on a CPU with native bf16);
(c) the transformers ``Trainer`` with ``DataCollatorWithPadding`` (run_glue.py with dynamic padding), its defaults
    otherwise (fp32, AdamW fused as transformers 5 defaults to).

It records, per task and configuration, the median and spread (min-max, std) of the dev metric over the seeds and
the median wall time (load + tokenize + train + evaluate), and the speed-up of (a) and (b) over (c).

    python -m benchmarks glue_seeds                 # the recorded run: 3 seeds, about 55 minutes on 2 CPU cores
    python -m benchmarks glue_seeds -- --results runs.jsonl   # keep each finished run; a rerun skips them
    python -m benchmarks glue_seeds --quick         # a smoke run: 1 seed, tiny subsets, not recorded
    python -m benchmarks glue_seeds -- --keep runs/ # keep every run folder, for ``bert-tasks compare``

Every run folder holds ``eval_results.json`` and ``eval_predictions.jsonl`` (the Trainer's too, written here in
our format), laid out as ``<task>-no/seed-N`` (ours), ``<task>-bf16/seed-N`` and ``trainer-<task>/seed-N``, so that
``bert-tasks compare KEEP/mrpc-no KEEP/trainer-mrpc`` compares ours with the Trainer over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._record import DATA, load_note, shown

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass(frozen=True)
class Setup:
    task: str
    folder: str
    metric: str  # the dev metric compared: the task's GLUE score
    train_samples: int | None
    epochs: float


#: sized so that the whole run (3 seeds, the three configurations) takes about 55 minutes on 2 CPU cores, every
#: dev set whole. Measured per seed: SST-2 3,000 x 2 epochs ~440 s for the three runs; MRPC whole x 3 epochs took
#: ~1,000 s, so MRPC and STS-B train on their first 1,500 pairs for 2 epochs.
SETUPS = (
    Setup("sst2", "SST-2", "accuracy", 3000, 2.0),
    Setup("mrpc", "MRPC", "f1/accuracy", 1500, 2.0),
    Setup("stsb", "STS-B", "pearson/spearmanr", 1500, 2.0),
)
LR, BATCH, EVAL_BATCH, WARMUP, MAX_LEN, WEIGHT_DECAY = 1e-4, 32, 128, 0.1, 128, 0.0
CONFIGS = {
    "ours": "(a) bert-tasks, fp32",
    "ours_bf16": "(b) bert-tasks, bf16 autocast",
    "trainer": "(c) transformers Trainer, dynamic padding, fp32",
}
#: runs whose speed-up over (c) compares two precisions: labelled in the table as such (equal precision on both
#: sides: ``python -m benchmarks glue_equal_precision``)
ACROSS_PRECISIONS = {"ours_bf16": "across precisions: ours bf16 / Trainer fp32"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks glue_seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding SST-2/, MRPC/, STS-B/")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--tasks", default="sst2,mrpc,stsb")
    parser.add_argument("--configs", default="ours,ours_bf16,trainer")
    parser.add_argument("--bf16-tasks", default="sst2,mrpc,stsb", help="tasks where (b) runs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every run (default: every core)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 64 sentences, 1 epoch, not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--results", type=Path, default=None,
                        help="a JSON Lines file of finished runs: runs already in it (same setup) are reused, new ones added")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the run folders here and keep them (default: a temporary folder, removed)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one task,config,seed in this process
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.no_record = "1", True
    return args


def score(setup: Setup, metrics: dict) -> float:
    keys = setup.metric.split("/")
    return statistics.mean(float(metrics[k]) for k in keys)


def steps(setup: Setup, n_train: int, epochs: float) -> int:
    import math

    return math.ceil(epochs * math.ceil(n_train / BATCH))


def warmup(setup: Setup, args) -> int:
    """One warmup count for both sides (a ratio is rounded up by the Trainer, down by our recipe)."""
    import math

    from bert_tasks.tasks.glue.config import GlueDataConfig
    from bert_tasks.tasks.glue.data import load_glue_splits

    n_train = len(load_glue_splits(GlueDataConfig(task=setup.task, data_dir=str(args.data / setup.folder),
                                                  max_train_samples=args.train_samples(setup)))["train"])
    return math.ceil(WARMUP * steps(setup, n_train, args.epochs(setup)))


def run_ours(setup: Setup, args, seed: int, work: Path, precision: str) -> dict:
    from bert_tasks.runner import train
    from bert_tasks.tasks import resolve_recipe

    out = work / f"{setup.task}-{precision}" / f"seed-{seed}"
    recipe = resolve_recipe(None, task="glue", flags={
        "data.task": setup.task, "data.data_dir": str(args.data / setup.folder), "data.max_seq_length": MAX_LEN,
        "data.max_train_samples": args.train_samples(setup), "train.epochs": args.epochs(setup), "train.seed": seed,
        "train.learning_rate": LR, "train.warmup_steps": warmup(setup, args), "train.batch_size": BATCH,
        "train.eval_batch_size": EVAL_BATCH, "train.weight_decay": WEIGHT_DECAY, "train.num_threads": args.threads,
        "train.mixed_precision": precision, "train.logging_steps": 10_000, "output_dir": str(out),
    })
    start = time.perf_counter()
    metrics = train(recipe)
    seconds = time.perf_counter() - start
    trained = json.loads((out / "train_results.json").read_text())
    return {"score": score(setup, metrics), "metrics": metrics, "seconds": seconds, "train_seconds": trained["train_seconds"]}


def trainer_data(task: str, data_dir: Path, train_samples: int | None, max_len: int,
                 eval_samples: int | None = None):
    """(tokenizer, raw splits, train set, dev set) as run_glue.py feeds the Trainer: the bundled tokenizer, our
    GLUE reader's splits, each tokenized without padding (DataCollatorWithPadding pads per batch)."""
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import bundled_model_path
    from bert_tasks.tasks.glue.config import GlueDataConfig
    from bert_tasks.tasks.glue.data import load_glue_splits
    from bert_tasks.tasks.glue.spec import get_spec

    spec = get_spec(task)
    tokenizer = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    splits = load_glue_splits(GlueDataConfig(task=task, data_dir=str(data_dir), max_train_samples=train_samples,
                                             max_eval_samples=eval_samples))

    def encode(batch):
        out = tokenizer(batch["text_a"], batch["text_b"] if spec.is_pair else None, truncation=True, max_length=max_len)
        out["labels"] = batch["label"]
        return out

    train_set, dev = (splits[s].map(encode, batched=True, remove_columns=splits[s].column_names)
                      for s in ("train", "validation"))
    return tokenizer, splits, train_set, dev


def trainer_metrics(task: str):
    """The Trainer's ``compute_metrics`` for a GLUE task: accuracy (and F1 for MRPC), or Pearson/Spearman."""
    import numpy as np
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score

    from bert_tasks.tasks.glue.spec import get_spec

    spec = get_spec(task)

    def metrics(prediction) -> dict:
        logits, gold = prediction.predictions, prediction.label_ids
        if spec.is_regression:
            predicted = logits.reshape(-1)
            return {"pearson": float(pearsonr(predicted, gold)[0]), "spearmanr": float(spearmanr(predicted, gold)[0])}
        predicted = np.argmax(logits, axis=-1)
        out = {"accuracy": float((predicted == gold).mean())}
        if task == "mrpc":
            out["f1"] = float(f1_score(gold, predicted))
        return out

    return metrics


def run_trainer(setup: Setup, args, seed: int, work: Path, *, bf16: bool = False) -> dict:
    """run_glue.py in miniature with dynamic padding: tokenize, Trainer.train(), Trainer.predict() on the dev set
    (``bf16``: the Trainer's ``bf16=True`` autocast, for a comparison at equal precision with ours in bf16).

    Its folder gets ``eval_results.json`` and ``eval_predictions.jsonl`` as ours writes them (:func:`write_predictions`),
    so ``bert-tasks compare`` reads it as it reads one of our runs."""
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, TrainingArguments,
                              set_seed)

    from bert_tasks.checkpoint import bundled_model_path
    from bert_tasks.tasks.glue.spec import get_spec

    start = time.perf_counter()
    set_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(str(bundled_model_path()),
                                                               num_labels=get_spec(setup.task).num_labels)
    tokenizer, splits, train_set, dev = trainer_data(setup.task, args.data / setup.folder, args.train_samples(setup),
                                                     MAX_LEN)
    training_args = TrainingArguments(
        output_dir=str(trainer_folder(setup.task, seed, work, bf16)), learning_rate=LR, per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=EVAL_BATCH, num_train_epochs=args.epochs(setup), weight_decay=WEIGHT_DECAY,
        lr_scheduler_type="linear", warmup_steps=warmup(setup, args), max_grad_norm=1.0, seed=seed, save_strategy="no",
        eval_strategy="no", logging_steps=10_000, report_to="none", use_cpu=True, disable_tqdm=True, bf16=bf16,
    )

    trainer = Trainer(model=model, args=training_args, train_dataset=train_set, eval_dataset=dev,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=trainer_metrics(setup.task))
    trained = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - trained
    prediction = trainer.predict(dev, metric_key_prefix="eval")  # the metrics evaluate() gives, and the logits
    result = {k.removeprefix("eval_"): v for k, v in prediction.metrics.items()}
    write_predictions(setup.task, splits["validation"], prediction.predictions, result, Path(training_args.output_dir))
    return {"score": score(setup, result), "metrics": result, "seconds": time.perf_counter() - start,
            "train_seconds": train_seconds}


def trainer_folder(task: str, seed: int, work: Path, bf16: bool = False) -> Path:
    return work / f"trainer{'-bf16' if bf16 else ''}-{task}" / f"seed-{seed}"


def write_predictions(task: str, dev, logits, metrics: dict, folder: Path) -> None:
    """A Trainer run's dev predictions as our GLUE runs write them (``eval_predictions.jsonl``: idx, prediction and
    label, labels by the names ours uses; ``eval_results.json``: the metrics), so ``bert-tasks compare`` reads both."""
    import numpy as np

    from bert_tasks.io import atomic_write_text, write_json
    from bert_tasks.tasks.glue.spec import get_spec, id2label

    spec = get_spec(task)
    logits = np.asarray(logits)
    names = None if spec.is_regression else id2label(task, names="hub")
    predicted = logits.reshape(-1) if spec.is_regression else np.argmax(logits, axis=-1)
    rows = [{"idx": int(idx), "prediction": float(p) if names is None else names[int(p)],
             "label": float(gold) if names is None else names[int(gold)]}
            for idx, p, gold in zip(dev["idx"], predicted.tolist(), dev["label"])]
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "eval_predictions.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write_json(folder / "eval_results.json", {k: v for k, v in metrics.items() if isinstance(v, (int, float))})


def summary(runs: list[dict]) -> dict:
    scores = [r["score"] for r in runs]
    return {"median": statistics.median(scores), "min": min(scores), "max": max(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else 0.0, "n": len(scores),
            "seconds": statistics.median(r["seconds"] for r in runs),
            "train_seconds": statistics.median(r["train_seconds"] for r in runs)}


def render(args, results: dict, seeds: list[int], loads: tuple) -> str:
    import torch

    rows = ["| task | run | dev score, median (min-max; std) | median wall time (s) | of which training (s) "
            "| speed-up vs (c) | median vs (c) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for setup in SETUPS:
        if setup.task not in results:
            continue
        anchor = results[setup.task].get("trainer")
        for name, stats in results[setup.task].items():
            speed = f"{anchor['seconds'] / stats['seconds']:.2f}x" if anchor and name != "trainer" else "-"
            if name in ACROSS_PRECISIONS and speed != "-":
                speed += f" ({ACROSS_PRECISIONS[name]})"
            delta = f"{100 * (stats['median'] - anchor['median']):+.2f} pts" if anchor and name != "trainer" else "-"
            rows.append(f"| {setup.folder} ({setup.metric}) | {CONFIGS[name]} | {100 * stats['median']:.2f} "
                        f"({100 * stats['min']:.2f}-{100 * stats['max']:.2f}; {100 * stats['std']:.2f}) | "
                        f"{stats['seconds']:.1f} | {stats['train_seconds']:.1f} | {speed} | {delta} |")
    sizes = "; ".join(f"{s.folder}: {'all' if args.train_samples(s) is None else f'the first {args.train_samples(s)}'}"
                      f" training examples, {args.epochs(s):g} epochs" for s in SETUPS if s.task in results)
    return "\n".join([
        f"Data: `{shown(args.data)}` (SST-2, MRPC, STS-B in the official GLUE layout), scored on all of each dev set. "
        f"Bundled MiniLM-L6-H384; seeds {', '.join(map(str, seeds))}; {sizes}. Every run: lr {LR:g}, batch {BATCH}, "
        f"linear schedule with {WARMUP:g} warmup, weight decay {WEIGHT_DECAY:g}, max grad norm 1.0, max length {MAX_LEN}, "
        f"{torch.get_num_threads()} torch threads. The score is the task's GLUE score (MRPC: mean of F1 and accuracy; "
        "STS-B: mean of Pearson and Spearman). Wall time = load + tokenize + train + evaluate (ours also writes its run "
        "folder); speed-up = (c)'s median wall time / the run's: (a) against (c) is fp32 on both sides, (b) against (c) "
        "compares our bf16 with the Trainer's fp32 (equal precision: the glue_equal_precision "
        "sections).",
        "", *rows, "",
        f"{load_note(*loads)}; every run in its own process, seed by seed with the configurations in turn.",
    ])


def run_one(args, setup: Setup, name: str, seed: int, work: Path) -> dict:
    if name == "trainer":
        run = run_trainer(setup, args, seed, work)
    else:
        run = run_ours(setup, args, seed, work, "bf16" if name == "ours_bf16" else "no")
    run["metrics"] = {k: v for k, v in run["metrics"].items() if isinstance(v, (int, float))}
    return run


def run_apart(argv: list[str], setup: Setup, name: str, seed: int, work: Path) -> dict:
    """One run in a fresh process: Accelerate fixes the precision once per process, and no run inherits another's
    allocator or thread state. The child prints its result as the last line of its output."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-m", "benchmarks.glue_seeds", *argv, "--one", f"{setup.task},{name},{seed},{work}"],
                           stdout=subprocess.PIPE, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads(child.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    from benchmarks._side_by_side import start

    argv, args = start(argv, parse_args)
    args.train_samples = (lambda s: 64) if args.quick else (lambda s: s.train_samples)
    args.epochs = (lambda s: 1.0) if args.quick else (lambda s: s.epochs)
    if args.one:
        task, name, seed, work = args.one.split(",", 3)
        setup = next(s for s in SETUPS if s.task == task)
        print(json.dumps(run_one(args, setup, name, int(seed), Path(work))))
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = args.configs.split(",")
    load_start = os.getloadavg()[0]
    cached = {}
    if args.results and args.results.is_file():
        for line in args.results.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            cached[json.dumps(row["key"], sort_keys=True)] = row["run"]
    results: dict = {}
    raw: dict = {}
    with tempfile.TemporaryDirectory(prefix="glue-seeds-") as tmp:
        work = Path(tmp) if args.keep is None else args.keep.resolve()
        for setup in SETUPS:
            if setup.task not in args.tasks.split(","):
                continue
            names = [n for n in configs if n != "ours_bf16" or setup.task in args.bf16_tasks.split(",")]
            runs: dict[str, list[dict]] = {name: [] for name in names}
            for seed in seeds:  # seed by seed, every configuration in turn: a change in load touches all alike
                for name in names:
                    print(f"== {setup.folder} {CONFIGS[name]} seed {seed}", flush=True)
                    key = {"setup": [setup.task, args.train_samples(setup), args.epochs(setup), LR, BATCH, MAX_LEN],
                           "config": name, "seed": seed, "threads": args.threads}
                    run = cached.get(json.dumps(key, sort_keys=True))
                    if run is None:
                        run = run_apart(argv, setup, name, seed, work)
                        if args.results:
                            with args.results.open("a", encoding="utf-8") as out:
                                out.write(json.dumps({"key": key, "run": run}) + "\n")
                    else:
                        print("   (from --results)", flush=True)
                    print(f"   score {100 * run['score']:.2f}  wall {run['seconds']:.1f} s", flush=True)
                    runs[name].append(run)
            for name in names:
                raw.setdefault(setup.task, {})[name] = [{"seed": s, **r} for s, r in zip(seeds, runs[name])]
                results.setdefault(setup.task, {})[name] = summary(runs[name])
    markdown = render(args, results, seeds, (load_start, os.getloadavg()[0]))
    print(markdown)
    print(json.dumps(raw))
    if not args.no_record:
        from benchmarks._record import record

        record("glue_seeds", markdown + "\n\n" + every_run(raw))


def every_run(raw: dict) -> str:
    """One row per run: the seed-level figures behind the medians."""
    rows = ["Every run (dev score; wall time, of which training):", "", "| task | run | seed | score | wall (s) | training (s) |",
            "| --- | --- | ---: | ---: | ---: | ---: |"]
    for task, configs in raw.items():
        for name, runs in configs.items():
            rows += [f"| {task} | {name} | {r['seed']} | {100 * r['score']:.2f} | {r['seconds']:.1f} | {r['train_seconds']:.1f} |"
                     for r in runs]
    return "\n".join(rows)


if __name__ == "__main__":
    main()

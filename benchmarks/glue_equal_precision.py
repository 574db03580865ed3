"""Equal precision, every default accounted for: ours against the Trainer on SST-2 and its short sentences, 5 seeds.

Issue 29 measured our CoLA MCC 3.3 points under the Trainer's at bf16 on both sides. CoLA is not in ``../shared/data``;
its sentences are short (9 words on average), so besides SST-2 (``--data/SST-2``, official GLUE TSV) this runs
**SST-2-short**: the SST-2 sentences of at most ``SHORT_WORDS`` words, train and dev alike, a CoLA-like length
profile on real text. Per task and seed, in a fresh process each, seeds interleaved:

- ``trainer``: the transformers Trainer with ``DataCollatorWithPadding`` (uniformly shuffled batches, weight decay 0);
- ``ours``: ``finetune glue`` with its defaults (length-grouped batches in mega-batches of 8 batches, weight decay 0);
- ``ours_nogroup``: ours with ``train.group_by_length false`` (uniformly shuffled, as the Trainer);
- ``ours_wd``: ours with weight decay 0.01 (TrainConfig's base default; GLUE's own is 0.0);
- ``ours_mega50``: ours length-grouped in mega-batches of 50 batches, the default until the recorded run
  (``ours_megaN`` for any N sets ``EpochBatchSampler.MEGA`` in that run's process).

Every run in the same precision (``--precision``: ``no`` = fp32 on both sides, ``bf16`` = our bf16 autocast against
the Trainer's ``bf16=True``), the same warmup step count, lr, batch and epochs. The table gives the median, spread and
the wall-time ratio at equal precision.

    python -m benchmarks glue_equal_precision                      # the recorded run (fp32): 5 seeds
    python -m benchmarks glue_equal_precision --precision bf16     # the same in bf16 (its own section)
    python -m benchmarks glue_equal_precision --quick              # 1 seed, 64 sentences, not recorded
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA, load_note, shown
from benchmarks._side_by_side import start, cell, interleaved, wall
from benchmarks.glue_seeds import BATCH, EVAL_BATCH, LR, MAX_LEN, Setup, run_trainer, warmup

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODULE = "benchmarks.glue_equal_precision"
SHORT_WORDS = 12
CONFIGS = {
    "trainer": "transformers Trainer, DataCollatorWithPadding (uniform shuffle, weight decay 0)",
    "ours": "bert-tasks finetune glue, its defaults (length-grouped batches, weight decay 0)",
    "ours_nogroup": "bert-tasks, group_by_length false (uniform shuffle)",
    "ours_mega50": "bert-tasks, length-grouped in mega-batches of 50 batches (the default before)",
    "ours_wd": "bert-tasks, weight decay 0.01",
}


def describe(name: str) -> str:
    """A configuration's row label; ``ours_megaN`` for any N not in CONFIGS says its mega-batch."""
    return CONFIGS.get(name) or f"bert-tasks, mega-batches of {name.removeprefix('ours_mega')} batches"


TASKS = {"sst2": "SST-2", "sst2short": f"SST-2-short (sentences of at most {SHORT_WORDS} words)"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding SST-2/")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--tasks", default="sst2short,sst2")
    parser.add_argument("--configs", default="trainer,ours,ours_nogroup,ours_wd")
    parser.add_argument("--precision", default="no", choices=("no", "bf16"))
    parser.add_argument("--train-samples", type=int, default=1500)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.no_record, args.train_samples, args.epochs = "1", True, 64, 1.0
    return args


def write_task(data: Path, root: Path, task: str, train_samples: int) -> Path:
    """A GLUE-layout SST-2 folder: the first N training sentences (of at most SHORT_WORDS words for sst2short)."""
    folder = root / task / "SST-2"
    folder.mkdir(parents=True)
    for split, limit in (("train", train_samples), ("dev", None)):
        lines = (data / "SST-2" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
        rows = [line for line in lines[1:] if task == "sst2" or len(line.split("\t")[0].split()) <= SHORT_WORDS]
        (folder / f"{split}.tsv").write_text("\n".join([lines[0], *rows[:limit]]) + "\n", encoding="utf-8")
    return folder


class Args:
    """What glue_seeds.run_trainer and warmup read of their arguments."""

    def __init__(self, args, root: Path):
        self.data, self.threads = root, args.threads
        self.train_samples = lambda setup: args.train_samples
        self.epochs = lambda setup: args.epochs


def run_ours(args, setup: Setup, seed: int, work: Path, name: str) -> dict:
    from bert_tasks.runner import train
    from bert_tasks.tasks import resolve_recipe

    out = work / f"{args.data.name}-{name}-{seed}"  # args.data is the task's own root
    flags = {"data.task": "sst2", "data.data_dir": str(args.data / setup.folder), "data.max_seq_length": MAX_LEN,
             "train.epochs": args.epochs(setup), "train.seed": seed, "train.learning_rate": LR,
             "train.warmup_steps": warmup(setup, args), "train.batch_size": BATCH, "train.eval_batch_size": EVAL_BATCH,
             "train.num_threads": args.threads, "train.mixed_precision": args.precision, "train.logging_steps": 10_000,
             "output_dir": str(out)}
    if name == "ours_nogroup":
        flags["train.group_by_length"] = False
    if name == "ours_wd":
        flags["train.weight_decay"] = 0.01
    if name.startswith("ours_mega"):  # this child process only: the mega-batch of length grouping, in batches
        from bert_tasks.training.batching import EpochBatchSampler

        EpochBatchSampler.MEGA = int(name.removeprefix("ours_mega"))
    start = time.perf_counter()
    metrics = train(resolve_recipe(None, task="glue", flags=flags))
    seconds = time.perf_counter() - start
    trained = json.loads((out / "train_results.json").read_text())
    return {"metrics": {"accuracy": metrics["accuracy"]}, "seconds": seconds, "train_seconds": trained["train_seconds"]}


def section(precision: str, tasks: str) -> str:
    """The RESULTS.md section of one precision and task list: an fp32 run and a bf16 run, or a run of SST-2-short
    and a later one of SST-2, are kept side by side rather than the later overwriting the earlier."""
    return "_".join(["glue_equal_precision", *tasks.split(","), *([precision] if precision != "no" else [])])


def render(args, results: dict, loads: tuple, sizes: dict) -> str:
    import torch

    rows = ["| task | run | dev accuracy, median (min-max; std) | median vs Trainer | median wall (s) "
            "| speed-up vs Trainer |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for task, runs in results.items():
        anchor = runs.get("trainer")
        base = statistics.median(r["metrics"]["accuracy"] for r in anchor) if anchor else None
        for name, items in runs.items():
            accuracy = [r["metrics"]["accuracy"] for r in items]
            delta = f"{100 * (statistics.median(accuracy) - base):+.2f} pts" if anchor and name != "trainer" else "-"
            speed = f"{wall(anchor) / wall(items):.2f}x" if anchor and name != "trainer" else "-"
            rows.append(f"| {TASKS[task]} | {describe(name)} | {cell(accuracy)} | {delta} | {wall(items):.1f} | {speed} |")
    precision = "fp32 on both sides" if args.precision == "no" else "bf16 on both sides (ours autocast, Trainer bf16=True)"
    every = ["Every run (dev accuracy, wall s):", "", "| task | run | " + " | ".join(
        f"seed {r['seed']}" for r in next(iter(next(iter(results.values())).values()))) + " |",
             "| --- | --- |" + " ---: |" * len(args.seeds.split(","))]
    for task, runs in results.items():
        for name, items in runs.items():
            every.append(f"| {task} | {name} | " + " | ".join(
                f"{100 * r['metrics']['accuracy']:.2f} ({r['seconds']:.0f})" for r in items) + " |")
    return "\n".join([
        f"Data: `{shown(args.data)}/SST-2`; per task the first {args.train_samples} training sentences "
        f"({', '.join(f'{TASKS[t]}: {n}' for t, n in sizes.items())}), scored on the whole dev set of that task. "
        f"Bundled MiniLM-L6-H384, {args.epochs:g} epochs, lr {LR:g}, batch {BATCH}, 10% warmup as one step count on "
        f"both sides, max length {MAX_LEN}, {torch.get_num_threads()} torch threads, {precision}.",
        "", *rows, "", f"{load_note(*loads)}; every run in its own process, seeds interleaved.", "", *every,
    ])


def main(argv: list[str] | None = None) -> None:
    argv, args = start(argv, parse_args)
    if args.one:
        name, seed, work = args.one.split(",", 2)
        task, name = name.split(":")
        shared = Args(args, Path(work) / task)
        shared.precision = args.precision
        setup = Setup("sst2", "SST-2", "accuracy", args.train_samples, args.epochs)
        if name == "trainer":
            run = run_trainer(setup, shared, int(seed), Path(work), bf16=args.precision == "bf16")
            run["metrics"] = {"accuracy": run["metrics"]["accuracy"]}
        else:
            run = run_ours(shared, setup, int(seed), Path(work), name)
        print(json.dumps(run))
        return
    load_start = os.getloadavg()[0]
    results, sizes = {}, {}
    with tempfile.TemporaryDirectory(prefix="glue-equal-") as tmp:
        work = Path(tmp)
        for task in args.tasks.split(","):
            folder = write_task(args.data, work, task, args.train_samples)
            sizes[task] = len((folder / "train.tsv").read_text().splitlines()) - 1
            names = [f"{task}:{c}" for c in args.configs.split(",")]
            runs = interleaved(MODULE, argv, names, [int(s) for s in args.seeds.split(",")], work,
                               lambda r: f"accuracy {100 * r['metrics']['accuracy']:.2f}")
            results[task] = {name.split(":")[1]: items for name, items in runs.items()}
    markdown = render(args, results, (load_start, os.getloadavg()[0]), sizes)
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record(section(args.precision, args.tasks), markdown)


if __name__ == "__main__":
    main()

"""Pooling heads on real GLUE data over 5 seeds: [CLS] against mean and attention pooling with each scoring function.

For each task (low-resource SST-2: its first 1,000 training sentences; MRPC and STS-B on their first 800 and 1,000
training pairs) and each pooling, one command as a user would type it, in a fresh process:

    bert-tasks finetune glue --task T --data-dir DATA/F --pooling P [--attention-score S] --seeds 1,2,3,4,5 ...

(the multi-seed runs: every seed a complete run folder). It records, per task and pooling, the median of the task's
GLUE score over the seeds with its spread (min-max, sample std), the difference of medians against ``cls``, and
whether that difference exceeds the seed spread (the larger of the two standard deviations). Every run shares the
hyperparameters (lr 1e-4, batch 32, 0.1 warmup, no weight decay, max length 128) and the whole dev set.

    python -m benchmarks pooling_seeds                          # the recorded run: 106 minutes on 2 shared CPU cores
    python -m benchmarks pooling_seeds -- --results runs.jsonl  # keep each finished (task, pooling); a rerun skips them
    python -m benchmarks pooling_seeds --quick                  # a smoke run: 2 seeds, 48 examples, not recorded
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._record import DATA, load_note, shown

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setup:
    task: str
    folder: str
    train_samples: int
    epochs: float


#: sized for about 60 minutes on 2 CPU cores (bf16) from one-seed trials; the recorded run took 106 (a seed of SST-2
#: with cls, alone: 51 s), dev sets whole (1,821, 1,500 and 1,500 examples). --tasks and --poolings run a part.
SETUPS = (Setup("sst2", "SST-2", 1000, 3.0), Setup("mrpc", "MRPC", 800, 3.0), Setup("stsb", "STS-B", 1000, 3.0))
LR, BATCH, EVAL_BATCH, WARMUP, MAX_LEN = 1e-4, 32, 128, 0.1, 128
#: name -> the flags that choose it
POOLINGS = {
    "cls": ["--pooling", "cls"],
    "mean": ["--pooling", "mean"],
    "max": ["--pooling", "max"],
    **{f"attention-{s}": ["--pooling", "attention", "--attention-score", s] for s in ("additive", "dot", "general", "concat")},
}
DEFAULT_POOLINGS = "cls,mean,attention-additive,attention-dot,attention-general,attention-concat"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks pooling_seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding SST-2/, MRPC/, STS-B/")
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--tasks", default="sst2,mrpc,stsb")
    parser.add_argument("--poolings", default=DEFAULT_POOLINGS, help=f"any of {', '.join(POOLINGS)}")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 48 examples, 1 epoch, 64 dev examples; not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--results", type=Path, default=None,
                        help="a JSON Lines file of finished (task, pooling) runs: those in it are reused, new ones added")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.no_record = "1,2", True
    return args


def command(args, setup: Setup, pooling: str, out: Path) -> list[str]:
    train_samples, epochs = (48, 1.0) if args.quick else (setup.train_samples, setup.epochs)
    cmd = [sys.executable, "-m", "bert_tasks", "finetune", "glue", "--task", setup.task,
           "--data-dir", str(args.data / setup.folder), "--output-dir", str(out), *POOLINGS[pooling],
           "--seeds", args.seeds, "--max-train-samples", str(train_samples), "--epochs", str(epochs),
           "--learning-rate", str(LR), "--batch-size", str(BATCH), "--eval-batch-size", str(EVAL_BATCH),
           "--max-seq-length", str(MAX_LEN), "--logging-steps", "10000", "--set", f"train.warmup_ratio={WARMUP}"]
    return cmd + (["--max-eval-samples", "64"] if args.quick else [])


def run(args, setup: Setup, pooling: str, out: Path) -> dict:
    """One multi-seed command; the GLUE score of every seed from its own run folder."""
    from bert_tasks.tasks.glue.report import task_score

    start = time.perf_counter()
    done = subprocess.run(command(args, setup, pooling, out), cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{setup.task} {pooling} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    seeds = {}
    for seed in args.seeds.split(","):
        folder = out / f"seed-{seed}"
        metrics = json.loads((folder / "eval_results.json").read_text())
        seeds[seed] = {"score": task_score(setup.task, metrics),
                       "train_seconds": json.loads((folder / "train_results.json").read_text())["train_seconds"],
                       "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
    return {"seconds": seconds, "seeds": seeds}


def summary(run: dict) -> dict:
    scores = [s["score"] for s in run["seeds"].values()]
    return {"median": statistics.median(scores), "min": min(scores), "max": max(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else 0.0, "scores": scores,
            "seconds_per_seed": run["seconds"] / len(scores)}


def render(args, results: dict, loads: tuple) -> str:
    rows = ["| task | pooling | dev score, median (min-max; std) | median - cls | beyond the seed spread? "
            "| wall time per seed (s) |", "| --- | --- | ---: | ---: | --- | ---: |"]
    verdicts = []
    for setup in SETUPS:
        if setup.task not in results:
            continue
        by_pooling = results[setup.task]
        base = by_pooling.get("cls")
        for name, stats in by_pooling.items():
            delta, verdict = "-", "-"
            if base and name != "cls":
                diff = stats["median"] - base["median"]
                spread = max(stats["std"], base["std"])
                delta = f"{100 * diff:+.2f} pts"
                verdict = ("**better**" if diff > spread else "worse" if -diff > spread else "no") + \
                    f" (spread {100 * spread:.2f})"
                if diff > spread:
                    verdicts.append(f"{name} on {setup.folder}")
            rows.append(f"| {setup.folder} | {name} | {100 * stats['median']:.2f} ({100 * stats['min']:.2f}-"
                        f"{100 * stats['max']:.2f}; {100 * stats['std']:.2f}) | {delta} | {verdict} | "
                        f"{stats['seconds_per_seed']:.1f} |")
    sizes = "; ".join(f"{s.folder}: the first {s.train_samples} training examples, {s.epochs:g} epochs"
                      for s in SETUPS if s.task in results)
    seeds = args.seeds.replace(",", ", ")
    return "\n".join([
        f"Data: `{shown(args.data)}` (official GLUE layout), scored on all of each dev set (SST-2 1,821, MRPC 1,500, "
        f"STS-B 1,500 examples). Bundled MiniLM-L6-H384; seeds {seeds}, every (task, pooling) one `--seeds` command in "
        f"a fresh process; {sizes}. Every run: lr {LR:g}, batch {BATCH}, linear schedule with {WARMUP:g} warmup, "
        f"weight decay 0, max length {MAX_LEN}, the defaults otherwise (bf16 autocast where the CPU has it). The score "
        "is the task's GLUE score (SST-2 accuracy; MRPC mean of F1 and accuracy; STS-B mean of Pearson and Spearman). "
        "'Beyond the seed spread': the difference of medians exceeds the larger of the two sample standard deviations.",
        "", *rows, "",
        "Beats cls by more than the seed spread: " + (", ".join(verdicts) if verdicts else "none") + ".",
        "", f"{load_note(*loads)}.",
    ])


def every_seed(results_raw: dict) -> str:
    rows = ["Every seed (dev score; training seconds):", "", "| task | pooling | " +
            " | ".join(f"seed {s}" for s in next(iter(next(iter(results_raw.values())).values()))["seeds"]) + " |"]
    rows.append("| --- | --- |" + " ---: |" * (rows[-1].count("|") - 3))
    for task, by_pooling in results_raw.items():
        for name, run in by_pooling.items():
            rows.append(f"| {task} | {name} | " + " | ".join(f"{100 * s['score']:.2f} ({s['train_seconds']:.0f} s)"
                                                             for s in run["seeds"].values()) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    poolings = args.poolings.split(",")
    unknown = [p for p in poolings if p not in POOLINGS]
    if unknown:
        raise SystemExit(f"unknown pooling(s) {', '.join(unknown)}; choose from {', '.join(POOLINGS)}")
    cached = {}
    if args.results and args.results.is_file():
        for line in args.results.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            cached[json.dumps(row["key"], sort_keys=True)] = row["run"]
    load_start = os.getloadavg()[0]
    results, raw = {}, {}
    with tempfile.TemporaryDirectory(prefix="pooling-seeds-") as tmp:
        for setup in SETUPS:
            if setup.task not in args.tasks.split(","):
                continue
            for pooling in poolings:
                key = {"setup": [setup.task, setup.train_samples, setup.epochs, LR, BATCH, MAX_LEN, args.quick],
                       "pooling": pooling, "seeds": args.seeds}
                outcome = cached.get(json.dumps(key, sort_keys=True))
                if outcome is None:
                    print(f"== {setup.folder} {pooling} seeds {args.seeds}", flush=True)
                    outcome = run(args, setup, pooling, Path(tmp) / f"{setup.task}-{pooling}")
                    if args.results:
                        with args.results.open("a", encoding="utf-8") as out:
                            out.write(json.dumps({"key": key, "run": outcome}) + "\n")
                stats = summary(outcome)
                print(f"   {setup.folder} {pooling}: median {100 * stats['median']:.2f} (std {100 * stats['std']:.2f}) "
                      f"{outcome['seconds']:.0f} s", flush=True)
                results.setdefault(setup.task, {})[pooling] = stats
                raw.setdefault(setup.task, {})[pooling] = outcome
    markdown = render(args, results, (load_start, os.getloadavg()[0]))
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("pooling_seeds", markdown + "\n\n" + every_seed(raw))


if __name__ == "__main__":
    main()

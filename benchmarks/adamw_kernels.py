"""AdamW kernels on CPU: the optimizer step's time (fused, foreach, a plain loop) and what the kernel does to a training curve.

1. Step time: the bundled MiniLM-L6-H384 with a 2-class head (22.7M parameters), random gradients,
   ``torch.optim.AdamW`` built as ``train.make_optimizer`` builds it, median of ``--steps`` timed steps
   after warm-up, at 1 thread and at every thread.
2. The curve: ``finetune glue`` on SST-2 (the real run template) three times, each logging every step:
   fused seed 1, loop seed 1, fused seed 2. The fused-vs-loop difference of the per-step loss is set
   against the seed-to-seed difference, and the dev accuracies are listed.

    python -m benchmarks adamw_kernels [--quick]
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

KERNELS = ("fused", "foreach", "loop")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks adamw_kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "SST-2")
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per kernel")
    parser.add_argument("--train-steps", type=int, default=60, help="fine-tuning steps of each curve")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.train_steps, args.no_record = 3, 6, True
    return args


def step_times(steps: int, threads: int) -> dict[str, float]:
    import torch

    from bert_tasks.checkpoint import load_pretrained
    from bert_tasks.config import TrainConfig
    from bert_tasks.training import make_optimizer

    torch.set_num_threads(threads)
    model = load_pretrained("minilm", task="glue", num_labels=2)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    times = {}
    for kernel in KERNELS:
        optimizer = make_optimizer(model, TrainConfig(adam_kernel=kernel, weight_decay=0.01), torch.device("cpu"))
        for _ in range(3):
            optimizer.step()
        samples = []
        for _ in range(steps):
            start = time.perf_counter()
            optimizer.step()
            samples.append(time.perf_counter() - start)
        times[kernel] = statistics.median(samples)
    return times


def curve(args, work: Path, kernel: str, seed: int) -> dict:
    from bert_tasks.runner import train
    from bert_tasks.tasks import resolve_recipe

    out = work / f"{kernel}-{seed}"
    recipe = resolve_recipe(None, task="glue", flags={
        "data.task": "sst2", "data.data_dir": str(args.data), "data.max_train_samples": 32 * args.train_steps,
        "data.max_eval_samples": 872, "data.max_seq_length": 128, "train.epochs": 1.0, "train.seed": seed,
        "train.learning_rate": 1e-4, "train.warmup_ratio": 0.1, "train.batch_size": 32, "train.logging_steps": 1,
        "train.adam_kernel": kernel, "train.mixed_precision": "no", "output_dir": str(out),
    })
    metrics = train(recipe)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log if "loss" in row and not row.get("eval")]
    return {"losses": losses, "accuracy": metrics["accuracy"]}


def render(args, times: dict, curves: dict, loads: tuple) -> str:
    rows = ["| kernel | step, 1 thread (ms) | step, all threads (ms) | vs loop, 1 thread |", "| --- | ---: | ---: | ---: |"]
    for kernel in KERNELS:
        one, every = times[1][kernel], times["all"][kernel]
        rows.append(f"| {kernel} | {1000 * one:.1f} | {1000 * every:.1f} | {times[1]['loop'] / one:.1f}x |")
    fused, loop, other = (curves[k]["losses"] for k in (("fused", 1), ("loop", 1), ("fused", 2)))
    kernel_gap = [abs(a - b) for a, b in zip(fused, loop)]
    seed_gap = [abs(a - b) for a, b in zip(fused, other)]
    return "\n".join([
        f"Optimizer step of the bundled MiniLM with a 2-class head (22.7M parameters), random gradients, median of "
        f"{args.steps} steps.", "", *rows, "",
        f"Training curve: SST-2 (`{shown(args.data)}`), {len(fused)} steps of 32 (lr 1e-4, warmup 0.1, linear), "
        "fp32, loss logged every step, scored on the first 872 dev sentences.", "",
        "| | max abs loss difference per step | mean abs difference | dev accuracy |", "| --- | ---: | ---: | ---: |",
        f"| fused vs loop, same seed | {max(kernel_gap):.2e} | {statistics.mean(kernel_gap):.2e} | "
        f"{100 * curves[('fused', 1)]['accuracy']:.2f} vs {100 * curves[('loop', 1)]['accuracy']:.2f} |",
        f"| seed 1 vs seed 2, both fused | {max(seed_gap):.2e} | {statistics.mean(seed_gap):.2e} | "
        f"{100 * curves[('fused', 1)]['accuracy']:.2f} vs {100 * curves[('fused', 2)]['accuracy']:.2f} |",
        "", f"{load_note(*loads)}.",
    ])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch

    every = torch.get_num_threads()
    load_start = os.getloadavg()[0]
    times = {1: step_times(args.steps, 1), "all": step_times(args.steps, every)}
    with tempfile.TemporaryDirectory(prefix="adamw-") as tmp:
        curves = {(k, s): curve(args, Path(tmp), k, s) for k, s in (("fused", 1), ("loop", 1), ("fused", 2))}
    markdown = render(args, times, curves, (load_start, os.getloadavg()[0]))
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("adamw_kernels", markdown)


if __name__ == "__main__":
    main()

"""CPU settings for fine-tuning: bf16 autocast (speed and accuracy), torch threads and DataLoader workers.

All on the bundled MiniLM-L6-H384 with a seeded 2-class head and SST-2 data:

* bf16: eval logits under ``torch.autocast('cpu', bfloat16)`` against fp32 on dev
  sentences (max |Δ|, argmax agreement), eval and training-step speed fp32 vs bf16
  (alternating), and a short fine-tune from the same start on the same batches
  (loss every few steps) in each precision;
* threads/workers: training steps (forward, loss, backward, AdamW) over length-grouped
  SST-2 batches through a ``DataLoader`` with the GLUE collate, for torch threads
  1 and 2 and ``num_workers`` 0 and 1, alternating.

    python -m benchmarks cpu_settings [--steps 30] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ._record import DATA, load_note, shown



def load_split(path: Path, limit: int) -> tuple[list[str], list[int]]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:limit]
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def features(tokenizer, sentences, labels):
    enc = tokenizer(sentences, truncation=True, max_length=128, return_token_type_ids=True)
    return [{"input_ids": i, "attention_mask": m, "token_type_ids": t, "labels": y}
            for i, m, t, y in zip(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], labels)]


def fresh_model():
    from bert_tasks.checkpoint import load_pretrained

    torch.manual_seed(0)
    return load_pretrained("minilm", task="glue", num_labels=2)


def autocast(dtype: str):
    return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else contextlib.nullcontext()


def train_step(model, opt, batch, dtype: str) -> float:
    with autocast(dtype):
        logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits
    loss = F.cross_entropy(logits.float(), batch["labels"])
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def bf16_section(task, tokenizer, args) -> list[str]:
    dev = features(tokenizer, *load_split(args.data / "dev.tsv", args.eval_sentences))
    train = features(tokenizer, *load_split(args.data / "train.tsv", args.steps * args.batch))
    dev_batch = task.collate(dev)
    model = fresh_model().eval()
    times = {"fp32": [], "bf16": []}
    logits = {}
    with torch.no_grad():
        for r in range(args.rounds + 1):
            for dtype in (("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")):
                start = time.perf_counter()
                with autocast(dtype):
                    logits[dtype] = model(dev_batch["input_ids"], dev_batch["attention_mask"],
                                          dev_batch["token_type_ids"]).logits.float()
                if r:  # round 0 is the warm-up
                    times[dtype].append(time.perf_counter() - start)
    diff = (logits["fp32"] - logits["bf16"]).abs()
    agree = (logits["fp32"].argmax(-1) == logits["bf16"].argmax(-1)).float().mean().item()
    eval_ratio = statistics.median(f / b for f, b in zip(times["fp32"], times["bf16"]))

    # the same start, the same batches, each precision in turn; steps alternate so load falls on both alike
    batches = [task.collate(train[i * args.batch:(i + 1) * args.batch]) for i in range(args.steps)]
    models = {d: fresh_model().train() for d in ("fp32", "bf16")}
    opts = {d: torch.optim.AdamW(m.parameters(), lr=5e-5) for d, m in models.items()}
    curves = {"fp32": [], "bf16": []}
    step_times = {"fp32": [], "bf16": []}
    for i, batch in enumerate(batches):
        for dtype in (("fp32", "bf16") if i % 2 == 0 else ("bf16", "fp32")):
            torch.manual_seed(100 + i)  # the same dropout draws for both precisions
            start = time.perf_counter()
            curves[dtype].append(train_step(models[dtype], opts[dtype], batch, dtype))
            step_times[dtype].append(time.perf_counter() - start)
    train_ratio = statistics.median(f / b for f, b in zip(step_times["fp32"][1:], step_times["bf16"][1:]))
    every = max(1, args.steps // 6)
    marks = list(range(0, args.steps, every)) + ([args.steps - 1] if (args.steps - 1) % every else [])

    lines = [
        "| bf16 autocast vs fp32 | value |", "|---|---:|",
        f"| eval logits, max abs difference ({len(dev)} dev sentences) | {diff.max().item():.3g} |",
        f"| eval logits, mean abs difference | {diff.mean().item():.3g} |",
        f"| eval argmax agreement | {100 * agree:.1f}% |",
        f"| eval speed, bf16 / fp32 (batch of {len(dev)}) | {eval_ratio:.2f}x |",
        f"| training step speed, bf16 / fp32 (batch {args.batch}) | {train_ratio:.2f}x |",
        "", "| step | " + " | ".join(str(m + 1) for m in marks) + " |", "|---|" + "---:|" * len(marks),
    ]
    for dtype in ("fp32", "bf16"):
        lines.append(f"| loss {dtype} | " + " | ".join(f"{curves[dtype][m]:.4f}" for m in marks) + " |")
    lines.append("| |Δ loss| | " + " | ".join(f"{abs(curves['fp32'][m] - curves['bf16'][m]):.4f}" for m in marks) + " |")
    lines.append(f"\nMean loss over the {args.steps} steps: fp32 {np.mean(curves['fp32']):.4f}, "
                 f"bf16 {np.mean(curves['bf16']):.4f}. Speed ratios > 1 mean bf16 is faster.")
    return lines


def threads_section(task, tokenizer, args) -> list[str]:
    from torch.utils.data import DataLoader

    from bert_tasks.training import EpochBatchSampler

    train = features(tokenizer, *load_split(args.data / "train.tsv", 50 * args.batch))
    sampler = EpochBatchSampler([len(f["input_ids"]) for f in train], args.batch, seed=0)
    model = fresh_model().train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    settings = [(2, 0), (1, 0), (2, 1), (1, 1)]
    times: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
    default_threads = torch.get_num_threads()
    for r in range(args.rounds + 1):
        for threads, workers in (settings if r % 2 == 0 else settings[::-1]):
            torch.set_num_threads(threads)
            loader = DataLoader(train, batch_sampler=sampler, collate_fn=task.collate, num_workers=workers)
            start = time.perf_counter()
            n = 0
            for batch in loader:
                train_step(model, opt, batch, "fp32")
                n += 1
                if n == args.thread_steps:
                    break
            del loader
            if r:
                times[(threads, workers)].append((time.perf_counter() - start) / n)
    torch.set_num_threads(default_threads)
    base = times[(2, 0)]
    lines = ["| torch threads | DataLoader workers | s / step | speed vs (2 threads, 0 workers) |", "|---:|---:|---:|---:|"]
    for s in settings:
        ratio = statistics.median(b / t for b, t in zip(base, times[s]))
        lines.append(f"| {s[0]} | {s[1]} | {statistics.median(times[s]):.2f} | {ratio:.2f}x |")
    lines.append(f"\n{args.thread_steps} training steps (batch {args.batch}, SST-2, length-grouped, including the loader's "
                 f"start-up) per run; {args.rounds} alternating rounds after a warm-up round; median per-round ratios.")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks cpu_settings", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "SST-2")
    parser.add_argument("--steps", type=int, default=30, help="fine-tuning steps per precision")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--eval-sentences", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--thread-steps", type=int, default=4)
    parser.add_argument("--skip", default="", help="comma list: bf16, threads")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_sentences, args.rounds, args.thread_steps = 6, 64, 1, 2
    from bert_tasks.checkpoint import load_tokenizer
    from bert_tasks.tasks.glue.task import GlueTask

    tokenizer = load_tokenizer("minilm")
    task = GlueTask("sst2", pad_token_id=tokenizer.pad_token_id)
    load_start = os.getloadavg()[0]
    skip = set(filter(None, args.skip.split(",")))
    lines = []
    if "bf16" not in skip:
        lines += bf16_section(task, tokenizer, args) + [""]
        print("\n".join(lines), flush=True)
    if "threads" not in skip:
        lines += threads_section(task, tokenizer, args) + [""]
    lines.append(
        f"MiniLM-L6-H384 (bundled) + seeded 2-class head, SST-2 (`{shown(args.data)}`), AdamW lr 5e-5, dropout 0.1. "
        f"{load_note(load_start)}; absolute times are noisy, ratios are paired within rounds."
    )
    body = "\n".join(lines)
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("cpu_settings", body)


if __name__ == "__main__":
    main()

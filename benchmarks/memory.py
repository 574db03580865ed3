"""Peak memory (RSS) of a base-size fine-tuning step: our encoder against ``transformers``.

Each variant runs in a fresh Python subprocess, so one variant's allocations cannot
hide another's: it builds a base-size (L12/H768) sequence-classification model with
``transformers``' random init (ours gets the same weights through the checkpoint
table), then runs warm-up + measured AdamW steps (forward, loss, backward, optimizer
step) on a fixed batch. Reported: RSS after building the model and peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) over the steps. Python, torch and
transformers are imported by every variant alike, so their share cancels in the
differences.

    python -m benchmarks memory [--batch 8] [--seq 128,384] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

VARIANTS = ("ours", "hf")


def child(variant: str, batch: int, seq: int, steps: int, dtype: str) -> dict:
    """Runs inside the subprocess."""
    import contextlib
    import resource

    import torch
    import transformers

    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    base = rss_mb()
    torch.manual_seed(0)
    sizes = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512, num_labels=2)
    if variant == "ours":
        from bert_tasks.model import BertConfig, BertForSequenceClassification

        model = BertForSequenceClassification(BertConfig(**{k: v for k, v in sizes.items() if k != "num_labels"},
                                                         id2label={0: "LABEL_0", 1: "LABEL_1"}))
    else:
        model = transformers.BertForSequenceClassification(transformers.BertConfig(**sizes, attn_implementation="sdpa"))
    model_rss = rss_mb()
    try:  # reset the kernel's peak-RSS mark (VmHWM), so the peak below is the training steps' own
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 30522, (batch, seq), generator=gen)
    mask = torch.ones_like(ids)
    mask[batch // 2:, seq * 3 // 4:] = 0  # some padding
    labels = torch.randint(0, 2, (batch,), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else contextlib.nullcontext()
    for _ in range(steps):
        with autocast:
            if variant == "ours":
                logits = model(ids, mask).logits
            else:
                logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; the whole process's peak
    peak = maxrss
    if reset:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    return {"start_mb": base, "model_mb": model_rss, "peak_mb": peak, "maxrss_mb": maxrss}


def run_variant(variant: str, batch: int, seq: int, steps: int, dtype: str) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {os.getcwd()!r}); from benchmarks.memory import child; "
            f"print('RESULT' + json.dumps(child({variant!r}, {batch}, {seq}, {steps}, {dtype!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"memory child {variant} failed:\n{out.stderr[-2000:]}")
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks memory", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", default="128,384")
    parser.add_argument("--dtypes", default="fp32")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="T=128 only, batch 4")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seq, args.batch = "128", 4
    import torch

    lines = ["| T | B | dtype | variant | RSS after model (MiB) | peak RSS (MiB) | peak − model (MiB) | vs HF (peak − model) |",
             "|---:|---:|---|---|---:|---:|---:|---:|"]
    for seq in (int(s) for s in args.seq.split(",")):
        for dtype in args.dtypes.split(","):
            got = {v: run_variant(v, args.batch, seq, args.steps, dtype) for v in VARIANTS}
            for v in VARIANTS:
                r = got[v]
                step = r["peak_mb"] - r["model_mb"]
                ratio = step / (got["hf"]["peak_mb"] - got["hf"]["model_mb"])
                lines.append(f"| {seq} | {args.batch} | {dtype} | {'ours' if v == 'ours' else 'transformers'} | "
                             f"{r['model_mb']:,.0f} | {r['peak_mb']:,.0f} | {step:,.0f} | {ratio:.2f} |")
                print(lines[-1], flush=True)
    body = "\n".join(lines) + (
        f"\n\nBase-size BertForSequenceClassification (L12/H768, 110M parameters, vocab 30522), a fresh subprocess per "
        f"row; {args.steps} AdamW steps (forward, cross-entropy, backward, optimizer step) on a fixed batch (the second "
        "half of the rows padded in their last quarter), dropout 0.1. `RSS after model` includes the interpreter, torch, transformers "
        "and the fp32 weights; "
        "`peak − model` is what training adds: activations kept for backward, gradients and AdamW's two moments. "
        f"{torch.get_num_threads()} torch threads."
    )
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("memory", body)


if __name__ == "__main__":
    main()

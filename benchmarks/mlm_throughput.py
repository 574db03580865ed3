"""Masked-LM pretraining throughput and MFU at T=128: masked-only logits, full logits, and transformers.

Three training steps on identical weights and identical masked batches, produced by
``transformers.DataCollatorForLanguageModeling`` (15% masking, 80/10/10) over packed,
unpadded 128-token sequences of the 30522-word BERT vocabulary:

* ours, masked-only: ``BertForMaskedLM(..., prediction_mask=labels != -100)`` runs the
  V-wide decoder at the ~15% selected positions only ([N, V] logits);
* ours, full logits: the same model without the mask ([B, T, V] logits, loss ignoring -100);
* ``transformers.BertForMaskedLM(labels=...)`` (SDPA), which computes full logits.

A step is collate (masking) + forward + loss + backward + AdamW step, dropout 0.1. Before
timing, the three losses are checked to agree to 1e-5 in eval mode. Variants alternate
within each round; tok/s = B·T / median step time.

    python -m benchmarks mlm_throughput [--presets mini,small] [--batch 32] [--rounds 4] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
import transformers

from bert_tasks.checkpoint import load_hf_state_dict, load_tokenizer
from bert_tasks.model import PRESETS, BertConfig, BertForMaskedLM

from ._record import load_note
from .peak import measure_matmul_peak

SEQ = 128
VOCAB = 30522
PARITY_TOL = 1e-5


def build(preset: str) -> tuple[BertForMaskedLM, torch.nn.Module]:
    layers, hidden, heads = PRESETS[preset]
    sizes = dict(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                 intermediate_size=4 * hidden, max_position_embeddings=512)
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(transformers.BertConfig(**sizes, attn_implementation="sdpa"))
    ours = BertForMaskedLM(BertConfig(**sizes))
    load_hf_state_dict(ours, hf.state_dict(), task="mlm")
    return ours, hf


def make_examples(n: int, seed: int) -> list[dict[str, list[int]]]:
    """Packed sequences: [CLS] w … w [SEP], ids drawn from the ordinary-word range of the vocabulary."""
    gen = torch.Generator().manual_seed(seed)
    body = torch.randint(1996, VOCAB, (n, SEQ - 2), generator=gen)
    return [{"input_ids": [101, *row.tolist(), 102]} for row in body]


def losses(name: str, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    labels = batch["labels"]
    if name == "hf":
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
    if name == "ours-masked":
        picked = labels != -100
        logits = model(batch["input_ids"], batch["attention_mask"], prediction_mask=picked).logits  # [N, V]
        return F.cross_entropy(logits, labels[picked])
    logits = model(batch["input_ids"], batch["attention_mask"]).logits  # [B, T, V]
    return F.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100)


def flops_per_step(config: BertConfig, non_embedding: int, batch: int, predicted: float) -> float:
    """6·N·B·T + 12·L·B·T²·C for the encoder, plus the head (dense C×C + decoder C×V) at the predicted positions."""
    L, C = config.num_hidden_layers, config.hidden_size
    return 6 * non_embedding * batch * SEQ + 12 * L * batch * SEQ**2 * C + 6 * (C * C + C * VOCAB) * predicted


def bench(preset: str, batch: int, rounds: int, steps: int, collator, examples) -> list[dict]:
    ours, hf = build(preset)
    batches = [collator(examples[i * batch:(i + 1) * batch]) for i in range(4)]
    for b in batches:
        b.setdefault("attention_mask", torch.ones_like(b["input_ids"]))
    ours.eval(), hf.eval()
    with torch.no_grad():
        ref = losses("hf", hf, batches[0]).item()
        diff = max(abs(losses(n, ours, batches[0]).item() - ref) for n in ("ours-masked", "ours-full"))
    if diff > PARITY_TOL:
        raise AssertionError(f"{preset}: MLM losses differ by {diff:.2e} > {PARITY_TOL:g}; not timing")
    # two models of ours with identical weights, so each variant trains its own copy from the same start
    variants = {"ours-masked": ours, "ours-full": BertForMaskedLM(ours.config), "hf": hf}
    variants["ours-full"].load_state_dict(ours.state_dict())
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in variants.items()}
    for m in variants.values():
        m.train()

    def run(name: str, n: int) -> float:
        model, opt = variants[name], optimizers[name]
        start = time.perf_counter()
        for i in range(n):
            b = collator(examples[(i % 8) * batch:(i % 8 + 1) * batch])  # masking cost counted in every variant
            b.setdefault("attention_mask", torch.ones_like(b["input_ids"]))
            loss = losses(name, model, b)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        return (time.perf_counter() - start) / n

    for name in variants:
        run(name, 1)  # warm-up
    times = {k: [] for k in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            times[name].append(run(name, steps))
    predicted = statistics.mean(float((b["labels"] != -100).sum()) for b in batches)
    non_embedding = sum(p.numel() for p in ours.bert.encoder.parameters())
    rows = []
    for name in variants:
        positions = predicted if name == "ours-masked" else batch * SEQ
        rows.append(dict(
            preset=preset, variant=name, batch=batch, tok_s=batch * SEQ / statistics.median(times[name]),
            vs_hf=statistics.median(h / t for t, h in zip(times[name], times["hf"])),
            flops=flops_per_step(ours.config, non_embedding, batch, positions),
            step_s=statistics.median(times[name]), parity=diff, predicted=predicted,
        ))
        print(f"  {preset} {name}: {rows[-1]['tok_s']:,.0f} tok/s, ×{rows[-1]['vs_hf']:.2f} vs HF", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks mlm_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="mini,small", help=f"comma list of {', '.join(PRESETS)}")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2, help="steps per timed run")
    parser.add_argument("--peak-seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="mini only, batch 16, 2 rounds of 1 step")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.presets, args.batch, args.rounds, args.steps = "mini", 16, 2, 1
    load_start = os.getloadavg()[0]
    peaks = [measure_matmul_peak(torch.float32, args.peak_seconds / 2)] if args.peak_seconds > 0 else []
    tokenizer = load_tokenizer("minilm")
    collator = transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, return_tensors="pt")
    torch.manual_seed(0)
    examples = make_examples(8 * args.batch, seed=1)
    rows = []
    for preset in args.presets.split(","):
        rows += bench(preset, args.batch, args.rounds, args.steps, collator, examples)
        if args.peak_seconds > 0:
            peaks.append(measure_matmul_peak(torch.float32, args.peak_seconds / 2))
    peak = max(peaks) if peaks else None
    lines = ["| preset | variant | B | tok/s | vs HF | MFU | step FLOPs (G) | parity |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    labels = {"ours-masked": "ours, masked-only logits", "ours-full": "ours, full logits", "hf": "transformers BertForMaskedLM"}
    for r in rows:
        mfu = "–" if not peak else f"{100 * r['flops'] / r['step_s'] / (peak * 1e9):.1f}%"
        lines.append(f"| {r['preset']} | {labels[r['variant']]} | {r['batch']} | {r['tok_s']:,.0f} | {r['vs_hf']:.2f}x | "
                     f"{mfu} | {r['flops'] / 1e9:,.1f} | {r['parity']:.1e} |")
    notes = (
        f"T={SEQ}, packed (no padding), vocabulary {VOCAB}, HF `DataCollatorForLanguageModeling` (15%, 80/10/10) "
        f"feeding all three (≈{rows[0]['predicted']:.0f} predicted positions a batch); step = masking + forward + "
        "loss + backward + AdamW, dropout 0.1; presets are Turc et al.'s (mini L4/H256, small L4/H512, base L12/H768). "
        f"{args.rounds} alternating rounds of {args.steps} step(s); `vs HF` = median per-round speed ratio; `parity` = "
        "max |loss − HF loss| in eval mode before timing. MFU = the variant's own FLOPs (encoder 6·N·B·T + 12·L·B·T²·C, "
        "head 6·(C² + C·V) per predicted position: all B·T for full logits) / step time / fp32 matmul peak "
        f"({peak or 0:.0f} GFLOP/s, best reading in this run). {torch.get_num_threads()} torch threads; "
        f"{load_note(load_start)}."
    )
    body = "\n".join(lines) + "\n\n" + notes
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("mlm_throughput", body)


if __name__ == "__main__":
    main()

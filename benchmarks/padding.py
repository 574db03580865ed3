"""How much padding our batching leaves on real data: the most unpadded attention could save.

Counts, for SST-2 training sentences and SQuAD v2 windows (MiniLM's WordPiece
tokenizer), the share of positions in a batch that are padding under three
batchings: padded to max_length (the ``run_glue``/``run_qa`` default), dynamic
padding to the longest in a random batch, and ours (dynamic padding +
``EpochBatchSampler`` length grouping in training, longest-first sorting in
``predict``). It runs no model: the figure bounds what unpadding (jagged or
block-diagonal attention over concatenated sequences) could remove.

    python -m benchmarks padding [--sst2 PATH] [--squad PATH] [--batch-size 32] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import numpy as np

from bert_tasks.training import EpochBatchSampler

from ._record import DATA, shown



def sst2_lengths(path: Path, tokenizer, limit: int | None, max_length: int = 128) -> list[int]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    sentences = [r["sentence"] for r in rows[:limit]]
    return [len(ids) for ids in tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]]


def squad_lengths(path: Path, tokenizer, max_length: int = 384, stride: int = 128) -> list[int]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    questions, contexts = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                questions.append(qa["question"].lstrip())
                contexts.append(paragraph["context"])
    enc = tokenizer(questions, contexts, truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True)
    return [len(ids) for ids in enc["input_ids"]]


def padding_share(lengths: list[int], batches: list[list[int]], fixed: int | None = None) -> tuple[float, float]:
    """(padding share of all positions, attention padding share: of the T² score entries per sequence)."""
    real = sum(lengths)
    real_sq = sum(n * n for n in lengths)
    positions = scores = 0
    for batch in batches:
        width = fixed or max(lengths[i] for i in batch)
        positions += width * len(batch)
        scores += width * width * len(batch)
    return 1 - real / positions, 1 - real_sq / scores


def table_rows(name: str, lengths: list[int], batch_size: int, max_length: int) -> list[str]:
    arr = np.asarray(lengths)
    random_batches = EpochBatchSampler(lengths, batch_size, seed=0, group_by_length=False).batches()
    grouped = EpochBatchSampler(lengths, batch_size, seed=0, group_by_length=True).batches()
    sorted_batches = EpochBatchSampler(lengths, batch_size, seed=0, sort=True).batches()
    rows = []
    for label, batches, fixed in (
        (f"padded to {max_length}", random_batches, max_length),
        ("dynamic, random batches", random_batches, None),
        ("ours, training: dynamic + length-grouped", grouped, None),
        ("ours, predict: dynamic + longest-first", sorted_batches, None),
    ):
        tokens, attention = padding_share(lengths, batches, fixed)
        rows.append(f"| {name} | {label} | {100 * tokens:.1f}% | {100 * attention:.1f}% |")
    stats = f"{len(arr)} sequences, length mean {arr.mean():.1f}, median {np.median(arr):.0f}, max {arr.max()}"
    return rows, stats


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks padding", description=__doc__.splitlines()[0])
    parser.add_argument("--sst2", type=Path, default=DATA / "SST-2" / "train.tsv")
    parser.add_argument("--squad", type=Path, default=DATA / "squad" / "squad-v2-5articles.json")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="the first 5,000 SST-2 sentences only")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)

    from bert_tasks.checkpoint import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    lines = ["| data | batching | padding (positions) | padding (attention T² entries) |", "|---|---|---:|---:|"]
    notes = []
    if args.sst2.is_file():
        rows, stats = table_rows("SST-2 train", sst2_lengths(args.sst2, tokenizer, 5000 if args.quick else None),
                                 args.batch_size, 128)
        lines += rows
        notes.append(f"SST-2 train (`{shown(args.sst2)}`): {stats}, max_length 128.")
    if args.squad.is_file():
        rows, stats = table_rows("SQuAD v2 windows", squad_lengths(args.squad, tokenizer), args.batch_size, 384)
        lines += rows
        notes.append(f"SQuAD (`{shown(args.squad)}`): {stats} (max_length 384, doc_stride 128).")
    body = "\n".join(lines) + "\n\n" + " ".join(notes) + (
        f" Batch size {args.batch_size}; tokenizer: bundled all-MiniLM-L6-v2 WordPiece. Padding share = 1 − real / "
        "computed positions (for the per-token work: projections, FFN, LayerNorm); the attention column is the same "
        "for the T² score entries (QKᵀ, softmax, PV). Unpadded (jagged) attention could remove at most these shares."
    )
    print(body)
    if not args.no_record:
        from ._record import record

        record("padding", body)


if __name__ == "__main__":
    main()

"""Shipping on ONNX Runtime: PyTorch vs ORT fp32 vs ORT int8 (and the transformers pipeline) on SST-2.

One SST-2 classifier (``--model DIR``, else the bundled MiniLM fine-tuned here on the shared SST-2 train set) is
exported with ``bert-tasks export --quantize int8 --validation-file`` (which itself checks ORT fp32 against PyTorch
to 1e-4 and scores all three on the dev sentences). Then, side by side on 1 and 2 threads:

* dev accuracy of PyTorch (ours), ORT fp32, ORT int8 and ``transformers.pipeline("text-classification")``;
* file sizes (model.safetensors, model.onnx, model.int8.onnx);
* single-example latency (tokenize + forward, one sentence at a time): p50 and p99;
* batched throughput (sentences sorted by length, batches of ``--batch-size``, dynamic padding): sentences/s.

Runs alternate the engines within each round, so a change in the machine's load touches all alike.

    python -m benchmarks export [--model DIR] [--sst2 DIR] [--sentences N] [--latency-sentences N] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ._record import DATA, load_note, shown

MAX_LENGTH = 128


def read_sst2(path: Path, limit: int | None) -> tuple[list[str], list[int]]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:limit]
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def fine_tune(sst2: Path, out: Path, samples: int, steps: int | None) -> Path:
    """The bundled MiniLM fine-tuned on the first ``samples`` SST-2 training sentences (fp32, seed 42)."""
    from bert_tasks.cli import main

    argv = ["finetune", "glue", "--task", "sst2", "--model", "minilm", "--data-dir", str(sst2), "--output-dir",
            str(out), "--max-train-samples", str(samples), "--max-eval-samples", "64", "--mixed-precision", "no"]
    if steps:
        argv += ["--max-steps", str(steps)]
    assert main(argv) == 0, "fine-tuning failed"
    return out


def engines(folder: Path, onnx_dir: Path, threads: int) -> dict[str, Callable[[list[str]], np.ndarray]]:
    """name -> texts -> [N, 2] logits, each engine on ``threads`` threads."""
    import transformers

    from bert_tasks.checkpoint import load_pretrained, load_tokenizer
    from bert_tasks.checkpoint.onnx import INT8_FILE, load_export

    tokenizer = load_tokenizer(str(folder))
    models = {"pytorch (ours)": load_pretrained(folder, task="glue", num_labels=2, trained_head=True).eval(),
              "onnx fp32": load_export(onnx_dir, threads=threads),
              "onnx int8": load_export(onnx_dir, INT8_FILE, threads=threads)}

    def ours(model):
        @torch.no_grad()
        def run(texts: list[str]) -> np.ndarray:
            inputs = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt",
                               return_token_type_ids=True)
            return model(**inputs).logits.float().numpy()
        return run

    pipe = transformers.pipeline("text-classification", model=str(folder), tokenizer=str(folder), device="cpu")
    order = sorted(pipe.model.config.label2id, key=pipe.model.config.label2id.get)

    def pipeline(texts: list[str]) -> np.ndarray:
        out = pipe(texts, batch_size=len(texts), top_k=None, truncation=True, max_length=MAX_LENGTH,
                   function_to_apply="none")
        out = [out] if isinstance(out[0], dict) else out
        return np.array([[{d["label"]: d["score"] for d in row}[label] for label in order] for row in out])

    return {**{name: ours(m) for name, m in models.items()}, "transformers pipeline": pipeline}


def measure(runs: dict[str, Callable], sentences: list[str], latency: list[str], batch_size: int, rounds: int
            ) -> dict[str, dict[str, float]]:
    """Per engine: p50/p99 single-sentence latency (ms) and batched sentences/s (median over rounds)."""
    ordered = sorted(sentences, key=len)
    batches = [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
    single: dict[str, list[float]] = {k: [] for k in runs}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for name, run in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
            run(latency[:2])  # warm-up
            for text in latency:
                start = time.perf_counter()
                run([text])
                single[name].append(1000 * (time.perf_counter() - start))
            start = time.perf_counter()
            for batch in batches:
                run(batch)
            rates[name].append(len(sentences) / (time.perf_counter() - start))
    return {name: {"p50_ms": float(np.percentile(single[name], 50)), "p99_ms": float(np.percentile(single[name], 99)),
                   "per_s": statistics.median(rates[name])} for name in runs}


def accuracy(run: Callable, sentences: list[str], labels: list[int], batch_size: int) -> float:
    preds = np.concatenate([run(sentences[i:i + batch_size]).argmax(1) for i in range(0, len(sentences), batch_size)])
    return float((preds == np.asarray(labels)).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a fine-tuned SST-2 folder (default: fine-tune MiniLM here)")
    parser.add_argument("--sst2", type=Path, default=DATA / "SST-2")
    parser.add_argument("--train-samples", type=int, default=8000, help="fine-tuning sentences (without --model)")
    parser.add_argument("--train-steps", type=int, help="stop fine-tuning after N steps (default: one epoch)")
    parser.add_argument("--sentences", type=int, help="first N dev sentences for accuracy and throughput (default all)")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--quick", action="store_true",
                        help="fine-tune 30 steps on 480 sentences; 128 dev sentences, 24 for latency, 1 round; "
                             "prints, records nothing")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_samples, args.train_steps = 480, 30
        args.sentences, args.latency_sentences, args.rounds, args.no_record = args.sentences or 128, 24, 1, True
    from bert_tasks.export import export_folder

    load_start = os.getloadavg()[0]
    dev = args.sst2 / "dev.tsv"
    sentences, labels = read_sst2(dev, args.sentences)
    saved_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="bench-export.") as tmp:
        tmp = Path(tmp)
        folder = args.model or fine_tune(args.sst2, tmp / "sst2", args.train_samples, args.train_steps)
        subset = tmp / "dev.tsv"
        subset.write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in zip(sentences, labels)))
        report = export_folder(folder, tmp / "onnx", quantize="int8", validation_file=str(subset))
        sizes = {"model.safetensors": (Path(folder) / "model.safetensors").stat().st_size, **report["files"]}
        rows, acc = {}, {}
        for threads in (int(t) for t in args.threads.split(",")):
            torch.set_num_threads(threads)
            runs = engines(Path(folder), tmp / "onnx", threads)
            if not acc:
                acc = {name: accuracy(run, sentences, labels, args.batch_size) for name, run in runs.items()}
            rows[threads] = measure(runs, sentences, sentences[: args.latency_sentences], args.batch_size, args.rounds)
            print(json.dumps({"threads": threads, **rows[threads]}), flush=True)
        torch.set_num_threads(saved_threads)
    lines = ["| engine | dev accuracy | file | " + " | ".join(
        f"{t} thr p50 ms | {t} thr p99 ms | {t} thr sent/s" for t in rows) + " |",
        "|---|---:|---:|" + "---:|" * (3 * len(rows))]
    files = {"pytorch (ours)": "model.safetensors", "transformers pipeline": "model.safetensors",
             "onnx fp32": "model.onnx", "onnx int8": "model.int8.onnx"}
    for name in acc:
        cells = " | ".join(f"{rows[t][name]['p50_ms']:.1f} | {rows[t][name]['p99_ms']:.1f} | {rows[t][name]['per_s']:,.1f}"
                           for t in rows)
        lines.append(f"| {name} | {100 * acc[name]:.2f} | {sizes[files[name]] / 1e6:.1f} MB | {cells} |")
    notes = [
        f"SST-2 dev (`{shown(dev)}`), {len(sentences)} sentences, max_length {MAX_LENGTH}; model: "
        + (f"`{shown(args.model)}`" if args.model else
           f"bundled MiniLM fine-tuned here on {args.train_samples} SST-2 training sentences"
           + (f", {args.train_steps} steps" if args.train_steps else ", one epoch") + " (fp32)")
        + f". Export's own check: ORT fp32 max |diff| vs PyTorch {report['max_abs_diff_fp32']:.1e}; its dev accuracy "
        f"(pytorch / fp32 / int8): " + " / ".join(f"{100 * v:.2f}" for v in report["metrics"].values())
        + f"; int8 agrees with fp32 on {100 * report['int8']['dev_agreement_with_fp32']:.1f}% of dev predictions.",
        f"Latency: one sentence per call, tokenization included, {args.latency_sentences} sentences x {args.rounds} "
        f"round(s); throughput: batches of {args.batch_size}, sorted by length. Threads: torch.set_num_threads for "
        f"PyTorch and the pipeline, intra_op_num_threads for ONNX Runtime. {load_note(load_start)}.",
        "Dynamic int8 quantizes activations per batch (one scale over the batch, padding included), so its outputs "
        "depend on which sentences share a batch: the table's accuracy (batches in file order) and the export's "
        "(the evaluator's longest-first batches) can differ by an example or two.",
    ]
    body = "\n".join(lines) + "\n\n" + "\n".join(notes)
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("export", body)


if __name__ == "__main__":
    main()

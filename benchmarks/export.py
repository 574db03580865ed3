"""Shipping on ONNX Runtime: PyTorch vs ORT fp32 vs ORT int8 (and transformers) on SST-2 and on SQuAD.

Two halves (``--tasks sst2,squad``, default both), one recorded section with both tables:

* **SST-2**: one classifier (``--model DIR``, else the bundled MiniLM fine-tuned here on the shared SST-2 train set);
  engines PyTorch (ours), ORT fp32, ORT int8 and ``transformers.pipeline("text-classification")``; dev accuracy.
* **SQuAD**: one QA model (``--squad-model DIR``, else the bundled MiniLM fine-tuned here on the shared SQuAD
  articles: train = all but the last article, dev = the last, as ``squad_finetune`` splits them; v1.1 style,
  answerable questions only, by default: ``--squad-version v2`` keeps the unanswerable ones); engines
  ``QuestionAnswerer`` on the PyTorch folder (ours), on the export's model.onnx and model.int8.onnx, and on
  transformers' ``BertForQuestionAnswering`` (``backend="hf"``: transformers 5 has no question-answering
  pipeline, so its model runs behind the same windowing and post-processing); dev EM/F1 from the toolkit's
  SQuAD metric.

Each model is exported with ``bert_tasks.export.export_folder(..., quantize="int8", validation_file=dev)`` (which
checks ORT fp32 against PyTorch to 1e-4 and scores all three on the dev data). Then, per half, side by side on 1
and 2 threads: file sizes; single-example latency (one sentence, or one question with its context, per call,
tokenization and post-processing included): p50 and p99; batched throughput (inputs sorted by length, batches of
``--batch-size``): inputs/s. Runs alternate the engines' order from round to round, so a change in the machine's
load touches all alike. The issue's targets are stated for each half, met or missed with their figures: int8
within 1 point of fp32 (accuracy, F1), and ORT int8 at least 2x PyTorch's single-example throughput (1/p50).

    python -m benchmarks export [--tasks sst2,squad] [--model DIR] [--squad-model DIR] [--quick]
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
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ._record import DATA, load_note, shown

MAX_LENGTH = 128
TASKS = ("sst2", "squad")
OURS, FP32, INT8 = "pytorch (ours)", "onnx fp32", "onnx int8"
#: the targets of issue 27
MAX_INT8_DROP, MIN_SPEEDUP = 1.0, 2.0


# --------------------------------------------------------------------------- shared by both halves


def measure(runs: dict[str, Callable[[list], Any]], items: Sequence, latency: Sequence, batch_size: int, rounds: int,
            size: Callable[[Any], int] = len) -> dict[str, dict[str, float]]:
    """Per engine (name -> a callable over a list of inputs): p50/p99 single-input latency (ms) and batched
    inputs/s (median over rounds; ``items`` sorted by ``size`` into batches of ``batch_size``)."""
    ordered = sorted(items, key=size)
    batches = [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
    single: dict[str, list[float]] = {k: [] for k in runs}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for name, run in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
            run(list(latency[:2]))  # warm-up
            for item in latency:
                start = time.perf_counter()
                run([item])
                single[name].append(1000 * (time.perf_counter() - start))
            start = time.perf_counter()
            for batch in batches:
                run(batch)
            rates[name].append(len(items) / (time.perf_counter() - start))
    return {name: {"p50_ms": float(np.percentile(single[name], 50)), "p99_ms": float(np.percentile(single[name], 99)),
                   "per_s": statistics.median(rates[name])} for name in runs}


def table(metric_names: Sequence[str], metrics: dict[str, Sequence[float]], files: dict[str, int],
          rows: dict[int, dict[str, dict[str, float]]], unit: str) -> list[str]:
    """One markdown row per engine: its metrics (points), its file size, and p50/p99/throughput per thread count."""
    lines = ["| engine | " + " | ".join(metric_names) + " | file | " + " | ".join(
        f"{t} thr p50 ms | {t} thr p99 ms | {t} thr {unit}/s" for t in rows) + " |",
        "|---|" + "---:|" * (len(metric_names) + 1 + 3 * len(rows))]
    for name, values in metrics.items():
        cells = " | ".join(f"{rows[t][name]['p50_ms']:.1f} | {rows[t][name]['p99_ms']:.1f} | {rows[t][name]['per_s']:,.1f}"
                           for t in rows)
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values)
                     + f" | {files[name] / 1e6:.1f} MB | {cells} |")
    return lines


def targets(metric: str, points: dict[str, float], rows: dict[int, dict[str, dict[str, float]]]) -> list[str]:
    """Issue 27's two targets, each met or missed with its figures: ORT int8 within 1 point of ORT fp32 on
    ``metric`` (``points``: engine -> percentage points), and ORT int8 at least 2x PyTorch's single-example
    throughput (1/p50) at each thread count."""
    fp32, int8 = points[FP32], points[INT8]
    drop = fp32 - int8
    lines = [f"- int8 within {MAX_INT8_DROP:g} point of fp32 ({metric}): **{'met' if drop <= MAX_INT8_DROP else 'missed'}**"
             f" (fp32 {fp32:.2f}, int8 {int8:.2f}: {int8 - fp32:+.2f} points)"]
    for threads, row in rows.items():
        ours, quantized = row[OURS]["p50_ms"], row[INT8]["p50_ms"]
        ratio = ours / quantized
        lines.append(f"- ≥ {MIN_SPEEDUP:g}x PyTorch single-example throughput, {threads} thread(s) (1/p50, ORT int8 vs "
                     f"PyTorch ours): **{'met' if ratio >= MIN_SPEEDUP else 'missed'}** ({ratio:.2f}x: p50 "
                     f"{quantized:.1f} ms vs {ours:.1f} ms)")
    return lines


def export(folder: Path, out: Path, validation_file: Path) -> dict[str, Any]:
    """``export_folder`` with int8 and the dev data; a missed int8 target is reported here, not refused."""
    from bert_tasks.export import export_folder

    return export_folder(folder, out, quantize="int8", validation_file=str(validation_file), max_drop=100.0)


def timed_rows(make_runs: Callable[[int], dict[str, Callable]], thread_counts: Sequence[int],
               score: Callable[[dict[str, Callable]], dict[str, Any]], measure_args: dict[str, Any], label: str
               ) -> tuple[dict[str, Any], dict[int, dict[str, dict[str, float]]]]:
    """Scores (on the first thread count's engines) and :func:`measure`'s figures per thread count."""
    saved = torch.get_num_threads()
    scores: dict[str, Any] = {}
    rows: dict[int, dict[str, dict[str, float]]] = {}
    try:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            runs = make_runs(threads)
            if not scores:
                scores = score(runs)
                print(json.dumps({"task": label, "scores": scores}), flush=True)
            rows[threads] = measure(runs, **measure_args)
            print(json.dumps({"task": label, "threads": threads, **rows[threads]}), flush=True)
    finally:
        torch.set_num_threads(saved)
    return scores, rows


# --------------------------------------------------------------------------- SST-2


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
    models = {OURS: load_pretrained(folder, task="glue", num_labels=2, trained_head=True).eval(),
              FP32: load_export(onnx_dir, threads=threads),
              INT8: load_export(onnx_dir, INT8_FILE, threads=threads)}

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


def accuracy(run: Callable, sentences: list[str], labels: list[int], batch_size: int) -> float:
    preds = np.concatenate([run(sentences[i:i + batch_size]).argmax(1) for i in range(0, len(sentences), batch_size)])
    return float((preds == np.asarray(labels)).mean())


def sst2_half(args, tmp: Path, threads: list[int]) -> str:
    dev = args.sst2 / "dev.tsv"
    sentences, labels = read_sst2(dev, args.sentences)
    folder = args.model or fine_tune(args.sst2, tmp / "sst2", args.train_samples, args.train_steps)
    subset = tmp / "sst2-dev.tsv"
    subset.write_text("sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in zip(sentences, labels)))
    report = export(Path(folder), tmp / "sst2-onnx", subset)
    sizes = {"model.safetensors": (Path(folder) / "model.safetensors").stat().st_size, **report["files"]}
    acc, rows = timed_rows(
        lambda t: engines(Path(folder), tmp / "sst2-onnx", t), threads,
        lambda runs: {name: accuracy(run, sentences, labels, args.batch_size) for name, run in runs.items()},
        {"items": sentences, "latency": sentences[: args.latency_sentences], "batch_size": args.batch_size,
         "rounds": args.rounds}, "sst2")
    files = {OURS: "model.safetensors", "transformers pipeline": "model.safetensors",
             FP32: "model.onnx", INT8: "model.int8.onnx"}
    points = {name: 100 * a for name, a in acc.items()}
    lines = table(["dev accuracy"], {n: [p] for n, p in points.items()}, {n: sizes[files[n]] for n in points}, rows,
                  "sent")
    notes = [
        f"SST-2 dev (`{shown(dev)}`), {len(sentences)} sentences, max_length {MAX_LENGTH}; model: "
        + (f"`{shown(args.model)}`" if args.model else
           f"bundled MiniLM fine-tuned here on {args.train_samples} SST-2 training sentences"
           + (f", {args.train_steps} steps" if args.train_steps else ", one epoch") + " (fp32)")
        + f". Export's own check: ORT fp32 max |diff| vs PyTorch {report['max_abs_diff_fp32']:.1e}; its dev accuracy "
        f"(pytorch / fp32 / int8): " + " / ".join(f"{100 * v:.2f}" for v in report["metrics"].values())
        + f"; int8 agrees with fp32 on {100 * report['int8']['dev_agreement_with_fp32']:.1f}% of dev predictions.",
        f"Latency: one sentence per call, tokenization included, {min(args.latency_sentences, len(sentences))} "
        f"sentences x {args.rounds} round(s); throughput: batches of {args.batch_size}, sorted by length.",
        "Dynamic int8 quantizes activations per batch (one scale over the batch, padding included), so its outputs "
        "depend on which sentences share a batch: the table's accuracy (batches in file order) and the export's "
        "(the evaluator's longest-first batches) can differ by an example or two.",
    ]
    return "\n".join(["### SST-2", "", *lines, "", *notes, "", "Targets:", "",
                      *targets("dev accuracy", points, rows)])


# --------------------------------------------------------------------------- SQuAD


def fine_tune_squad(train: Path, dev: Path, out: Path, args) -> Path:
    """The bundled MiniLM fine-tuned on ``train`` with squad_finetune's recorded settings (fp32, seed 42)."""
    from bert_tasks.cli import main

    argv = ["finetune", "squad", "--model", "minilm", "--train-file", str(train), "--validation-file", str(dev),
            "--output-dir", str(out), "--max-seq-length", str(args.max_seq_length), "--doc-stride",
            str(args.doc_stride), "--batch-size", "8", "--learning-rate", "3e-4", "--seed", "42",
            "--mixed-precision", "no", "--set", "train.warmup_ratio=0.1"]
    argv += ["--version-2-with-negative"] if args.squad_version == "v2" else []
    argv += ["--max-steps", str(args.squad_steps)] if args.squad_steps else ["--epochs", str(args.squad_epochs)]
    assert main(argv) == 0, "fine-tuning failed"
    return out


def qa_engines(folder: Path, onnx_dir: Path, threads: int) -> dict[str, Callable[[list[dict]], list[str]]]:
    """name -> records ({id, question, context}) -> answer texts, each engine on ``threads`` threads; all four are
    ``QuestionAnswerer`` with the same windowing and post-processing (the folder's), so only the model differs."""
    from bert_tasks import QuestionAnswerer
    from bert_tasks.checkpoint.onnx import EXPORT_FILE, INT8_FILE, load_export

    def answerer(path: Path, backend: str = "scratch", graph: str | None = None):
        qa = QuestionAnswerer(path, backend=backend)
        if graph is not None:  # QuestionAnswerer opens ORT on every core: this engine's session, on ``threads``
            qa.model = load_export(path, graph, threads=threads, head="squad").eval()
        return lambda records: [a.text for a in qa.batch(records)]

    return {OURS: answerer(folder), FP32: answerer(onnx_dir, graph=EXPORT_FILE),
            INT8: answerer(onnx_dir, graph=INT8_FILE), "transformers BertForQuestionAnswering": answerer(folder, "hf")}


def qa_scores(run: Callable, examples: Any, records: list[dict], batch_size: int, version_2: bool) -> dict[str, float]:
    """EM and F1 (points) of ``run``'s answers, by the toolkit's SQuAD metric (v2: no further threshold)."""
    from bert_tasks.tasks.squad.scoring import score_predictions

    answers = {}
    for i in range(0, len(records), batch_size):
        batch = records[i:i + batch_size]
        answers.update(zip((r["id"] for r in batch), run(batch)))
    scores = score_predictions(examples, answers, version_2=version_2)
    return {"exact_match": float(scores["exact_match"]), "f1": float(scores["f1"])}


def squad_half(args, tmp: Path, threads: list[int]) -> str:
    from bert_tasks.tasks.squad.config import trained_version_2
    from bert_tasks.tasks.squad.data import load_squad_examples

    from .squad_finetune import count_questions, make_splits

    splits = make_splits(args.squad, tmp, args.quick)
    if args.squad_model:
        args.squad_version = "v2" if trained_version_2(args.squad_model) else "v1"
    train, dev = splits[args.squad_version]
    version_2 = args.squad_version == "v2"
    folder = Path(args.squad_model or fine_tune_squad(train, dev, tmp / "squad", args))
    examples = load_squad_examples(dev, version_2=version_2)
    records = [{"id": e["id"], "question": e["question"], "context": e["context"]} for e in examples]
    report = export(folder, tmp / "squad-onnx", dev)
    sizes = {"model.safetensors": (folder / "model.safetensors").stat().st_size, **report["files"]}
    scores, rows = timed_rows(
        lambda t: qa_engines(folder, tmp / "squad-onnx", t), threads,
        lambda runs: {name: qa_scores(run, examples, records, args.batch_size, version_2) for name, run in runs.items()},
        {"items": records, "latency": records[: args.latency_questions], "batch_size": args.batch_size,
         "rounds": args.rounds, "size": lambda r: len(r["question"]) + len(r["context"])}, "squad")
    files = {OURS: "model.safetensors", "transformers BertForQuestionAnswering": "model.safetensors",
             FP32: "model.onnx", INT8: "model.int8.onnx"}
    lines = table(["dev EM", "dev F1"], {n: [s["exact_match"], s["f1"]] for n, s in scores.items()},
                  {n: sizes[files[n]] for n in scores}, rows, "q")
    label = "v2.0, unanswerable questions kept" if version_2 else "v1.1 style, answerable questions only"
    trained = (f"`{shown(args.squad_model)}`" if args.squad_model else
               f"bundled MiniLM fine-tuned here on {count_questions(train)} training questions (all articles but the "
               "last; " + (f"{args.squad_steps} steps" if args.squad_steps else f"{args.squad_epochs:g} epochs")
               + ", batch 8, lr 3e-4, warmup 0.1, fp32, seed 42)")
    agreement = report["int8"].get("dev_agreement_with_fp32")
    notes = [
        f"SQuAD dev: the last article of `{shown(args.squad)}` ({label}), {len(records)} questions; max_seq_length "
        f"{args.max_seq_length}, doc_stride {args.doc_stride} (the folder's recipe); model: {trained}. Export's own "
        f"check: ORT fp32 max |diff| vs PyTorch {report['max_abs_diff_fp32']:.1e}; its dev F1 (pytorch / fp32 / "
        "int8): " + " / ".join(f"{v:.2f}" for v in report["metrics"].values())
        + (f"; int8 agrees with fp32 on {100 * agreement:.1f}% of the windows' start/end argmax." if agreement is not
           None else "."),
        "Every engine is `bert_tasks.QuestionAnswerer` (windowing, longest-first window batches of 32, n-best search, "
        "the toolkit's SQuAD metric), so only the model differs; transformers 5 has no `pipeline(\"question-answering\")`"
        ", so its row runs transformers' `BertForQuestionAnswering` (SDPA) of the same folder behind the same code "
        "(`backend=\"hf\"`).",
        f"Latency: one question with its context per call, tokenization and post-processing included, "
        f"{min(args.latency_questions, len(records))} questions x {args.rounds} round(s); throughput: batches of "
        f"{args.batch_size} questions, sorted by question + context length.",
    ]
    return "\n".join(["### SQuAD", "", *lines, "", *notes, "", "Targets:", "", *targets("dev F1", {
        n: s["f1"] for n, s in scores.items()}, rows)])


# --------------------------------------------------------------------------- the run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks export", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma list of halves to run: sst2, squad")
    parser.add_argument("--model", type=Path, help="a fine-tuned SST-2 folder (default: fine-tune MiniLM here)")
    parser.add_argument("--sst2", type=Path, default=DATA / "SST-2")
    parser.add_argument("--train-samples", type=int, default=8000, help="SST-2 fine-tuning sentences (without --model)")
    parser.add_argument("--train-steps", type=int, help="stop SST-2 fine-tuning after N steps (default: one epoch)")
    parser.add_argument("--sentences", type=int, help="first N dev sentences for accuracy and throughput (default all)")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--squad-model", type=Path, help="a fine-tuned SQuAD folder (default: fine-tune MiniLM here)")
    parser.add_argument("--squad", type=Path, default=DATA / "squad" / "squad-v2-5articles.json",
                        help="official SQuAD 2.0 JSON; the last article is the dev set")
    parser.add_argument("--squad-version", choices=("v1", "v2"), default="v1",
                        help="v1: answerable questions only (default); v2: with the unanswerable ones")
    parser.add_argument("--squad-epochs", type=float, default=3.0)
    parser.add_argument("--squad-steps", type=int, help="stop SQuAD fine-tuning after N steps")
    parser.add_argument("--max-seq-length", type=int, default=256, help="SQuAD fine-tuning windows")
    parser.add_argument("--doc-stride", type=int, default=96)
    parser.add_argument("--latency-questions", type=int, default=124)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--quick", action="store_true",
                        help="SST-2: fine-tune 30 steps on 480 sentences, 128 dev sentences, 24 for latency; SQuAD: "
                             "40 train questions, 8 steps, 20 dev questions, 8 for latency; 1 round; prints, "
                             "records nothing")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or set(tasks) - set(TASKS):
        parser.error(f"--tasks {args.tasks}: choose from {', '.join(TASKS)}")
    if args.quick:
        args.train_samples, args.train_steps = 480, 30
        args.sentences, args.latency_sentences, args.rounds, args.no_record = args.sentences or 128, 24, 1, True
        args.squad_steps, args.latency_questions = args.squad_steps or 8, 8
    threads = [int(t) for t in args.threads.split(",")]
    load_start = os.getloadavg()[0]
    halves = {"sst2": sst2_half, "squad": squad_half}
    sections = []
    with tempfile.TemporaryDirectory(prefix="bench-export.") as tmp:
        for task in tasks:
            start = time.perf_counter()
            sections.append(halves[task](args, Path(tmp), threads))
            print(f"{task} half done in {time.perf_counter() - start:.0f} s", flush=True)
    body = "\n\n".join(sections) + (
        "\n\nThreads: torch.set_num_threads for PyTorch and transformers, intra_op_num_threads for ONNX Runtime. "
        f"Rounds alternate the engines' order. {load_note(load_start)}.")
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("export", body)


if __name__ == "__main__":
    main()

"""SQuAD fine-tuning on real data: EM/F1 before and after, time per epoch, our encoder against transformers.

From an official SQuAD 2.0 file (default: the shared 5-article sample) it makes, in a temporary
folder, train = the first articles and eval = the last one, twice: v1.1 style (answerable
questions only) and v2.0 (all). For each version it

1. saves one starting folder: the bundled MiniLM with a QA head initialised from ``--seed``, so
   both backends start from identical weights;
2. scores that folder (``eval squad``): the "before" EM/F1 of the untrained QA head;
3. fine-tunes it twice, at the same time so both see the same machine load: ``--backend scratch``
   (our encoder) and ``--backend hf`` (transformers' BertForQuestionAnswering), same seed,
   data order and hyperparameters, each on ``--threads`` torch threads;
4. reads EM/F1 (eval_results.json) and seconds per epoch (train_results.json) of each run.

Every run is the real CLI (``bert-tasks finetune squad`` / ``eval squad``) in a subprocess.

    python -m benchmarks.squad_finetune --data ../shared/data/squad/squad-v2-5articles.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA, load_note, shown

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_DATA = str(DATA / "squad" / "squad-v2-5articles.json")
BACKENDS = ("scratch", "hf")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.squad_finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA, help="official SQuAD 2.0 JSON; the last article is the eval set")
    parser.add_argument("--versions", nargs="+", choices=("v1", "v2"), default=("v1", "v2"))
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (two runs go at once)")
    parser.add_argument("--workdir", default=None, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 train questions, 2 steps, not recorded")
    parser.add_argument("--no-record", action="store_true", help="print the table but leave benchmarks/RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.no_record = True
    return args


def make_splits(source: Path, out: Path, quick: bool) -> dict[str, tuple[Path, Path]]:
    """train = every article but the last, eval = the last; v1 keeps only answerable questions."""
    doc = json.loads(source.read_text(encoding="utf-8"))
    articles = doc["data"]
    if len(articles) < 2:
        raise SystemExit(f"{source}: needs at least two articles (train and eval)")

    def answerable(article):
        paragraphs = [{**p, "qas": [q for q in p["qas"] if not q.get("is_impossible")]} for p in article["paragraphs"]]
        return {**article, "paragraphs": [p for p in paragraphs if p["qas"]]}

    def limit(article_list, n):
        if not quick:
            return article_list
        kept, total = [], 0
        for article in article_list:
            paragraphs = []
            for p in article["paragraphs"]:
                if total >= n:
                    break
                paragraphs.append({**p, "qas": p["qas"][: n - total]})
                total += len(paragraphs[-1]["qas"])
            if paragraphs:
                kept.append({**article, "paragraphs": paragraphs})
        return kept

    splits = {}
    for version in ("v1", "v2"):
        chosen = articles if version == "v2" else [answerable(a) for a in articles]
        train, dev = out / f"{version}-train.json", out / f"{version}-eval.json"
        train.write_text(json.dumps({"version": "v2.0" if version == "v2" else "1.1", "data": limit(chosen[:-1], 40)}))
        dev.write_text(json.dumps({"version": "v2.0" if version == "v2" else "1.1", "data": limit(chosen[-1:], 20)}))
        splits[version] = (train, dev)
    return splits


def count_questions(path: Path) -> int:
    doc = json.loads(path.read_text())
    return sum(len(p["qas"]) for a in doc["data"] for p in a["paragraphs"])


def starting_folder(folder: Path, seed: int) -> Path:
    """MiniLM plus a QA head drawn from ``seed``: the one start both backends fine-tune from."""
    import torch

    from bert_tasks.checkpoint import load_pretrained, load_tokenizer, save_pretrained

    torch.manual_seed(seed)
    save_pretrained(load_pretrained("minilm", task="squad"), folder, tokenizer=load_tokenizer("minilm"))
    return folder


def cli(args: list[str], log: Path, threads: int) -> subprocess.Popen:
    """``bert-tasks ARGS`` in a subprocess on ``threads`` torch threads, output to ``log``."""
    command = [sys.executable, "-c", "from bert_tasks.cli import entry_point; entry_point()", *args]
    if args[0] == "finetune":
        command += ["--set", f"train.num_threads={threads}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(log, "w") as f:
        return subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, env=env)


def wait(processes: dict[str, subprocess.Popen], logs: dict[str, Path]) -> None:
    for name, process in processes.items():
        if process.wait() != 0:
            raise SystemExit(f"{name} failed; see {logs[name]}:\n" + logs[name].read_text()[-2000:])


def run_version(args, version: str, train: Path, dev: Path, work: Path) -> dict:
    v2 = ["--version-2-with-negative"] if version == "v2" else []
    windows = ["--max-seq-length", str(args.max_seq_length), "--doc-stride", str(args.doc_stride)]
    start = starting_folder(work / f"{version}-start", args.seed)
    before_log = work / f"{version}-before.log"
    wait({"before": cli(["eval", "squad", "--model", str(start), "--validation-file", str(dev), "--output-dir",
                         str(work / f"{version}-before"), *v2, *windows], before_log, args.threads)},
         {"before": before_log})
    before = json.loads((work / f"{version}-before" / "eval_results.json").read_text())

    processes, logs = {}, {}
    for backend in BACKENDS:
        logs[backend] = work / f"{version}-{backend}.log"
        steps = ["--max-steps", "2"] if args.quick else ["--epochs", str(args.epochs)]
        processes[backend] = cli([
            "finetune", "squad", "--model", str(start), "--backend", backend, "--train-file", str(train),
            "--validation-file", str(dev), "--output-dir", str(work / f"{version}-{backend}"), "--overwrite-output-dir",
            *v2, *windows, *steps, "--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate),
            "--seed", str(args.seed), "--logging-steps", "10", "--set", f"train.warmup_ratio={args.warmup_ratio}",
        ], logs[backend], args.threads)
        print(f"   started {version} {backend} (log {logs[backend]})", flush=True)
    wait(processes, logs)
    after = {}
    for backend in BACKENDS:
        out = work / f"{version}-{backend}"
        results = json.loads((out / "eval_results.json").read_text())
        train_results = json.loads((out / "train_results.json").read_text())
        after[backend] = {**results, "seconds_per_epoch": train_results["seconds_per_epoch"] or train_results["train_seconds"],
                          "train_seconds": train_results["train_seconds"], "steps": train_results["global_step"],
                          "train_tokens": train_results["train_tokens"]}
    return {"before": before, "after": after, "train_questions": count_questions(train), "eval_questions": count_questions(dev)}


def render(args, results: dict, loads: tuple) -> str:
    rows = ["| data | backend | EM before | F1 before | EM after | F1 after | s / epoch | train s | steps |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for version, r in results.items():
        label = "v1.1 (answerable only)" if version == "v1" else "v2.0 (with unanswerable)"
        for backend in BACKENDS:
            a = r["after"][backend]
            rows.append(f"| {label}: {r['train_questions']} train / {r['eval_questions']} eval questions | {backend} | "
                        f"{r['before']['exact_match']:.2f} | {r['before']['f1']:.2f} | {a['exact_match']:.2f} | {a['f1']:.2f} | "
                        f"{a['seconds_per_epoch']:.0f} | {a['train_seconds']:.0f} | {a['steps']} |")
    extra = []
    for version, r in results.items():
        if version == "v2":
            for backend in BACKENDS:
                a = r["after"][backend]
                extra.append(f"v2.0 {backend}: HasAns F1 {a.get('HasAns_f1', float('nan')):.2f}, "
                             f"NoAns F1 {a.get('NoAns_f1', float('nan')):.2f}, best F1 {a['best_f1']:.2f} "
                             f"at threshold {a['best_f1_thresh']:.3f}.")
    return "\n".join([
        f"Data: `{shown(args.data)}`; train = all articles but the last, eval = the last article. Model: the bundled "
        f"MiniLM-L6-H384 with one seeded QA head (seed {args.seed}) shared by both backends; {args.epochs:g} epochs, "
        f"lr {args.learning_rate:g} (linear, warmup {args.warmup_ratio:g}), batch {args.batch_size}, max_seq_length "
        f"{args.max_seq_length}, doc_stride {args.doc_stride}, weight decay 0, {args.threads} torch thread(s) per run. "
        "'Before' = the untrained QA head on the same eval set. scratch and hf trained at the same time, "
        "so they saw the same machine load.",
        "",
        *rows,
        "",
        *extra,
        "",
        f"{load_note(*loads)}; the scratch/hf ratio within a row pair is the robust figure.",
    ])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory(prefix="squad-bench-") as tmp:
        work = Path(args.workdir) if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        splits = make_splits(Path(args.data), work, args.quick)
        for version in args.versions:
            print(f"== {version}", flush=True)
            t0 = time.perf_counter()
            results[version] = run_version(args, version, *splits[version], work)
            print(f"   {version} done in {time.perf_counter() - t0:.0f} s: " + json.dumps(
                {b: {k: round(v, 2) for k, v in results[version]["after"][b].items() if k in ("exact_match", "f1")}
                 for b in BACKENDS}), flush=True)
    markdown = render(args, results, (load_start, os.getloadavg()[0]))
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("squad_finetune", markdown)


if __name__ == "__main__":
    main()

"""The README's main command over seeds: EM/F1 before and after fine-tuning and the wall time, each seed its own command.

For every seed it runs, in a fresh process as a user would,

    bert-tasks finetune squad --recipe quickstart --output-dir DIR --overwrite-output-dir --set train.seed=N

and reads the run folder: the scores before and after fine-tuning (``train_log.jsonl``), the steps, the
threads and precision the run chose (its start-up lines), and the command's wall time from start to exit
(start-up, model load, data generation, both evaluations and saving included).

    python -m benchmarks quickstart_seeds                       # seeds 1-5, the thread default
    python -m benchmarks quickstart_seeds -- --threads 1 --no-record
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks._record import load_note

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks quickstart_seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--threads", type=int, default=None, help="train.num_threads (default: the run's own choice)")
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="extra --set key=value")
    parser.add_argument("--quick", action="store_true", help="one seed, 16 steps; not recorded")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.no_record, args.overrides = "1", True, [*args.overrides, "train.max_steps=16"]
    return args


def run(args, seed: int, out: Path) -> dict:
    command = [sys.executable, "-m", "bert_tasks", "finetune", "squad", "--recipe", "quickstart", "--output-dir",
               str(out), "--overwrite-output-dir", "--set", f"train.seed={seed}"]
    if args.threads:
        command += ["--set", f"train.num_threads={args.threads}"]
    for item in args.overrides:
        command += ["--set", item]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"seed {seed} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    evals = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if '"eval"' in line]
    before = next((e for e in evals if e.get("before_training")), {})
    after = json.loads((out / "eval_results.json").read_text())
    threads = re.search(r"^threads: (.*)$", done.stderr, re.M)
    precision = yaml.safe_load((out / "recipe.yaml").read_text())["train"]["mixed_precision"]
    return {"seed": seed, "seconds": seconds, "em_before": before.get("exact_match"), "f1_before": before.get("f1"),
            "em": after["exact_match"], "f1": after["f1"], "total": after["total"],
            "steps": json.loads((out / "train_results.json").read_text())["global_step"],
            "threads": threads.group(1) if threads else "?", "precision": precision}


def render(args, runs: list[dict], loads: tuple) -> str:
    rows = ["| seed | EM before | F1 before | EM after | F1 after | steps | wall time (s) |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in runs:
        rows.append(f"| {r['seed']} | {r['em_before']:.1f} | {r['f1_before']:.2f} | {r['em']:.1f} | {r['f1']:.2f} | "
                    f"{r['steps']} | {r['seconds']:.1f} |")
    f1 = [r["f1"] for r in runs]
    seconds = [r["seconds"] for r in runs]
    extra = f" with {', '.join(args.overrides)}" if args.overrides else ""
    return "\n".join([
        f"The README's main command{extra}, once per seed, each a fresh process; scored on the {runs[0]['total']} "
        f"invented validation questions. Threads: {runs[0]['threads']}. Precision: {runs[0]['precision']}.",
        "", *rows, "",
        f"F1 after: median {statistics.median(f1):.2f}, min {min(f1):.2f}, max {max(f1):.2f}; "
        f"wall time: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s. {load_note(*loads)}.",
    ])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="quickstart-seeds-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            result = run(args, seed, Path(tmp) / f"seed-{seed}")
            print(f"seed {seed}: F1 {result['f1_before']:.2f} -> {result['f1']:.2f} in {result['seconds']:.1f} s", flush=True)
            runs.append(result)
    markdown = render(args, runs, (load_start, os.getloadavg()[0]))
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        name = "quickstart_seeds" + (f"_{args.threads}_thread" if args.threads else "")
        record(name, markdown)


if __name__ == "__main__":
    main()

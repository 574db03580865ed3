"""Does our masked-LM pretraining help? Pretrain on a text file for a time budget, then fine-tune on SST-2 against random init.

1. ``bert-tasks pretrain mlm`` a fresh preset (default ``tiny``) on one text file for ``--budget-minutes``
   of wall time, holding out ``--validation-split`` of the paragraphs: held-out masked-token
   accuracy, perplexity, steps and tokens/s. ``max_steps`` (the end of the linear decay) is set from a
   short throughput probe, so the learning rate reaches ~0 as the budget runs out, as Cramming does.
2. A random-init twin: the same architecture and tokenizer, untrained weights, saved the same way.
3. ``bert-tasks finetune glue --task sst2`` on both with identical settings and seed: dev accuracy.

    python -m benchmarks.mlm_pretrain_finetune --corpus ../shared/data/text/wikitext2-valid.txt \\
        --sst2 ../shared/data/SST-2 --budget-minutes 10
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PROBE_STEPS = 20
SEED = 42


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mlm_pretrain_finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(DATA / "text" / "wikitext2-valid.txt"), help="plain text, one paragraph a line")
    parser.add_argument("--sst2", default=str(DATA / "SST-2"), help="SST-2 folder with train.tsv and dev.tsv")
    parser.add_argument("--preset", default="tiny", help="tiny or mini fit a 10-minute CPU budget")
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--validation-split", type=float, default=0.05)
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--finetune-epochs", type=float, default=2.0)
    parser.add_argument("--finetune-lr", type=float, default=1e-4, help="small BERTs fine-tune best near 1e-4 (Turc et al.)")
    parser.add_argument("--finetune-max-length", type=int, default=64)
    # On a 2-core machine that other jobs keep busy, one intra-op thread ran a tiny-preset step
    # ~8x faster than two (0.6 s vs 5 s): two spinning OpenMP threads wait on each other.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    parser.add_argument("--workdir", default=None, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 0.5-minute budget, 300 SST-2 sentences, not recorded")
    parser.add_argument("--no-record", action="store_true", help="print the table but leave benchmarks/RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget_minutes, args.no_record = 0.5, True
    return args


def cli(*argv) -> None:
    from bert_tasks.cli import main

    code = main([str(a) for a in argv])
    if code:
        raise SystemExit(f"bert-tasks {' '.join(map(str, argv[:2]))} failed with exit code {code}")


def pretrain_args(args, out: Path, max_steps: int, budget: float | None) -> list:
    extra = ["--set", f"train.num_threads={args.threads}"] if args.threads else []
    return [
        "pretrain", "mlm", "--train-file", args.corpus, "--validation-split", args.validation_split,
        "--preset", args.preset, "--vocab-size", args.vocab_size, "--max-seq-length", args.max_seq_length,
        "--batch-size", args.batch_size, "--learning-rate", args.learning_rate, "--lr-scheduler", "linear",
        "--set", f"train.warmup_steps={max(10, max_steps // 16)}", "--max-steps", max_steps,
        "--seed", SEED, "--logging-steps", 10, "--eval-steps", max(50, max_steps // 5),
        "--set", "data.max_eval_samples=500", "--output-dir", out, "--overwrite-output-dir",
        *(["--budget-minutes", budget] if budget else []), *extra,
    ]


def pretrain(args, workdir: Path) -> dict:
    """A throughput probe sizes the schedule to the budget; then the real run."""
    probe = workdir / "probe"
    cli(*pretrain_args(args, probe, PROBE_STEPS, None))
    probe_result = json.loads((probe / "train_results.json").read_text())
    seconds_per_step = probe_result["train_seconds"] / probe_result["global_step"]
    # aim the decay's end inside the budget: evaluations and other jobs' load spikes take their share
    max_steps = max(PROBE_STEPS, int(0.8 * args.budget_minutes * 60 / seconds_per_step))
    out = workdir / "pretrained"
    start = time.perf_counter()
    cli(*pretrain_args(args, out, max_steps, args.budget_minutes))
    wall = time.perf_counter() - start
    train = json.loads((out / "train_results.json").read_text())
    evals = json.loads((out / "eval_results.json").read_text())
    return {"dir": out, "planned_steps": max_steps, "probe_seconds_per_step": seconds_per_step, "wall": wall,
            "train": train, "eval": evals}


def random_init_twin(pretrained: Path, out: Path) -> Path:
    """The pretrained folder's architecture and tokenizer with freshly initialised weights."""
    import torch

    from bert_tasks.checkpoint import build_config, load_tokenizer, read_config, save_pretrained
    from bert_tasks.model.heads import HEADS

    torch.manual_seed(SEED)
    model = HEADS["mlm"].model_class(build_config(read_config(pretrained), None))
    save_pretrained(model, out, tokenizer=load_tokenizer(pretrained))
    return out


def finetune(args, model_dir: Path, out: Path) -> dict:
    extra = ["--set", f"train.num_threads={args.threads}"] if args.threads else []
    quick = ["--max-train-samples", 300, "--max-eval-samples", 300] if args.quick else []
    cli("finetune", "glue", "--task", "sst2", "--model", model_dir, "--data-dir", args.sst2, "--output-dir", out,
        "--overwrite-output-dir", "--epochs", args.finetune_epochs, "--learning-rate", args.finetune_lr,
        "--batch-size", 32, "--max-seq-length", args.finetune_max_length, "--seed", SEED,
        "--set", "train.warmup_ratio=0.1", "--logging-steps", 50, *quick, *extra)
    metrics = json.loads((out / "eval_results.json").read_text())
    train = json.loads((out / "train_results.json").read_text())
    return {"accuracy": metrics["accuracy"], "steps": train["global_step"], "seconds": train["train_seconds"]}


def render(args, pre: dict, sst2: dict) -> str:
    train, evals = pre["train"], pre["eval"]
    config = json.loads((pre["dir"] / "config.json").read_text())
    tokens_per_second = train["train_tokens"] / train["train_seconds"]
    corpus_lines = sum(1 for line in open(args.corpus, encoding="utf-8") if line.strip())
    return f"""
Pretraining: a fresh `{args.preset}` preset ({config['num_hidden_layers']} layers, hidden {config['hidden_size']}, \
WordPiece vocabulary {config['vocab_size']} trained on the corpus), packed {args.max_seq_length}-token sequences, \
15% masking (80/10/10), batch {args.batch_size}, AdamW lr {args.learning_rate} with warmup and linear decay to the \
probe-sized `max_steps`, `--budget-minutes {args.budget_minutes}`, {args.threads or 'default'} torch thread(s), \
seed {SEED}. Corpus `{Path(args.corpus).name}` ({corpus_lines} non-blank lines), the first \
{args.validation_split:.0%} of them held out. The machine was shared with other jobs, so throughput is a floor.

| pretraining | value |
| --- | --- |
| optimizer steps in the budget (planned) | {train['global_step']} ({pre['planned_steps']}) |
| stopped by the budget | {train['stopped_by_budget']} |
| training time | {train['train_seconds']:.0f} s |
| tokens seen (epochs) | {train['train_tokens']:,} ({train['epochs_completed']:.1f}) |
| tokens/s | {tokens_per_second:,.0f} |
| held-out masked-token accuracy | {evals['masked_accuracy']:.4f} |
| held-out perplexity | {evals['perplexity']:.2f} |
| held-out MLM loss | {evals['eval_loss']:.4f} ({evals['eval_tokens']} predicted tokens) |

Fine-tuning on SST-2 (`finetune glue --task sst2`): the same architecture, tokenizer, data order and seed; \
{args.finetune_epochs:g} epochs, batch 32, lr {args.finetune_lr} with 10% warmup, max length {args.finetune_max_length}; \
dev accuracy on the full dev set.

| initialisation | SST-2 dev accuracy | steps | train time |
| --- | --- | --- | --- |
| MLM-pretrained above | {sst2['pretrained']['accuracy']:.4f} | {sst2['pretrained']['steps']} | {sst2['pretrained']['seconds']:.0f} s |
| random (untrained twin) | {sst2['random']['accuracy']:.4f} | {sst2['random']['steps']} | {sst2['random']['seconds']:.0f} s |
"""


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mlm-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        pre = pretrain(args, workdir)
        twin = random_init_twin(pre["dir"], workdir / "random-init")
        sst2 = {"pretrained": finetune(args, pre["dir"], workdir / "sst2-pretrained"),
                "random": finetune(args, twin, workdir / "sst2-random")}
        body = render(args, pre, sst2)
    print(body)
    if not args.no_record:
        from benchmarks._record import record

        record("mlm_pretrain_then_sst2", body)


if __name__ == "__main__":
    main()

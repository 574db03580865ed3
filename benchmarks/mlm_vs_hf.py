"""Masked-LM pretraining against the HF recipe: same config, tokenizer, data, steps and schedule, scored on the same held-out text.

From one plain-text corpus (default: ``../shared/data/text/wikitext2-valid.txt``) it writes, in a
temporary folder, ``train.txt`` (the leading paragraphs) and ``heldout.txt`` (the trailing ones, at
least ``--heldout-words`` words), then for each seed:

(a) ours: ``bert-tasks pretrain mlm --recipe RECIPE --train-file train.txt --validation-file heldout.txt``
    (the real CLI in a subprocess), a fresh model of the recipe's preset;
(b) the HF recipe (run_mlm.py in miniature, in a subprocess): ``BertForMaskedLM`` built from (a)'s
    ``config.json`` with fresh weights, the tokenizer (a) trained, ``group_texts`` into blocks of the
    same length, ``DataCollatorForLanguageModeling`` at the same masking rate and the ``Trainer`` with the
    recipe's batch size, steps, peak rate, warmup, decay, weight decay and clipping.

Both saved models are then scored here by one neutral scorer (plain transformers, no bert-tasks code):
the held-out text packed two ways (BERT style, ``[CLS]`` + text + ``[SEP]`` per sequence as ours packs;
run_mlm style, every line ``[CLS] line [SEP]`` and the stream cut into blocks) and masked once with a
fixed seed (15%, 80/10/10), so both models predict exactly the same tokens. Accuracy is over the masked
tokens; perplexity is exp(mean cross-entropy) over them. Wall time is each subprocess from start to saved
model (ours includes its held-out evaluations and run folder).

    python -m benchmarks mlm_vs_hf                      # 3 seeds of mlm-tiny, about 30 minutes on 2 CPU cores
    python -m benchmarks mlm_vs_hf -- --recipe mlm-tiny --seeds 1,2,3 --set train.learning_rate=2e-3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA, load_note, shown

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SCORE_SEED = 20261201  # the held-out masks: one draw, shared by every model


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks mlm_vs_hf", description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DATA / "text" / "wikitext2-valid.txt",
                        help="plain text, one paragraph a line")
    parser.add_argument("--recipe", default="mlm-tiny")
    parser.add_argument("--set", action="append", default=[], dest="overrides",
                        help="a recipe override for both sides, e.g. train.learning_rate=2e-3 (repeatable)")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--heldout-words", type=int, default=20_000, help="hold out the trailing paragraphs, at least this many words")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every run (default: every core)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 30 steps, a small corpus; not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--hf-run", help=argparse.SUPPRESS)  # internal: train the HF side in this process
    args = parser.parse_args(argv)
    # like for like: the HF side evaluates only at the end and has no time budget, so neither has ours
    args.overrides = ["train.eval_steps=null", "train.budget_minutes=null", *args.overrides]
    if args.quick:
        args.seeds, args.no_record = "1", True
        args.overrides = [*args.overrides, "train.max_steps=30"]
    return args


# --------------------------------------------------------------------------- the corpus


def split_corpus(corpus: Path, work: Path, heldout_words: int, quick: bool) -> dict:
    """train.txt = the leading paragraphs, heldout.txt = the trailing ones (at least ``heldout_words`` words)."""
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    if quick:
        lines = lines[: len(lines) // 8]
        heldout_words = min(heldout_words, 4000)
    words, cut = 0, len(lines)
    while cut > 0 and words < heldout_words:
        cut -= 1
        words += len(lines[cut].split())
    (work / "train.txt").write_text("\n".join(lines[:cut]) + "\n", encoding="utf-8")
    (work / "heldout.txt").write_text("\n".join(lines[cut:]) + "\n", encoding="utf-8")
    return {"train_lines": cut, "train_words": sum(len(line.split()) for line in lines[:cut]),
            "heldout_lines": len(lines) - cut, "heldout_words": words}


# --------------------------------------------------------------------------- the two trainers


def run_ours(args, work: Path, seed: int, tokenizer: Path | None) -> dict:
    out = work / f"ours-{seed}"
    command = [sys.executable, "-m", "bert_tasks", "pretrain", "mlm", "--recipe", args.recipe,
               "--train-file", str(work / "train.txt"), "--validation-file", str(work / "heldout.txt"),
               "--output-dir", str(out), "--overwrite-output-dir", "--set", f"train.seed={seed}"]
    for item in args.overrides:
        command += ["--set", item]
    if tokenizer is not None:
        command += ["--set", f"data.tokenizer={tokenizer}"]
    if args.threads:
        command += ["--set", f"train.num_threads={args.threads}"]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    own = json.loads((out / "eval_results.json").read_text())
    trained = json.loads((out / "train_results.json").read_text())
    return {"dir": out, "seconds": seconds, "own_eval": own, "steps": trained.get("global_step")}


def resolved_recipe(args, work: Path) -> dict:
    """The recipe ours ran, as it recorded it (so the HF side copies what actually ran, not what we think ran)."""
    import yaml

    return yaml.safe_load((work / "ours-1" / "recipe.yaml").read_text()) if (work / "ours-1").is_dir() else {}


def run_hf(args, work: Path, seed: int, ours_dir: Path) -> dict:
    out = work / f"hf-{seed}"
    command = [sys.executable, "-m", "benchmarks.mlm_vs_hf", "--hf-run", f"{seed},{ours_dir},{out}"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return {"dir": out, "seconds": time.perf_counter() - start}


def hf_train(seed: int, ours_dir: Path, out: Path, threads: int | None) -> None:
    """run_mlm.py's recipe with ours' resolved settings: tokenize lines, group_texts, the masking collator, Trainer."""
    import datasets
    import torch
    import yaml
    from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments, set_seed)

    if threads:
        torch.set_num_threads(threads)
    recipe = yaml.safe_load((ours_dir / "recipe.yaml").read_text())
    data, train = recipe["data"], recipe["train"]
    block = data["max_seq_length"]
    tokenizer = AutoTokenizer.from_pretrained(ours_dir)
    set_seed(seed)
    model = BertForMaskedLM(BertConfig.from_pretrained(ours_dir))  # fresh weights, ours' architecture
    raw = datasets.load_dataset("text", data_files={"train": str(ours_dir.parent / "train.txt")})["train"]
    raw = raw.filter(lambda row: bool(row["text"].strip()))
    tokenized = raw.map(lambda batch: tokenizer(batch["text"], return_special_tokens_mask=True), batched=True,
                        remove_columns=["text"])

    def group_texts(batch):
        joined = {k: sum(batch[k], []) for k in batch}
        total = (len(joined["input_ids"]) // block) * block
        return {k: [v[i: i + block] for i in range(0, total, block)] for k, v in joined.items()}

    blocks = tokenized.map(group_texts, batched=True)
    steps = train["max_steps"]
    warmup = train.get("warmup_steps") or math.ceil(train.get("warmup_ratio", 0.0) * steps)
    training_args = TrainingArguments(
        output_dir=str(out / "trainer"), max_steps=steps, per_device_train_batch_size=train["batch_size"],
        learning_rate=train["learning_rate"], warmup_steps=warmup, lr_scheduler_type=train["lr_scheduler"],
        weight_decay=train["weight_decay"], max_grad_norm=train["max_grad_norm"], seed=seed, save_strategy="no",
        eval_strategy="no", logging_steps=max(1, steps // 10), report_to="none", use_cpu=True, disable_tqdm=True,
        dataloader_drop_last=True,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=data["mlm_probability"])
    Trainer(model=model, args=training_args, train_dataset=blocks, data_collator=collator).train()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


# --------------------------------------------------------------------------- the neutral scorer


def heldout_batches(tokenizer, heldout: Path, block: int, style: str, mlm_probability: float) -> list[dict]:
    """The held-out text as fixed masked batches: ``bert`` (our packing) or ``run_mlm`` (group_texts)."""
    import torch
    from transformers import DataCollatorForLanguageModeling

    lines = [line for line in heldout.read_text(encoding="utf-8").splitlines() if line.strip()]
    if style == "bert":
        stream: list[int] = []
        for line in lines:
            ids = tokenizer(line, add_special_tokens=False)["input_ids"]
            if stream and ids:
                stream.append(tokenizer.sep_token_id)
            stream += ids
        width = block - 2
        sequences = [[tokenizer.cls_token_id, *stream[i: i + width], tokenizer.sep_token_id]
                     for i in range(0, len(stream) - width + 1, width)]
    else:
        stream = [t for line in lines for t in tokenizer(line)["input_ids"]]
        sequences = [stream[i: i + block] for i in range(0, len(stream) - block + 1, block)]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mlm_probability, seed=SCORE_SEED)
    return [collator([{"input_ids": s} for s in sequences[i: i + 64]]) for i in range(0, len(sequences), 64)]


def score(model_dir: Path, batches: list[dict]) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(model_dir).eval()
    correct = total = 0
    loss_sum = 0.0
    with torch.inference_mode():
        for batch in batches:
            logits = model(input_ids=batch["input_ids"], attention_mask=torch.ones_like(batch["input_ids"])).logits
            keep = batch["labels"] != -100
            picked, labels = logits[keep].float(), batch["labels"][keep]
            correct += int((picked.argmax(-1) == labels).sum())
            loss_sum += float(F.cross_entropy(picked, labels, reduction="sum"))
            total += int(keep.sum())
    return {"accuracy": correct / total, "perplexity": math.exp(loss_sum / total), "masked_tokens": total}


# --------------------------------------------------------------------------- the table


def stats(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:.4f} ({min(values):.4f}-{max(values):.4f})" if len(values) > 1 else f"{med:.4f}"


def render(args, split: dict, runs: dict, seeds: list[int], recipe: dict, loads: tuple) -> str:
    data, train = recipe.get("data", {}), recipe.get("train", {})
    rows = ["| run | held-out packing | masked accuracy, median (min-max) | perplexity, median (min-max) "
            "| median wall time (s) | speed-up |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    hf_seconds = statistics.median(r["seconds"] for r in runs["hf"])
    for style in ("bert", "run_mlm"):
        for side, label in (("ours", "(a) bert-tasks"), ("hf", "(b) HF BertForMaskedLM + Trainer")):
            acc = [r["scores"][style]["accuracy"] for r in runs[side]]
            ppl = [r["scores"][style]["perplexity"] for r in runs[side]]
            seconds = statistics.median(r["seconds"] for r in runs[side])
            speed = f"{hf_seconds / seconds:.2f}x" if side == "ours" else "-"
            med, lo, hi = statistics.median(ppl), min(ppl), max(ppl)
            rows.append(f"| {label} | {style} | {stats(acc)} | {med:.1f} ({lo:.1f}-{hi:.1f}) | {seconds:.1f} | {speed} |")
    tokens = {style: runs["ours"][0]["scores"][style]["masked_tokens"] for style in ("bert", "run_mlm")}
    own = [r["own_eval"].get("masked_accuracy") for r in runs["ours"]]
    model = recipe.get("model", {})
    lines = [
        f"Corpus: `{shown(args.corpus)}`; train = its first {split['train_lines']:,} paragraphs "
        f"({split['train_words']:,} words), held out = the last {split['heldout_lines']:,} ({split['heldout_words']:,} words). "
        f"Recipe `{args.recipe}` with {', '.join(args.overrides)} (ours evaluates once, at the end, as the HF side does): a fresh "
        f"`{model.get('preset')}` BERT, WordPiece {data.get('vocab_size')} trained by (a) and shared by (b), "
        f"{data.get('max_seq_length')}-token sequences, {train.get('max_steps')} steps of {train.get('batch_size')}, "
        f"peak lr {train.get('learning_rate')} ({train.get('lr_scheduler')}, warmup ratio {train.get('warmup_ratio')}), "
        f"weight decay {train.get('weight_decay')}, max grad norm {train.get('max_grad_norm')}; seeds {', '.join(map(str, seeds))}.",
        "",
        f"Held-out scoring: {tokens['bert']:,} masked tokens (BERT packing) and {tokens['run_mlm']:,} (run_mlm packing), "
        "the same masks for every model, scored by plain transformers. Ours' own evaluation of the same held-out file "
        f"(its own masks) gave accuracy {', '.join(f'{a:.4f}' for a in own if a is not None)}.",
        "", *rows, "", f"{load_note(*loads)}; every run in its own process, one after another.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.hf_run:
        seed, ours_dir, out = args.hf_run.split(",", 2)
        hf_train(int(seed), Path(ours_dir), Path(out), args.threads)
        return
    import torch
    from transformers import AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    load_start = os.getloadavg()[0]
    runs: dict = {"ours": [], "hf": []}
    with tempfile.TemporaryDirectory(prefix="mlm-vs-hf-") as tmp:
        work = Path(tmp)
        split = split_corpus(args.corpus, work, args.heldout_words, args.quick)
        tokenizer_dir = None
        for seed in seeds:
            print(f"== seed {seed}: ours", flush=True)
            ours = run_ours(args, work, seed, tokenizer_dir)
            tokenizer_dir = tokenizer_dir or ours["dir"]  # the first run trains the vocabulary; every run reuses it
            print(f"   {ours['seconds']:.1f} s; its own eval {ours['own_eval']}", flush=True)
            print(f"== seed {seed}: HF Trainer", flush=True)
            hf = run_hf(args, work, seed, ours["dir"])
            print(f"   {hf['seconds']:.1f} s", flush=True)
            runs["ours"].append(ours)
            runs["hf"].append(hf)
        recipe = resolved_recipe(args, work)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        block, rate = recipe["data"]["max_seq_length"], recipe["data"]["mlm_probability"]
        batches = {style: heldout_batches(tokenizer, work / "heldout.txt", block, style, rate) for style in ("bert", "run_mlm")}
        for side in runs.values():
            for run in side:
                run["scores"] = {style: score(run["dir"], b) for style, b in batches.items()}
                run["dir"] = str(run["dir"].name)
        markdown = render(args, split, runs, seeds, recipe, (load_start, os.getloadavg()[0]))
    print(markdown)
    raw = {side: [{"seed": s, **r} for s, r in zip(seeds, rs)] for side, rs in runs.items()}
    print(json.dumps(raw))
    if not args.no_record:
        from benchmarks._record import record

        record("mlm_vs_hf", markdown + "\n\n" + every_run(raw))


def every_run(raw: dict) -> str:
    """One row per run: the seed-level figures behind the medians."""
    rows = ["Every run (held-out masked accuracy / perplexity in each packing):", "",
            "| run | seed | bert packing | run_mlm packing | wall (s) |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, runs in raw.items():
        for r in runs:
            bert, packed = r["scores"]["bert"], r["scores"]["run_mlm"]
            rows.append(f"| {name} | {r['seed']} | {bert['accuracy']:.4f} / {bert['perplexity']:.1f} | "
                        f"{packed['accuracy']:.4f} / {packed['perplexity']:.1f} | {r['seconds']:.1f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()

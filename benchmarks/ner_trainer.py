"""Token classification, side by side: `finetune ner` against the transformers Trainer on a real-text span task.

No annotated NER corpus can be downloaded here, so the task is built from WikiText-2 (``--data/text/
wikitext2-valid.txt``) by one rule, on real text:

1. a paragraph is a non-blank line that is not a heading (``= Title =``); articles start at ``= Title =`` headings;
2. a sentence ends after a token ``.``, ``!`` or ``?`` (WikiText's tokens are space-separated); sentences of fewer
   than 3 or more than ``MAX_WORDS`` words are left out (so neither side truncates: every word is scored);
3. a word is *capitalised* when its first character is an upper-case letter and it is not ``I``; a maximal run of
   capitalised words is one ``NAME`` span (``B-NAME``, then ``I-NAME``), unless the run starts the sentence (a
   capital there says nothing), in which case its words are ``O``; everything else is ``O``;
4. every word is lower-cased, so the model must find names from context, not from case.

The first 70% of the articles give the training sentences (the first ``--train-samples`` of them), the rest the dev
sentences (the first ``--dev-samples``).

(a) ``bert-tasks finetune ner`` (JSON Lines tokens/tags, the run template), fp32;
(b) the transformers ``Trainer`` with ``AutoModelForTokenClassification`` and ``DataCollatorForTokenClassification``,
    the first sub-token of each word labelled, the rest -100 (run_ner.py), fp32; the same hyperparameters.

Both are scored by one scorer, the bundled ``seqeval`` metric, on word-level tags (the Trainer's from each word's
first sub-token). Both sides fp32: the ratio is at equal precision.

    python -m benchmarks ner_trainer              # the recorded run: 3 seeds
    python -m benchmarks ner_trainer --quick      # 1 seed, 64 sentences, not recorded
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._record import DATA, load_note, shown
from benchmarks._side_by_side import start, cell, every_run, interleaved, wall

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LR, BATCH, EVAL_BATCH, WARMUP, MAX_LEN, WEIGHT_DECAY, EPOCHS, MAX_WORDS = 1e-4, 32, 128, 0.1, 128, 0.0, 2.0, 50
TRAIN_ARTICLES = 0.7
CONFIGS = {"ours": "(a) bert-tasks finetune ner, fp32",
           "trainer": "(b) transformers Trainer, DataCollatorForTokenClassification, fp32"}
MODULE = "benchmarks.ner_trainer"
TAGS = ("O", "B-NAME", "I-NAME")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding text/wikitext2-valid.txt")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--dev-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="1 seed, 64 sentences, 1 epoch, not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.no_record, args.train_samples, args.dev_samples = "1", True, 64, 64
    args.epochs = 1.0 if args.quick else EPOCHS
    return args


def tag_sentence(words: list[str]) -> list[str]:
    """Rule 3: capitalised runs are NAME spans, except a run that starts the sentence."""
    capital = [w[:1].isupper() and w != "I" for w in words]
    tags, i = ["O"] * len(words), 0
    while i < len(words):
        if not capital[i]:
            i += 1
            continue
        end = i
        while end < len(words) and capital[end]:
            end += 1
        if i > 0:
            tags[i:end] = ["B-NAME"] + ["I-NAME"] * (end - i - 1)
        i = end
    return tags


def articles(path: Path) -> list[list[list[str]]]:
    """Rules 1-2: the articles, each a list of sentences (lists of words)."""
    found: list[list[list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text:
            continue
        if text.startswith("= ") and text.endswith(" ="):
            if not text.startswith("= = "):  # a top-level heading starts an article; "= = Section = =" does not
                found.append([])
            continue
        if not found:
            found.append([])
        sentence: list[str] = []
        for word in text.split():
            sentence.append(word)
            if word in (".", "!", "?"):
                found[-1].append(sentence)
                sentence = []
        if sentence:
            found[-1].append(sentence)
    return found


def write_task(data: Path, work: Path, train_samples: int, dev_samples: int) -> dict:
    docs = articles(data / "text" / "wikitext2-valid.txt")
    cut = math.ceil(TRAIN_ARTICLES * len(docs))
    parts = {"train": (docs[:cut], train_samples), "dev": (docs[cut:], dev_samples)}
    counts = {}
    for split, (chosen, limit) in parts.items():
        sentences = [s for doc in chosen for s in doc if 3 <= len(s) <= MAX_WORDS][:limit]
        rows = [{"tokens": [w.lower() for w in s], "tags": tag_sentence(s)} for s in sentences]
        (work / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        counts[split] = {"sentences": len(rows), "words": sum(len(r["tokens"]) for r in rows),
                         "names": sum(r["tags"].count("B-NAME") for r in rows)}
    counts["articles"] = {"train": cut, "dev": len(docs) - cut}
    return counts


def warmup_steps(n_train: int, epochs: float) -> int:
    return math.ceil(WARMUP * math.ceil(epochs * math.ceil(n_train / BATCH)))


def score(predictions: list[list[str]], references: list[list[str]]) -> dict:
    from bert_tasks.metrics import load_metric

    found = load_metric("seqeval").compute(predictions=predictions, references=references)
    return {"f1": found["overall_f1"], "precision": found["overall_precision"], "recall": found["overall_recall"]}


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_ours(args, seed: int, work: Path) -> dict:
    from bert_tasks.runner import train
    from bert_tasks.tasks import resolve_recipe

    out = work / f"ours-{seed}"
    n_train = len(read_rows(work / "train.jsonl"))
    recipe = resolve_recipe(None, task="ner", flags={
        "data.train_file": str(work / "train.jsonl"), "data.validation_file": str(work / "dev.jsonl"),
        "data.max_seq_length": MAX_LEN, "data.labels": ",".join(TAGS), "train.epochs": args.epochs,
        "train.seed": seed, "train.learning_rate": LR, "train.warmup_steps": warmup_steps(n_train, args.epochs),
        "train.batch_size": BATCH, "train.eval_batch_size": EVAL_BATCH, "train.weight_decay": WEIGHT_DECAY,
        "train.num_threads": args.threads, "train.mixed_precision": "no", "train.logging_steps": 10_000,
        "output_dir": str(out),
    })
    start = time.perf_counter()
    train(recipe)
    seconds = time.perf_counter() - start
    rows = read_rows(out / "eval_predictions.jsonl")
    metrics = score([r["predictions"] for r in rows], [r["labels"] for r in rows])
    trained = json.loads((out / "train_results.json").read_text())
    return {"metrics": metrics, "seconds": seconds, "train_seconds": trained["train_seconds"]}


def run_trainer(args, seed: int, work: Path) -> dict:
    """run_ner.py in miniature: first-sub-token labels, DataCollatorForTokenClassification, Trainer.predict()."""
    import datasets
    import numpy as np
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments, set_seed)

    from bert_tasks.checkpoint import bundled_model_path

    folder = str(bundled_model_path())
    start = time.perf_counter()
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForTokenClassification.from_pretrained(
        folder, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)})
    raw = datasets.load_dataset("json", data_files={s: str(work / f"{s}.jsonl") for s in ("train", "dev")})

    def encode(batch):
        out = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=MAX_LEN)
        out["labels"] = []
        for i, tags in enumerate(batch["tags"]):
            previous, labels = None, []
            for word in out.word_ids(i):
                labels.append(-100 if word is None or word == previous else TAGS.index(tags[word]))
                previous = word
            out["labels"].append(labels)
        return out

    train_set, dev = (raw[s].map(encode, batched=True, remove_columns=raw[s].column_names) for s in ("train", "dev"))
    n_train = len(train_set)
    training_args = TrainingArguments(
        output_dir=str(work / f"trainer-{seed}"), learning_rate=LR, per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=EVAL_BATCH, num_train_epochs=args.epochs, weight_decay=WEIGHT_DECAY,
        lr_scheduler_type="linear", warmup_steps=warmup_steps(n_train, args.epochs), max_grad_norm=1.0, seed=seed,
        save_strategy="no", eval_strategy="no", logging_steps=10_000, report_to="none", use_cpu=True, disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=train_set,
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    trained = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - trained
    output = trainer.predict(dev)
    predicted = np.argmax(output.predictions, axis=-1)
    words = [[TAGS[p] for p, gold in zip(row, labels) if gold != -100] for row, labels in zip(predicted, output.label_ids)]
    gold = list(raw["dev"]["tags"])
    assert all(len(w) == len(g) for w, g in zip(words, gold)), "a dev sentence was truncated"
    return {"metrics": score(words, gold), "seconds": time.perf_counter() - start, "train_seconds": train_seconds}


def render(args, runs: dict, loads: tuple, counts: dict) -> str:
    import torch

    anchor = runs["trainer"]
    base = statistics.median(r["metrics"]["f1"] for r in anchor)
    rows = ["| run | entity F1, median (min-max; std) | precision (median) | recall (median) | median wall (s) "
            "| wall-time ratio (b)/(a) | F1 vs (b) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, items in runs.items():
        f1 = [r["metrics"]["f1"] for r in items]
        p = statistics.median(r["metrics"]["precision"] for r in items)
        r_ = statistics.median(r["metrics"]["recall"] for r in items)
        ratio = f"{wall(anchor) / wall(items):.2f}x" if name != "trainer" else "-"
        delta = f"{100 * (statistics.median(f1) - base):+.2f} pts" if name != "trainer" else "-"
        rows.append(f"| {CONFIGS[name]} | {cell(f1)} | {100 * p:.2f} | {100 * r_:.2f} | {wall(items):.1f} | {ratio} "
                    f"| {delta} |")
    t, d = counts["train"], counts["dev"]
    return "\n".join([
        f"Task: `{shown(args.data)}/text/wikitext2-valid.txt` by the rule in `benchmarks/ner_trainer.py` (capitalised "
        f"runs not at a sentence start are NAME spans; words lower-cased; sentences of 3-{MAX_WORDS} words): training "
        f"{t['sentences']} sentences ({t['words']} words, {t['names']} names) from the first "
        f"{counts['articles']['train']} articles, dev {d['sentences']} sentences ({d['words']} words, {d['names']} "
        f"names) from the other {counts['articles']['dev']}. Bundled MiniLM-L6-H384; seeds "
        f"{', '.join(str(r['seed']) for r in anchor)}; {args.epochs:g} epochs, lr {LR:g}, batch {BATCH}, linear "
        f"schedule with 10% warmup as one step count on both sides, weight decay {WEIGHT_DECAY:g}, max grad norm 1.0, "
        f"max length {MAX_LEN}, {torch.get_num_threads()} torch threads, both sides fp32 (equal precision). One "
        "scorer (the bundled seqeval metric, conlleval semantics) on word-level tags. Wall time = load + tokenize + "
        "train + predict the dev set (ours also writes its run folder).",
        "", *rows, "", f"{load_note(*loads)}; every run in its own process, seeds interleaved.", "",
        every_run(runs, ("f1", "precision", "recall")),
    ])


def main(argv: list[str] | None = None) -> None:
    argv, args = start(argv, parse_args)
    if args.one:
        name, seed, work = args.one.split(",", 2)
        print(json.dumps((run_trainer if name == "trainer" else run_ours)(args, int(seed), Path(work))))
        return
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ner-trainer-") as tmp:
        work = Path(tmp)
        counts = write_task(args.data, work, args.train_samples, args.dev_samples)
        runs = interleaved(MODULE, argv, list(CONFIGS), [int(s) for s in args.seeds.split(",")], work,
                           lambda r: f"entity F1 {100 * r['metrics']['f1']:.2f}")
    markdown = render(args, runs, (load_start, os.getloadavg()[0]), counts)
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("ner_trainer", markdown)


if __name__ == "__main__":
    main()

"""Inference throughput: our sorted, dynamically padded ``predict`` against plain ``transformers`` use.

Two workloads, each on one model folder that both sides load (MiniLM-L6-H384 with a
seeded random head, so the figures are about speed, and the answers are compared
only for agreement):

* GLUE-style classification over the SST-2 dev sentences: ours tokenizes once and runs
  ``bert_tasks.training.predict`` (longest-first batches, padding to the batch's longest)
  on our encoder; the anchor is ``transformers.pipeline("text-classification")`` on the
  same folder, at its default (one sentence per forward) and with ``batch_size`` set.
* SQuAD-style QA over a question file: ``bert_tasks.QuestionAnswerer.batch`` against a
  plain per-example ``transformers`` loop (transformers 5 has no QA pipeline): each
  question is windowed with the same feature code, padded to 384, run through
  ``BertForQuestionAnswering``, and decoded by the same postprocess.

Runs alternate ours/anchor, and the speed-up is the median of the per-round ratios.

    python -m benchmarks inference [--sst2-dev PATH] [--squad PATH] [--questions N] [--rounds 2] [--quick]
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

import numpy as np
import torch

from ._record import DATA, load_note, shown



def make_folder(task: str, out: Path, num_labels: int | None = None) -> Path:
    """The bundled MiniLM with a seeded fresh head, saved as a folder both libraries load."""
    from bert_tasks.checkpoint import load_pretrained, load_tokenizer, save_pretrained

    torch.manual_seed(0)
    model = load_pretrained("minilm", task=task, num_labels=num_labels)
    return save_pretrained(model, out, tokenizer=load_tokenizer("minilm"))


def read_sst2(path: Path, limit: int | None) -> list[str]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows[:limit]]


# --------------------------------------------------------------------------- classification


def ours_classify(folder: Path, sentences: list[str], batch_size: int):
    import datasets

    from bert_tasks.checkpoint import load_pretrained, load_tokenizer
    from bert_tasks.tasks.glue.task import GlueTask
    from bert_tasks.training import predict

    model = load_pretrained(folder, task="glue", num_labels=2).eval()
    tokenizer = load_tokenizer(str(folder))

    def run() -> np.ndarray:
        enc = tokenizer(sentences, truncation=True, max_length=128, return_token_type_ids=True)
        rows = datasets.Dataset.from_dict({**enc, "length": [len(x) for x in enc["input_ids"]]})
        logits = predict(model, GlueTask("sst2", pad_token_id=tokenizer.pad_token_id), rows, batch_size=batch_size)
        return np.stack(logits["logits"])

    return run


def hf_classify(folder: Path, sentences: list[str], batch_size: int | None):
    import transformers

    pipe = transformers.pipeline("text-classification", model=str(folder), tokenizer=str(folder), device="cpu")
    pipe.model.eval()

    def run() -> np.ndarray:
        kwargs = {"batch_size": batch_size} if batch_size else {}
        out = pipe(sentences, top_k=None, truncation=True, max_length=128, function_to_apply="none", **kwargs)
        order = sorted(pipe.model.config.label2id, key=pipe.model.config.label2id.get)
        return np.array([[{d["label"]: d["score"] for d in row}[label] for label in order] for row in out])

    return run


# --------------------------------------------------------------------------- question answering


def read_squad(path: Path, limit: int | None) -> list[dict]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    records = [
        {"id": qa["id"], "question": qa["question"], "context": p["context"]}
        for article in data for p in article["paragraphs"] for qa in p["qas"]
    ]
    return records[:limit]


def ours_qa(folder: Path, records: list[dict], batch_size: int):
    from bert_tasks import QuestionAnswerer

    qa = QuestionAnswerer(folder, version_2=True, batch_size=batch_size)
    return lambda: [(a.text, a.start, a.end) for a in qa.batch(records)]


def hf_qa(folder: Path, records: list[dict]):
    """One example at a time, windows padded to 384, the HF model, then the same postprocess."""
    import transformers

    from bert_tasks.checkpoint import load_tokenizer
    from bert_tasks.tasks.squad.config import SquadDataConfig
    from bert_tasks.tasks.squad.features import prepare_eval_features
    from bert_tasks.tasks.squad.postprocess import postprocess_predictions

    model = transformers.BertForQuestionAnswering.from_pretrained(str(folder), attn_implementation="sdpa").eval()
    tokenizer = load_tokenizer(str(folder))
    cfg = SquadDataConfig(max_seq_length=384, doc_stride=128, version_2_with_negative=True)
    width = cfg.max_seq_length

    @torch.no_grad()
    def run():
        answers = []
        for r in records:
            example = {"id": [r["id"]], "question": [r["question"]], "context": [r["context"]]}
            features = prepare_eval_features(example, tokenizer, cfg)
            lengths = [len(ids) for ids in features["input_ids"]]
            batch = {
                key: torch.tensor([row + [0] * (width - len(row)) for row in features[key]])
                for key in ("input_ids", "attention_mask", "token_type_ids")
            }
            out = model(**batch)
            starts = [out.start_logits[i, :n].numpy() for i, n in enumerate(lengths)]
            ends = [out.end_logits[i, :n].numpy() for i, n in enumerate(lengths)]
            found = postprocess_predictions(example, features, starts, ends, n_best_size=cfg.n_best_size,
                                            max_answer_length=cfg.max_answer_length, version_2_with_negative=True)
            span = found.answer_offsets.get(r["id"])
            answers.append((found.predictions[r["id"]], *(span or (0, 0))))
        return answers

    return run


# --------------------------------------------------------------------------- timing


def alternate(runs: dict[str, callable], rounds: int) -> tuple[dict[str, list[float]], dict[str, object]]:
    times = {k: [] for k in runs}
    outputs = {}
    for r in range(rounds):
        order = list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]
        for key, fn in order:
            start = time.perf_counter()
            outputs[key] = fn()
            times[key].append(time.perf_counter() - start)
    return times, outputs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks inference", description=__doc__.splitlines()[0])
    parser.add_argument("--sst2-dev", type=Path, default=DATA / "SST-2" / "dev.tsv")
    parser.add_argument("--squad", type=Path, default=DATA / "squad" / "squad-v2-5articles.json")
    parser.add_argument("--sentences", type=int, help="first N SST-2 dev sentences (default: all)")
    parser.add_argument("--questions", type=int, default=300, help="first N SQuAD questions")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma list of workloads to skip: glue, squad")
    parser.add_argument("--quick", action="store_true", help="200 sentences, 40 questions, 1 round")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences, args.questions, args.rounds = args.sentences or 200, min(args.questions, 40), 1
    skip = set(filter(None, args.skip.split(",")))
    load_start = os.getloadavg()[0]
    lines = ["| workload | items | ours (items/s) | anchor | anchor (items/s) | speed-up | agreement |",
             "|---|---:|---:|---|---:|---:|---:|"]
    notes = []
    with tempfile.TemporaryDirectory() as tmp:
        if "glue" not in skip and args.sst2_dev.is_file():
            folder = make_folder("glue", Path(tmp) / "cls", num_labels=2)
            sentences = read_sst2(args.sst2_dev, args.sentences)
            runs = {
                "ours": ours_classify(folder, sentences, args.batch_size),
                "pipeline": hf_classify(folder, sentences, None),
                f"pipeline, batch_size={args.batch_size}": hf_classify(folder, sentences, args.batch_size),
            }
            times, outputs = alternate(runs, args.rounds)
            ours_t = statistics.median(times["ours"])
            for key in runs:
                if key == "ours":
                    continue
                diff = float(np.abs(outputs["ours"] - outputs[key]).max())
                agree = float((outputs["ours"].argmax(1) == outputs[key].argmax(1)).mean())
                ratio = statistics.median(a / o for o, a in zip(times["ours"], times[key]))
                lines.append(f"| SST-2 dev classification | {len(sentences)} | {len(sentences) / ours_t:,.1f} | "
                             f"`pipeline(\"text-classification\")`{key[8:]} | "
                             f"{len(sentences) / statistics.median(times[key]):,.1f} | {ratio:.2f}x | "
                             f"{100 * agree:.1f}% argmax, max logit diff {diff:.1e} |")
                print(lines[-1], flush=True)
            notes.append(
                f"Classification: SST-2 dev (`{shown(args.sst2_dev)}`), max_length 128; ours = tokenize + "
                f"`train.predict(batch_size={args.batch_size})` (longest-first, dynamic padding to a multiple of 8) "
                "on our encoder; the pipeline runs the transformers `BertForSequenceClassification` (SDPA) of the same "
                "folder and returns raw logits (`function_to_apply='none'`). Time includes tokenization on both sides."
            )
        if "squad" not in skip and args.squad.is_file():
            folder = make_folder("squad", Path(tmp) / "qa")
            records = read_squad(args.squad, args.questions)
            runs = {"ours": ours_qa(folder, records, 32), "hf": hf_qa(folder, records)}
            times, outputs = alternate(runs, args.rounds)
            agree = float(np.mean([a[0] == b[0] for a, b in zip(outputs["ours"], outputs["hf"])]))
            ratio = statistics.median(a / o for o, a in zip(times["ours"], times["hf"]))
            lines.append(f"| SQuAD v2 QA (question → answer) | {len(records)} | "
                         f"{len(records) / statistics.median(times['ours']):,.1f} | per-example HF, padded to 384 | "
                         f"{len(records) / statistics.median(times['hf']):,.1f} | {ratio:.2f}x | "
                         f"{100 * agree:.1f}% same answer text |")
            print(lines[-1], flush=True)
            notes.append(
                f"QA: the first {len(records)} questions of `{args.squad.name}`, max_seq_length 384, doc_stride 128, "
                "n_best 20, SQuAD 2.0 null answers; ours = `QuestionAnswerer.batch` (batch 32, longest-first windows); "
                "the anchor windows each question with the same feature code, pads to 384, runs "
                "`transformers.BertForQuestionAnswering` (SDPA) per question, and decodes with the same postprocess."
            )
    notes.append(
        f"Models: bundled MiniLM-L6-H384 with a seeded random head, saved once and loaded by both sides. "
        f"{args.rounds} alternating round(s); items/s from the median time; speed-up = median of per-round ratios. "
        f"{torch.get_num_threads()} torch threads; {load_note(load_start)}."
    )
    body = "\n".join(lines) + "\n\n" + "\n".join(notes)
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("inference", body)


if __name__ == "__main__":
    main()

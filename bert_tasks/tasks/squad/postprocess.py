"""Turn per-window start/end logits into one answer per example, vectorised with numpy.

The result equals the reference algorithm of HF ``run_qa.py`` (``postprocess_qa_predictions``)
answer for answer, n-best entry for entry, including its tie-breaking:

* every window contributes its top-``n_best_size`` start and end tokens; a span is legal if
  both tokens are context tokens, ``end >= start`` and it is at most ``max_answer_length``
  tokens long; its score is ``start_logit + end_logit``;
* an example's spans from all its windows are sorted by score, descending and stable
  (window order, then start rank, then end rank), and the best ``n_best_size`` are kept;
* SQuAD 2.0 adds the lowest ``CLS`` null score over the windows; the answer is ``""`` when
  ``null_score - best_span_score > null_score_diff_threshold``;
* probabilities are a softmax over the kept entries; with no legal span the answer is
  ``"empty"``, as in the reference.

Instead of Python loops over every (start, end) pair, the top-k tokens of all windows come
from one row-wise ``sort`` (rows whose top values tie fall back to the reference's own
``argsort``, so tie order matches too), legality is one boolean tensor of shape
``windows x k x k``, and the per-example ranking is one stable sort. Python-level work is
left only where the output needs Python objects: the kept n-best entries and the per-example
answer dicts, built with C-level ``zip``/``dict`` rather than per-example branches.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...io import write_json


@dataclass
class SquadPredictions:
    #: example id -> answer text ("" = no answer, SQuAD 2.0 only)
    predictions: dict[str, str]
    #: example id -> n-best list of {text, probability, start_logit, end_logit, start}; ``start`` is the
    #: answer's first character in the context, -1 for the null answer and the "empty" placeholder
    nbest: dict[str, list[dict[str, Any]]]
    #: example id -> null score minus best span score (SQuAD 2.0 only; the official ``null_odds.json``)
    null_odds: dict[str, float] = field(default_factory=dict)
    #: example id -> [start, end) character span of the answer in its context, None for no answer
    answer_offsets: dict[str, tuple[int, int] | None] = field(default_factory=dict)


def _is_dataset(rows: Any) -> bool:
    return hasattr(rows, "with_format") and hasattr(rows, "column_names")


def _arrow_column(rows: Any, name: str) -> Any:
    # The backing table directly when no row selection is pending: with_format copies dataset state.
    if getattr(rows, "_indices", True) is None:
        return rows.data.column(name)
    return rows.with_format("arrow")[name]


def _column(rows: Any, name: str) -> list:
    if _is_dataset(rows):
        return _arrow_column(rows, name).to_pylist()
    if isinstance(rows, dict):
        return list(rows[name])
    return [row[name] for row in rows]


def _offset_arrays(features: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat token start/end characters (-1 outside the context), each window's first flat index and its length."""
    if _is_dataset(features):
        windows = _arrow_column(features, "offset_mapping").combine_chunks()
        tokens = windows.flatten()
        pair_ends = tokens.offsets.to_numpy(zero_copy_only=False)
        if windows.null_count == 0 and tokens.null_count == 0 and np.all(np.diff(pair_ends) == 2):
            pairs = tokens.flatten().to_numpy(zero_copy_only=False).reshape(-1, 2)
            return _finish_offsets(pairs, np.diff(windows.offsets.to_numpy(zero_copy_only=False)))
        rows = windows.to_pylist()
    else:
        rows = _column(features, "offset_mapping")
    # HF-style features mark non-context tokens with None instead of [-1, -1]
    pairs = [pair if pair is not None and len(pair) >= 2 else (-1, -1) for row in rows for pair in row]
    lengths = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    return _finish_offsets(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), lengths)


def _finish_offsets(pairs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    lengths = lengths.astype(np.int64)
    first = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=first[1:])
    return pairs[:, 0].astype(np.int64, copy=False), pairs[:, 1].astype(np.int64, copy=False), first, lengths


def _padded(logits: Any) -> tuple[np.ndarray, np.ndarray, Sequence[np.ndarray]]:
    """Windows x longest matrix padded with -inf, each window's logit count, and the rows as given."""
    if isinstance(logits, np.ndarray) and logits.ndim == 2:
        return logits, np.full(len(logits), logits.shape[1], dtype=np.int64), logits
    rows = list(logits)
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 1
    # the dtype np.concatenate(rows) would have; integer logits become float64
    dtype = np.result_type(*{r.dtype if isinstance(r, np.ndarray) else np.asarray(r).dtype for r in rows}) if rows else np.float64
    dtype = dtype if dtype.kind == "f" else np.float64
    matrix = np.full((len(rows), width), -np.inf, dtype=dtype)
    for i, row in enumerate(rows):  # row copies beat one boolean-mask scatter of the concatenation
        matrix[i, : len(row)] = row
    return matrix, lengths, rows


def _top_k(matrix: np.ndarray, lengths: np.ndarray, rows: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Indices of each row's k largest logits, best first, as ``np.argsort(row)[-1:-k-1:-1]``; -1 pads.

    A full-row ``np.sort`` (SIMD, far faster than ``argpartition``) gives each row's k-th
    value; exactly k tokens reach it when the top k+1 values are distinct, and those are
    then ordered by value. Rows where that does not hold (ties, non-finite values, fewer
    than k+1 tokens) ask the reference's own ``argsort``, whose order among equals is its own.
    """
    n_rows, width = matrix.shape
    out = np.full((n_rows, k), -1, dtype=np.int32)
    fallback = lengths < k + 1
    if width >= k + 1 and n_rows:
        top = np.sort(matrix, axis=1)[:, width - k - 1 :][:, ::-1]  # k+1 largest, descending
        fallback |= (top[:, :-1] == top[:, 1:]).any(axis=1) | ~np.isfinite(top).all(axis=1)
        regular = np.flatnonzero(~fallback)
        block = matrix if len(regular) == n_rows else matrix[regular]
        # -inf pads never reach a regular row's k-th value, which is finite, so no length mask is needed
        chosen = block >= top[regular, k - 1][:, None]
        columns = (np.flatnonzero(chosen) % width).reshape(len(regular), k)
        values = np.take_along_axis(block, columns, axis=1)
        out[regular] = np.take_along_axis(columns, np.argsort(-values, axis=1), axis=1)
    for r in np.flatnonzero(fallback):
        reference = np.argsort(rows[r])[-1 : -k - 1 : -1]
        out[r, : len(reference)] = reference
    return out


def _rank_order(example: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Order by example, then score descending, then original position (a stable sort)."""
    if score.dtype.itemsize > 4 or example.size == 0 or example.max() >= 2**31:
        return np.lexsort((np.arange(len(score)), -score, example))
    # One stable sort of a 64-bit key (example | inverted order-preserving score bits) beats lexsort 5x.
    bits = (score.astype(np.float32) + np.float32(0.0)).view(np.int32).astype(np.int64)  # + 0.0 turns -0.0 into 0.0
    ascending = np.where(bits < 0, ~bits & 0xFFFFFFFF, bits | 0x80000000)
    return np.argsort((example.astype(np.int64) << 32) | (0xFFFFFFFF - ascending), kind="stable")


def _example_of_feature(ids: list[str], feature_example_ids: list[str]) -> np.ndarray:
    index = {example_id: i for i, example_id in enumerate(ids)}
    try:
        return np.fromiter((index[e] for e in feature_example_ids), dtype=np.int64, count=len(feature_example_ids))
    except KeyError as err:
        raise ValueError(f"feature refers to example id {err.args[0]!r}, which is not among the examples") from None


def postprocess_predictions(
    examples: Any,
    features: Any,
    start_logits: Any,
    end_logits: Any,
    *,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool = False,
    null_score_diff_threshold: float = 0.0,
) -> SquadPredictions:
    """Best answer and n-best list per example from window logits.

    ``examples`` needs ``id`` and ``context``; ``features`` needs ``example_id`` and
    ``offset_mapping`` (``[-1, -1]`` or ``None`` outside the context). Logits are one
    1-D array per feature (its real token count) or a windows x tokens matrix.
    """
    # Tens of thousands of small n-best dicts would trigger repeated full-heap scans of the
    # cyclic garbage collector (they cannot form cycles); pause it while they are built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _postprocess(
            examples, features, start_logits, end_logits, n_best_size, max_answer_length, version_2_with_negative, null_score_diff_threshold
        )
    finally:
        if collecting:
            gc.enable()


def _postprocess(
    examples: Any,
    features: Any,
    start_logits: Any,
    end_logits: Any,
    n_best_size: int,
    max_answer_length: int,
    version_2_with_negative: bool,
    null_score_diff_threshold: float,
) -> SquadPredictions:
    """Every example's best span and n-best list from all its windows' logits, vectorised over the windows.

    Long because it is one vectorised pass (offsets, top-k, legal-span masks, n-best, the null decision) whose
    steps share arrays; its readable reference, the loop of run_qa.py's ``postprocess_qa_predictions``, is
    ``benchmarks/squad_pipeline.py: reference_postprocess``, and the tests check the two agree bit for bit.
    """
    ids, contexts = _column(examples, "id"), _column(examples, "context")
    feature_example = _example_of_feature(ids, _column(features, "example_id"))
    char_start, char_end, first_token, n_tokens = _offset_arrays(features)
    start_matrix, start_lengths, start_rows = _padded(start_logits)
    end_matrix, end_lengths, end_rows = _padded(end_logits)
    n_features = len(feature_example)
    if not (len(start_matrix) == len(end_matrix) == n_features == len(n_tokens)):
        raise ValueError(
            f"{n_features} features but {len(start_matrix)} start and {len(end_matrix)} end logit rows"
        )
    windows_per_example = np.bincount(feature_example, minlength=len(ids))
    if len(ids) and windows_per_example.min() == 0:
        raise ValueError(f"example {ids[int(np.argmin(windows_per_example))]!r} has no features")

    top_start = _top_k(start_matrix, start_lengths, start_rows, n_best_size)
    top_end = _top_k(end_matrix, end_lengths, end_rows, n_best_size)
    window = np.arange(n_features)[:, None]

    def context_chars(tops: np.ndarray, chars: np.ndarray) -> np.ndarray:
        # A token outside the window's offsets (or a -1 pad) has no characters.
        inside = (tops >= 0) & (tops < n_tokens[:, None])
        flat = np.where(inside, first_token[:, None] + tops, 0)
        return np.where(inside, chars[flat] if len(chars) else -1, -1)

    span_start_char = context_chars(top_start, char_start)
    span_end_char = context_chars(top_end, char_end)
    start_logit = start_matrix[window, np.maximum(top_start, 0)]
    end_logit = end_matrix[window, np.maximum(top_end, 0)]

    s, e = top_start[:, :, None], top_end[:, None, :]
    length = e - s  # one less than the span's token count
    legal = (span_start_char[:, :, None] >= 0) & (span_end_char[:, None, :] >= 0) & (length >= 0) & (length < max_answer_length)
    # Only a window's own n best spans can be among its example's n best (the example's order
    # restricted to one window is the window's order), so drop the rest before the big sort.
    # Keeping every span that scores at least the window's n-th best keeps ties, too.
    pair_score = np.where(legal, start_logit[:, :, None] + end_logit[:, None, :], -np.inf).reshape(n_features, -1)
    if pair_score.shape[1] > n_best_size:
        nth_best = np.sort(pair_score, axis=1)[:, -n_best_size]
        legal &= (pair_score >= nth_best[:, None]).reshape(legal.shape)
    # flat indices and divmod: far cheaper than np.nonzero's multi-index of a 3-D mask
    cand_window, pair = np.divmod(np.flatnonzero(legal), n_best_size * n_best_size)
    cand_i, cand_j = np.divmod(pair, n_best_size)
    cand_start_logit = start_logit[cand_window, cand_i]
    cand_end_logit = end_logit[cand_window, cand_j]
    cand_score = cand_start_logit + cand_end_logit
    cand_example = feature_example[cand_window]
    cand_chars = np.stack([span_start_char[cand_window, cand_i], span_end_char[cand_window, cand_j]], axis=1)
    cand_null = np.zeros(len(cand_score), dtype=bool)

    if version_2_with_negative:
        window_null = start_matrix[:, 0] + end_matrix[:, 0]
        # the first window with the lowest null score, as the reference's strict '>' keeps
        by_null = np.lexsort((np.arange(n_features), window_null, feature_example))
        is_first = np.ones(n_features, dtype=bool)
        is_first[1:] = feature_example[by_null][1:] != feature_example[by_null][:-1]
        null_window = by_null[is_first]
        null_example = feature_example[null_window]
        null_score = np.empty(len(ids), dtype=window_null.dtype)
        null_score[null_example] = window_null[null_window]
        cand_start_logit = np.concatenate([cand_start_logit, start_matrix[null_window, 0]])
        cand_end_logit = np.concatenate([cand_end_logit, end_matrix[null_window, 0]])
        cand_score = np.concatenate([cand_score, window_null[null_window]])
        cand_example = np.concatenate([cand_example, null_example])
        cand_chars = np.concatenate([cand_chars, np.zeros((len(null_window), 2), dtype=cand_chars.dtype)])
        cand_null = np.concatenate([cand_null, np.ones(len(null_window), dtype=bool)])

    # Rank within each example: score descending, then insertion order (nulls last).
    order = _rank_order(cand_example, cand_score)
    sorted_example = cand_example[order]
    group_start = np.searchsorted(sorted_example, np.arange(len(ids)))
    rank = np.arange(len(order)) - group_start[sorted_example]
    kept = order[(rank < n_best_size) | cand_null[order]]
    kept_example = cand_example[kept]
    bounds = np.searchsorted(kept_example, np.arange(len(ids) + 1))
    counts = np.diff(bounds)
    kept_score = cand_score[kept]
    char_from, char_to = cand_chars[kept, 0].tolist(), cand_chars[kept, 1].tolist()
    texts = [contexts[x][a:b] for x, a, b in zip(kept_example.tolist(), char_from, char_to)]
    # The reference puts a pseudo answer "empty" first when no span, or only the null answer, is left.
    needs_empty = counts == 0
    for x in np.flatnonzero(counts == 1):
        needs_empty[x] = texts[bounds[x]] == ""
    probability, empty_probability = _softmax_per_example(kept_score, bounds, needs_empty)
    first_char = np.where(cand_null[kept], -1, cand_chars[kept, 0]).tolist()
    entries = [
        {"text": t, "probability": p, "start_logit": sl, "end_logit": el, "start": a}
        for t, p, sl, el, a in zip(texts, probability.tolist(), cand_start_logit[kept].tolist(), cand_end_logit[kept].tolist(), first_char)
    ]

    nbest_lists = [entries[lo:hi] for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
    for x in np.flatnonzero(needs_empty).tolist():
        nbest_lists[x].insert(0, {"text": "empty", "probability": empty_probability[x], "start_logit": 0.0, "end_logit": 0.0, "start": -1})
    result = SquadPredictions(predictions={}, nbest=dict(zip(ids, nbest_lists)))
    if not version_2_with_negative:
        firsts = [nbest[0] for nbest in nbest_lists]
        result.predictions = dict(zip(ids, [entry["text"] for entry in firsts]))
        result.answer_offsets = dict(zip(ids, map(_offsets, firsts)))
        return result

    best_entries = [nbest[0] for nbest in nbest_lists]
    for x, best in enumerate(best_entries):
        if best["text"] == "":  # the null answer ranks first: the best non-null entry is further down
            best_entries[x] = next((entry for entry in nbest_lists[x] if entry["text"] != ""), nbest_lists[x][-1])
    dtype = null_score.dtype
    best_start = np.array([b["start_logit"] for b in best_entries], dtype=dtype)
    best_end = np.array([b["end_logit"] for b in best_entries], dtype=dtype)
    odds = ((null_score - best_start) - best_end).tolist()  # same float rounding as the reference's scalar maths
    answers = ["" if diff > null_score_diff_threshold else best["text"] for best, diff in zip(best_entries, odds)]
    result.null_odds = dict(zip(ids, odds))
    result.predictions = dict(zip(ids, answers))
    result.answer_offsets = dict(zip(ids, [_offsets(best) if answer else None for best, answer in zip(best_entries, answers)]))
    return result


def _softmax_per_example(scores: np.ndarray, bounds: np.ndarray, needs_empty: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
    """Softmax over each example's kept entries, bit-identical to one ``np.exp``/``sum`` per example.

    Examples with the same entry count are stacked into one C-contiguous matrix; a row-wise
    reduction runs the same summation as on that row alone. An example that gets the
    pseudo answer "empty" (score 0.0) is done alone, in float64 like the reference.
    """
    probability = np.zeros(len(scores), dtype=np.float64)
    empty_probability: dict[int, float] = {}
    counts = np.diff(bounds)
    for n in np.unique(counts[~needs_empty]):
        members = np.flatnonzero((counts == n) & ~needs_empty)
        positions = bounds[members][:, None] + np.arange(n)
        block = scores[positions]
        exp = np.exp(block - np.max(block, axis=1, keepdims=True))
        probability[positions] = exp / exp.sum(axis=1, keepdims=True)
    for x in np.flatnonzero(needs_empty):
        lo, hi = bounds[x], bounds[x + 1]
        with_empty = np.array([0.0, *scores[lo:hi]])
        exp = np.exp(with_empty - np.max(with_empty))
        probs = exp / exp.sum()
        empty_probability[int(x)] = float(probs[0])
        probability[lo:hi] = probs[1:]
    return probability, empty_probability


def _offsets(entry: dict[str, Any]) -> tuple[int, int] | None:
    start = entry["start"]
    return None if start < 0 else (start, start + len(entry["text"]))


def write_prediction_files(out_dir: str | Path, preds: SquadPredictions, version_2: bool) -> list[Path]:
    """Write ``predictions.json``, ``nbest_predictions.json`` and, for SQuAD 2.0, ``null_odds.json``."""
    out_dir = Path(out_dir)
    written = [out_dir / "predictions.json", out_dir / "nbest_predictions.json"]
    write_json(written[0], preds.predictions)
    write_json(written[1], preds.nbest)
    if version_2:
        written.append(out_dir / "null_odds.json")
        write_json(written[2], preds.null_odds)
    return written


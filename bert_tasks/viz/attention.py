"""Attention maps: what each token attends to, per layer and head, as arrays, figures and JSON.

:func:`attention_maps` runs one text (or text pair, or question + context) through
our encoder with ``output_attentions=True`` (a ``transformers`` model is switched
to eager attention for the call, as SDPA returns no probabilities). The figure
builders return :class:`matplotlib.figure.Figure` objects without touching pyplot.
Layers and heads are numbered from 0; rows are queries, columns keys.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import BertTasksError

Span = tuple[int, int]  # first and last token index, both inclusive
MAX_ANSWER_TOKENS = 30
CMAP = "viridis"
HIGHLIGHT = "tab:red"


def check_layer_head(num_layers: int, num_heads: int, layer: int, head: int | None = None) -> None:
    """Raise a one-line error for a layer or head the model does not have."""
    if not 0 <= layer < num_layers:
        raise BertTasksError(f"layer {layer} is out of range; this model has {num_layers} layers (0-{num_layers - 1})")
    if head is not None and not 0 <= head < num_heads:
        raise BertTasksError(f"head {head} is out of range; this model has {num_heads} heads a layer (0-{num_heads - 1})")


@dataclass
class AttentionMaps:
    tokens: list[str]
    probs: np.ndarray  # [L, H, T, T]: row = query token, column = key token; each row sums to 1
    segments: list[int | None]  # 0: first text, 1: the pair, None: special tokens and padding
    start_logits: np.ndarray | None = None  # [T], span QA models only
    end_logits: np.ndarray | None = None

    @property
    def num_layers(self) -> int:
        return self.probs.shape[0]

    @property
    def num_heads(self) -> int:
        return self.probs.shape[1]

    def check(self, layer: int, head: int | None = None) -> None:
        check_layer_head(self.num_layers, self.num_heads, layer, head)

    def to_json(self, layer: int, head: int | None = None) -> dict[str, Any]:
        """``{tokens, layer, head?, weights}``: weights [T, T] for one head, else [H, T, T]."""
        self.check(layer, head)
        weights = self.probs[layer] if head is None else self.probs[layer, head]
        data: dict[str, Any] = {"tokens": self.tokens, "layer": layer}
        if head is not None:
            data["head"] = head
        data["weights"] = np.round(weights.astype(np.float64), 6).tolist()
        return data


# --------------------------------------------------------------------------- computing


def _is_transformers(model: Any) -> bool:
    return type(model).__module__.startswith("transformers.")


@torch.no_grad()
def attention_maps(model: Any, tokenizer: Any, text: str, text_pair: str | None = None, *,
                   pad_to: int | None = None) -> AttentionMaps:
    """Attention probabilities of every layer and head for one input.

    ``model`` is any of our models (bare encoder or with a head) or a ``transformers``
    BERT. For span QA pass the question as ``text`` and the context as ``text_pair``.
    ``pad_to`` pads to that many tokens and keeps the [PAD] columns (they get zero weight).
    """
    limit = min(getattr(model.config, "max_tokens", getattr(model.config, "max_position_embeddings", 512)), 512)
    encoding = tokenizer(
        text, text_pair, return_tensors="pt", max_length=min(pad_to or limit, limit),
        truncation="only_second" if text_pair else True,  # a QA question must survive whole
        padding="max_length" if pad_to else False,
    )
    device = next(model.parameters()).device
    batch = {k: encoding[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding}
    was_training = model.training
    model.eval()
    try:
        if _is_transformers(model):
            previous = model.config._attn_implementation
            model.set_attn_implementation("eager")
            try:
                out = model(**batch, output_attentions=True)
            finally:
                model.set_attn_implementation(previous)
        else:
            out = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), output_attentions=True)
    finally:
        model.train(was_training)
    probs = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # L x [1, H, T, T] -> [L, H, T, T]
    start, end = getattr(out, "start_logits", None), getattr(out, "end_logits", None)
    return AttentionMaps(
        tokens=tokenizer.convert_ids_to_tokens(encoding["input_ids"][0].tolist()),
        probs=probs,
        segments=list(encoding.sequence_ids(0)),
        start_logits=None if start is None else start[0].float().cpu().numpy(),
        end_logits=None if end is None else end[0].float().cpu().numpy(),
    )


def segment_span(maps: AttentionMaps, segment: int) -> Span:
    positions = [i for i, s in enumerate(maps.segments) if s == segment]
    if not positions:
        raise BertTasksError(f"the input has no segment {segment}; span QA needs a question and a context")
    return positions[0], positions[-1]


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, within: Span,
              max_tokens: int = MAX_ANSWER_TOKENS) -> Span:
    """The legal span with the highest start + end logit: start <= end < start + max_tokens, inside ``within``."""
    lo, hi = within
    starts, ends = np.asarray(start_logits)[lo : hi + 1], np.asarray(end_logits)[lo : hi + 1]
    scores = starts[:, None] + ends[None, :]  # [start, end]
    offset = np.arange(len(starts))[None, :] - np.arange(len(starts))[:, None]  # end - start
    scores = np.where((offset >= 0) & (offset < max_tokens), scores, -np.inf)
    s, e = np.unravel_index(np.argmax(scores), scores.shape)
    return lo + int(s), lo + int(e)


def qa_spans(maps: AttentionMaps) -> tuple[Span, Span, Span]:
    """(question, context, predicted answer) token spans of a span-QA model's maps."""
    if maps.start_logits is None or maps.end_logits is None:
        raise BertTasksError("this model has no span-QA head; load it with task='squad'")
    question, context = segment_span(maps, 0), segment_span(maps, 1)
    return question, context, best_span(maps.start_logits, maps.end_logits, context)


def span_text(tokens: Sequence[str], span: Span) -> str:
    """WordPiece tokens back to words: '##' pieces join the piece before, punctuation the word before."""
    return re.sub(r" ([.,;:!?'])", r"\1", " ".join(tokens[span[0] : span[1] + 1]).replace(" ##", ""))


# --------------------------------------------------------------------------- figures


def _fontsize(n_tokens: int) -> float:
    return float(np.clip(180 / max(n_tokens, 1), 5, 10))


def _label_axes(ax, rows: Sequence[str] | None, cols: Sequence[str] | None, fontsize: float) -> None:
    if cols is None:
        ax.set_xticks([])
    else:
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=fontsize)
    if rows is None:
        ax.set_yticks([])
    else:
        ax.set_yticks(range(len(rows)), rows, fontsize=fontsize)
    ax.tick_params(length=0, pad=2)


def head_figure(maps: AttentionMaps, layer: int, head: int) -> Figure:
    """One head: a token-by-token heatmap, queries down the side, keys along the bottom."""
    maps.check(layer, head)
    n = len(maps.tokens)
    side = float(np.clip(0.3 * n + 2.5, 5, 16))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(maps.probs[layer, head], cmap=CMAP, vmin=0.0, aspect="equal")
    _label_axes(ax, maps.tokens, maps.tokens, _fontsize(n))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(f"layer {layer}, head {head}")
    fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    return fig


def grid_shape(num_heads: int) -> tuple[int, int]:
    """(rows, columns) for a near-square grid that is at least as wide as tall: 12 -> 3 x 4."""
    cols = math.ceil(math.sqrt(num_heads))
    return math.ceil(num_heads / cols), cols


def layer_grid_figure(maps: AttentionMaps, layer: int) -> Figure:
    """Every head of one layer on one colour scale, token labels on the outer panels; one colorbar."""
    maps.check(layer)
    n, heads = len(maps.tokens), maps.num_heads
    rows, cols = grid_shape(heads)
    labelled = n <= 48  # beyond that the labels would be an unreadable smear
    panel = float(np.clip(0.17 * n + 1.2, 2.4, 5))
    fig = Figure(figsize=(cols * panel + 1.0, rows * panel + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    vmax = float(maps.probs[layer].max())
    fontsize = float(np.clip(_fontsize(n) * 0.75, 4.5, 8))
    for h, ax in enumerate(axes):
        if h >= heads:
            fig.delaxes(ax)
            continue
        image = ax.imshow(maps.probs[layer, h], cmap=CMAP, vmin=0.0, vmax=vmax)
        r, c = divmod(h, cols)
        bottom = r == rows - 1 or h + cols >= heads  # the lowest panel in its column
        _label_axes(ax, maps.tokens if labelled and c == 0 else None, maps.tokens if labelled and bottom else None, fontsize)
        ax.set_title(f"head {h}", fontsize=9)
    fig.colorbar(image, ax=list(axes[:heads]), shrink=0.6, label="attention weight")
    fig.suptitle(f"layer {layer}: all {heads} heads (rows: queries, columns: keys)")
    return fig


def _highlight_ticks(labels, indices: Sequence[int]) -> None:
    for i, label in enumerate(labels):
        if i in indices:
            label.set_color(HIGHLIGHT)
            label.set_fontweight("bold")


def qa_figure(maps: AttentionMaps, question_span: Span, context_span: Span, answer_span: Span,
              layer: int, head: int | None = None, window: int = 20) -> Figure:
    """Where the predicted answer meets the question, in two panels, answer boxed and its labels red.

    Left: context tokens (rows) attending to the question; the answer rows are how the
    answer reads the question. Right: question tokens attending to the context; the
    answer columns are how the question reads the answer. The context is cut to
    ``window`` tokens either side of the answer. ``head=None`` averages the layer's heads.
    """
    maps.check(layer, head)
    weights = maps.probs[layer].mean(axis=0) if head is None else maps.probs[layer, head]
    q = np.arange(question_span[0], question_span[1] + 1)
    lo, hi = max(context_span[0], answer_span[0] - window), min(context_span[1], answer_span[1] + window)
    c = np.arange(lo, hi + 1)
    answer = [int(i) for i in np.arange(answer_span[0], answer_span[1] + 1) - lo]  # positions within the window
    q_tokens, c_tokens = [maps.tokens[i] for i in q], [maps.tokens[i] for i in c]
    fontsize = _fontsize(max(len(q), len(c)))

    # Square cells: the left panel is tall (context rows), the right one wide (context columns).
    cell = 0.24
    width = float(np.clip(cell * (len(q) + len(c)) + 4.5, 8, 22))
    height = float(np.clip(cell * len(c) + 2.5, 4, 14))
    fig = Figure(figsize=(width, height), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[max(len(q), 4), max(len(c), 4)])
    panels = (
        (left, weights[np.ix_(c, q)], c_tokens, q_tokens, "context → question", "rows"),
        (right, weights[np.ix_(q, c)], q_tokens, c_tokens, "question → context", "columns"),
    )
    vmax = max(float(panels[0][1].max()), float(panels[1][1].max()))  # one scale: the two directions compare
    for ax, matrix, row_labels, col_labels, title, answer_axis in panels:
        image = ax.imshow(matrix, cmap=CMAP, vmin=0.0, vmax=vmax)
        _label_axes(ax, row_labels, col_labels, fontsize)
        a0, a1 = answer[0] - 0.5, answer[-1] + 0.5
        if answer_axis == "rows":
            box = Rectangle((-0.5, a0), len(q), a1 - a0, fill=False, edgecolor=HIGHLIGHT, linewidth=2)
            _highlight_ticks(ax.get_yticklabels(), answer)
        else:
            box = Rectangle((a0, -0.5), a1 - a0, len(q), fill=False, edgecolor=HIGHLIGHT, linewidth=2)
            _highlight_ticks(ax.get_xticklabels(), answer)
        ax.add_patch(box)
        ax.set_title(title, fontsize=10)
    # Under the wide right panel, where the tall left one leaves room.
    fig.colorbar(image, ax=right, location="bottom", shrink=0.5, label="attention weight")
    which = "mean of heads" if head is None else f"head {head}"
    fig.suptitle(f"answer: {span_text(maps.tokens, answer_span)!r} (boxed) — layer {layer}, {which}")
    return fig


def pooling_figure(tokens: Sequence[str], weights: Sequence[float], title: str) -> Figure:
    """An attention pooling head's weights over one input: a heat strip under the tokens, the values on it."""
    n = len(tokens)
    fig = Figure(figsize=(float(np.clip(0.45 * n + 1.5, 5, 24)), 2.4), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(np.asarray(weights, dtype=np.float64)[None, :], cmap=CMAP, vmin=0.0, aspect="auto")
    fontsize = _fontsize(n)
    _label_axes(ax, None, list(tokens), fontsize)
    if n <= 40:  # beyond that the numbers overlap
        for i, w in enumerate(weights):
            ax.text(i, 0, f"{w:.2f}", ha="center", va="center", fontsize=fontsize * 0.8,
                    color="white" if w < 0.6 * max(weights) else "black")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.9, label="pooling weight", pad=0.01)
    return fig

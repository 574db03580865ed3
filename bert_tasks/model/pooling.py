"""Sentence pooling: how a classification head turns T token states into one vector.

Dimensions: B batch, T tokens, C hidden size, A the attention scorer's width.

``cls`` is BERT's own (tanh(W h_[CLS]), :class:`bert_tasks.model.encoder.Pooler`). The others read every
real token and never a padded one:

* ``mean``: the average of the real token states;
* ``max``: their element-wise maximum;
* ``attention``: the context vector of the attention lectures. A query q scores every token state
  h_t, a softmax over the real tokens turns the scores into weights, and the pooled vector is the
  weighted sum Σ_t a_t h_t. The query is a learned vector, or (``attention_query: cls``) the
  [CLS] state of each input. The four scoring functions are in :data:`SCORES`.

The choices are :class:`bert_tasks.model.spec.Pooling`'s, checked there once; :func:`pooling_module`
builds the one module a classifier calls, whichever the pooling: ``pooled, weights = pool(encoder_output, real)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .spec import ATTENTION_SCORES, Pooling

__all__ = ["ATTENTION_SCORES", "SCORES", "AttentionPooling", "pooling_module", "mean_pool", "max_pool"]


# --------------------------------------------------------------------------- the four scoring functions


class Additive(nn.Module):
    """Bahdanau et al. 2014: score(q, h) = vᵀ tanh(W_q q + W_h h)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.w_q = nn.Linear(hidden, hidden, bias=False)
        self.w_h = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:  # q [B, C], h [B, T, C] -> [B, T]
        return self.v(torch.tanh(self.w_q(q)[:, None, :] + self.w_h(h))).squeeze(-1)


class Dot(nn.Module):
    """Luong et al. 2015: score(q, h) = qᵀ h. No parameters of its own."""

    def __init__(self, hidden: int):
        super().__init__()

    def forward(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bc,btc->bt", q, h)


class General(nn.Module):
    """Luong: score(q, h) = qᵀ W h."""

    def __init__(self, hidden: int):
        super().__init__()
        self.w = nn.Linear(hidden, hidden, bias=False)

    def forward(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bc,btc->bt", q, self.w(h))  # W h: [B, T, C]


class Concat(nn.Module):
    """Luong: score(q, h) = vᵀ tanh(W [q; h])."""

    def __init__(self, hidden: int):
        super().__init__()
        self.w = nn.Linear(2 * hidden, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, q: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        qh = torch.cat([q[:, None, :].expand_as(h), h], dim=-1)  # [B, T, 2C]
        return self.v(torch.tanh(self.w(qh))).squeeze(-1)


SCORES: dict[str, type[nn.Module]] = {"additive": Additive, "dot": Dot, "general": General, "concat": Concat}


# --------------------------------------------------------------------------- pooling over real tokens


def mean_pool(h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The mean of the real token states: [B, T, C], [B, T] bool -> [B, C] (an all-padding row gives zeros)."""
    weights = real.to(h.dtype)
    return torch.einsum("bt,btc->bc", weights, h) / weights.sum(1, keepdim=True).clamp(min=1)


def max_pool(h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum over real tokens: [B, T, C] -> [B, C] (an all-padding row gives zeros)."""
    pooled = h.masked_fill(~real[:, :, None], -math.inf).amax(dim=1)
    return torch.where(real.any(1, keepdim=True), pooled, torch.zeros_like(pooled))


class AttentionPooling(nn.Module):
    """Weights a_t = softmax_t(score(q, h_t)) over the real tokens; returns Σ_t a_t h_t and the weights."""

    def __init__(self, hidden: int, score: str = "additive", query: str = "learned", std: float = 0.02):
        super().__init__()
        Pooling("attention", score, query)  # its choices, checked once there
        self.score = SCORES[score](hidden)
        self.query = nn.Parameter(torch.randn(hidden) * std) if query == "learned" else None

    def forward(self, h: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = h[:, 0] if self.query is None else self.query.expand(h.size(0), -1)  # [B, C]
        scores = self.score(q, h).masked_fill(~real, -math.inf)  # [B, T]
        weights = torch.softmax(scores.float(), dim=-1).nan_to_num(0.0).to(h.dtype)  # an all-padding row: zeros
        return torch.einsum("bt,btc->bc", weights, h), weights


# --------------------------------------------------------------------------- one module per pooling


class ClsPooling(nn.Module):
    """BERT's own: the encoder's tanh pooler over [CLS] (its weights are the encoder's ``pooler``)."""

    def forward(self, out, real: torch.Tensor) -> tuple[torch.Tensor, None]:
        return out.pooler_output, None  # [B, C]


class MeanPooling(nn.Module):
    def forward(self, out, real: torch.Tensor) -> tuple[torch.Tensor, None]:
        return mean_pool(out.last_hidden_state, real), None


class MaxPooling(nn.Module):
    def forward(self, out, real: torch.Tensor) -> tuple[torch.Tensor, None]:
        return max_pool(out.last_hidden_state, real), None


class AttentionPoolingOver(AttentionPooling):
    """:class:`AttentionPooling` read from an encoder output; its parameters keep AttentionPooling's names."""

    def forward(self, out, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return super().forward(out.last_hidden_state, real)


def pooling_module(spec: Pooling, hidden: int) -> nn.Module:
    """The module a classifier with ``spec`` pools through: ``(encoder output, real [B, T] bool) -> ([B, C], weights)``."""
    if spec.pooling == "attention":
        return AttentionPoolingOver(hidden, spec.attention_score, spec.attention_query)
    return {"cls": ClsPooling, "mean": MeanPooling, "max": MaxPooling}[spec.pooling]()

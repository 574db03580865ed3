"""The encoder's speed helpers, each a named function with its measured gain, so the math in
:mod:`bert_tasks.model.encoder` reads plainly: the packed-bits CPU dropout, unpadding
(:class:`RealTokens`), the fixed sinusoidal table, RoBERTa's positions, and the wrappers' unwrapping.

Dimensions as in :mod:`bert_tasks.model.encoder`: B batch, T tokens, R real tokens, F features.
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: the three int16 lanes of an int64 that hold its low 48 bits, in memory order
LOW_LANES = slice(0, 3) if sys.byteorder == "little" else slice(1, 4)


def check_dropout_rate(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout whose CPU keep-mask costs one 64-bit random draw per three elements.

    CPU ``F.dropout`` draws a Bernoulli sample per element, and at T=384 that was a fifth of a
    MiniLM training step (``bernoulli_`` in the profiles in benchmarks/RESULTS.md). Here each
    draw of 48 uniform bits is cut into three 16-bit lanes, each compared with p·2¹⁶. The drop
    probability is p rounded to a multiple of 2⁻¹⁶ (0.1 -> 0.100006) and the scale uses that
    rounded value, so the output is unbiased up to the rounding of the scale in x's dtype.
    GPUs and compiled graphs keep ``F.dropout``, with their own generators.
    """
    check_dropout_rate(p)
    if not training or p == 0.0:
        return x
    threshold = round(p * 65536)  # drop where a uniform 16-bit lane falls below it
    if x.device.type != "cpu" or threshold >= 65536 or torch.compiler.is_compiling():
        return F.dropout(x, p, training=True)
    n = x.numel()
    words = torch.empty((n + 2) // 3, dtype=torch.int64).random_(0, 1 << 48)  # 48 uniform bits each
    lanes = words.view(torch.int16).view(-1, 4)[:, LOW_LANES]  # [n/3, 3], uniform over [-2¹⁵, 2¹⁵)
    keep = (lanes >= threshold - 32768).reshape(-1)[:n].view(x.shape)
    return torch.where(keep, x, 0.0).mul_(65536 / (65536 - threshold))


class Dropout(nn.Module):
    """``nn.Dropout`` through :func:`dropout`."""

    def __init__(self, p: float):
        super().__init__()
        check_dropout_rate(p)  # at construction, not first at the first training step
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def sinusoidal_table(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos position table of "Attention Is All You Need" (interleaved halves)."""
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)  # [P, 1]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))  # [ceil(C/2)]
    table = torch.zeros(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table.float()


@dataclass
class RealTokens:
    """Where the real tokens of a padded [B, T] batch sit in its flattened [B·T] order.

    With it (``BertModel.unpad``) the per-token work, i.e. projections, feed-forward, LayerNorm,
    dropout and residuals, runs on the R real tokens only, so no FLOPs go to padding. Attention
    either scatters Q, K and V back to [B, T] for its T×T products (CPUs have no ragged kernel),
    or, with ``offsets`` (on CUDA), runs on the packed tokens themselves: see
    :meth:`SelfAttention.ragged`.
    """

    index: torch.Tensor  # [R] flat positions b·T + t of the real tokens, sequence after sequence
    batch: int
    length: int
    offsets: torch.Tensor | None = None  # [B+1] where each sequence starts in [R], for the ragged kernel
    shortest: int = 0  # the shortest and longest sequence, read once per batch so that no layer syncs for them
    longest: int = 0

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor, ragged: bool = False) -> "RealTokens | None":
        """None when nothing is padding (packed MLM batches): then there is nothing to skip. ``ragged`` adds
        the offsets, unless a row has no real token at all (a ragged sequence cannot be empty)."""
        B, T = attention_mask.shape
        index = attention_mask.reshape(B * T).nonzero().squeeze(1)
        if len(index) == B * T:
            return None
        if not ragged:
            return cls(index, B, T)
        counts = attention_mask.ne(0).sum(dim=1)  # [B]
        shortest, longest = (int(x) for x in torch.stack(torch.aminmax(counts)).tolist())
        if shortest == 0:
            return cls(index, B, T)
        return cls(index, B, T, F.pad(counts.cumsum(0), (1, 0)), shortest, longest)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.batch * self.length, -1).index_select(0, self.index)  # [B, T, F] -> [R, F]

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.new_zeros(self.batch * self.length, x.shape[-1]).index_copy(0, self.index, x)
        return flat.view(self.batch, self.length, -1)  # [R, F] -> [B, T, F], zeros at padding


def positions_after_padding(input_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """RoBERTa's (fairseq's) position ids: real tokens count up from pad_id + 1, padding stays at pad_id. [B, T]"""
    real = input_ids.ne(pad_id).long()
    return torch.cumsum(real, dim=1) * real + pad_id


def fused_dropout(device: torch.device) -> bool:
    """Whether SDPA keeps attention dropout inside its fused kernel there: on CUDA (flash, memory-efficient); on
    CPU SDPA with dropout leaves its fused kernel for a slower unfused one, so the explicit path serves there."""
    return device.type == "cuda"


def takes_token_types(model: nn.Module) -> bool:
    """Whether ``model`` (through DDP, Accelerate and compile wrappers) has a ``token_type_ids`` argument:
    transformers' DistilBERT and ModernBERT have no token types and refuse it."""
    return _takes_token_types(type(unwrap(model)))


@functools.cache
def _takes_token_types(model_class: type) -> bool:
    return "token_type_ids" in inspect.signature(model_class.forward).parameters


def unwrap(model: nn.Module) -> nn.Module:
    """The user's model inside DDP/Accelerate (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        inner = next((getattr(model, a) for a in ("module", "_orig_mod") if isinstance(getattr(model, a, None), nn.Module)), None)
        if inner is None:
            return model
        model = inner

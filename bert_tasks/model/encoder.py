"""A from-scratch BERT encoder, numerically equivalent to `transformers`.

Read it top-down: Embeddings, SelfAttention, FeedForward, EncoderLayer, Encoder,
Pooler, then the encoder model. The task heads over it are in :mod:`bert_tasks.model.heads`,
the speed helpers (packed dropout, unpadding) in :mod:`bert_tasks.model.fast`. Parameter names
are our own; the mapping to Hugging Face names is the key table, :mod:`bert_tasks.model.keymap`.

Dimension legend used in shape comments:

    B  batch size               T  sequence length (tokens)
    C  hidden size              H  attention heads
    D  head size = C / H        I  intermediate (feed-forward) size
    V  vocabulary size          K  number of labels
    N  positions selected for masked-LM prediction (N <= B*T)
    R  real (non-padding) tokens of a batch, when unpadded (R <= B*T)
    j  one sequence's own (ragged) length, in nested jagged tensors
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ACTIVATIONS, POOLER_ACTIVATIONS, BertConfig
from .fast import Dropout, RealTokens, dropout, fused_dropout, positions_after_padding, sinusoidal_table


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # [B, T, C]
    pooler_output: torch.Tensor | None = None  # [B, C]
    attentions: tuple[torch.Tensor, ...] | None = None  # L x [B, H, T, T]


class Embeddings(nn.Module):
    """Token + position + segment embeddings, then LayerNorm and dropout: [B, T] -> [B, T, E].

    E is the hidden size C, except in ELECTRA (``embedding_size``); DistilBERT has no segments (no token types).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        E = config.embedding_size or config.hidden_size
        self.word = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.sinusoidal = config.position_embedding_type == "sinusoidal"
        if self.sinusoidal:
            self.register_buffer("position_table", sinusoidal_table(config.max_position_embeddings, E), persistent=False)
        else:
            self.position = nn.Embedding(config.max_position_embeddings, E)
        self.token_type = nn.Embedding(config.type_vocab_size, E) if config.type_vocab_size else None
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.pad_id = config.pad_token_id if config.positions_from_padding else None

    def position_weight(self) -> torch.Tensor:
        return self.position_table if self.sinusoidal else self.position.weight

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        if self.pad_id is None:
            positions = self.position_weight()[:T]  # [T, C], broadcast over the batch
        else:
            # [B, T, C]; padding reads (and never trains) the padding id's row, as transformers' table does
            positions = F.embedding(positions_after_padding(input_ids, self.pad_id), self.position_weight(),
                                    padding_idx=self.pad_id)
        x = self.word(input_ids)  # [B, T, E]
        if self.token_type is not None:  # in transformers' order: words + types + positions, the same float sums
            x = x + self.token_type(token_type_ids)
        return self.dropout(self.norm(x + positions))


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, with its output projection.

    Query, key and value come from one fused ``Linear(C, 3C)`` (rows [0:C] query,
    [C:2C] key, [2C:3C] value): one matmul instead of three, and one gradient for x.
    The checkpoint table splits it into HF's three projections and back.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = C // self.num_heads
        self.qkv = nn.Linear(C, 3 * C)
        self.output = nn.Linear(C, C)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None, return_probs: bool = False, real: RealTokens | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``keep`` is a bool mask [B, 1, 1, T]: True for real keys, False for padding.

        ``x`` is [B, T, C], or [R, C] when ``real`` is given; the output has the same layout.
        """
        qkv = self.qkv(x)  # [B, T, 3C], or [R, 3C] unpadded
        dropout_p = self.dropout_p if self.training else 0.0
        if real is not None and real.offsets is not None:
            return self.output(self.ragged(qkv, real, dropout_p)), None
        if real is not None:
            qkv = real.scatter(qkv)  # [R, 3C] -> [B, T, 3C]
        B, T, C = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
        H, D = self.num_heads, self.head_size
        qkv = qkv.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)  # [B, T, 3C] -> [3, B, H, T, D]
        if not return_probs and (dropout_p == 0.0 or fused_dropout(qkv.device)):
            q, k, v = qkv.unbind(0)  # 3 x [B, H, T, D], strided views: the fused CPU kernel reads them in place
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout_p)  # [B, H, T, D]
            probs = None
        else:
            # The explicit path: for attention maps (SDPA does not return the probabilities), and for
            # training with attention dropout on CPU, where SDPA leaves its fused kernel for a slower
            # unfused one. One copy into head-major layout makes every product below a plain bmm.
            q, k, v = qkv.reshape(3, B * H, T, D).unbind(0)  # 3 x [B·H, T, D], contiguous
            # scale and padding mask ride inside the first product: scores = bias + (q kᵀ) / √D
            bias = torch.zeros(B, 1, T, dtype=q.dtype, device=q.device)  # [B, 1, T], 0 for real keys
            if keep is not None:
                bias = bias.masked_fill(~keep.view(B, 1, T), torch.finfo(q.dtype).min)
            bias = bias.repeat_interleave(H, dim=0)  # [B·H, 1, T], broadcast over queries
            scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=1.0 / math.sqrt(D))  # [B·H, T, T]
            probs = scores.softmax(dim=-1)
            context = torch.bmm(dropout(probs, dropout_p, self.training), v).view(B, H, T, D)
            probs = probs.view(B, H, T, T) if return_probs else None
        context = context.transpose(1, 2).reshape(B, T, C)  # [B, H, T, D] -> [B, T, C]
        if real is not None:
            context = real.gather(context)  # [B, T, C] -> [R, C]
        return self.output(context), probs

    def ragged(self, qkv: torch.Tensor, real: RealTokens, dropout_p: float) -> torch.Tensor:
        """Attention within each sequence on the packed real tokens: [R, 3C] -> [R, C], no T×T padding at all.

        Q, K and V become nested jagged tensors [B, H, j, D] (sequence b spans offsets[b]:offsets[b+1]; the
        shortest and longest lengths are given, so the kernel needs no device-to-host read per layer),
        which SDPA runs with a variable-length kernel on CUDA (flash for bf16/fp16, memory-efficient for
        fp32; dropout inside the kernel). On CPU torch computes it too (exactly, without the speed): the
        tests check it there against transformers.
        """
        R, C = qkv.shape[0], qkv.shape[1] // 3
        H, D = self.num_heads, self.head_size
        q, k, v = (torch.nested.nested_tensor_from_jagged(t.contiguous(), real.offsets, min_seqlen=real.shortest,
                                                          max_seqlen=real.longest).transpose(1, 2)  # [B, H, j, D]
                   for t in qkv.view(R, 3, H, D).unbind(1))  # 3 x [R, H, D]
        context = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # [B, H, j, D]
        return context.transpose(1, 2).values().reshape(R, C)  # [B, j, H, D] -> [R, H, D] -> [R, C]


class FeedForward(nn.Module):
    """Position-wise two-layer MLP: C -> I -> C."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.activation(self.up(x)))  # [B, T, C] -> [B, T, I] -> [B, T, C]


class EncoderLayer(nn.Module):
    """One post-LN transformer block: x = LN(x + Attn(x)); x = LN(x + FFN(x)).

    Everything but attention is per token, so ``x`` may be [B, T, C] or, unpadded, [R, C].
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.output_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)
        self.attention_output_dropout = config.attention_output_dropout

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None, return_probs: bool = False, real: RealTokens | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.attention(x, keep, return_probs, real)
        if self.attention_output_dropout:  # BERT's; DistilBERT adds the attention output undropped
            attended = self.dropout(attended)
        x = self.attention_norm(x + attended)  # residual, then LayerNorm (post-LN)
        x = self.output_norm(x + self.dropout(self.feed_forward(x)))
        return x, probs


class Encoder(nn.Module):
    """A stack of L encoder layers."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self, x: torch.Tensor, keep: torch.Tensor | None, return_probs: bool = False, real: RealTokens | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        all_probs = []
        for layer in self.layers:
            x, probs = layer(x, keep, return_probs, real)
            all_probs.append(probs)
        return x, tuple(all_probs) if return_probs else None


class Pooler(nn.Module):
    """tanh(W · h_[CLS]): the sentence vector that classification heads read.

    RoBERTa's classifier (``config.pooler_dropout``) drops out h_<s> first: tanh(W · dropout(h_<s>)).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        rate = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(rate) if config.pooler_dropout else nn.Identity()
        self.activation = POOLER_ACTIVATIONS[config.pooler_activation]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(self.dropout(hidden[:, 0])))  # [B, T, C] -> [B, C]


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class BertModel(nn.Module):
    """The bare encoder: embeddings, L layers and (optionally) the pooler.

    ``unpad = True`` (see :func:`set_unpadding`) runs the layers on the real tokens only
    (:class:`RealTokens`). Real positions and the pooler are unchanged; padded positions of
    ``last_hidden_state`` become zeros instead of HF's values there, which attend but are never read.
    """

    def __init__(self, config: BertConfig, add_pooler: bool | None = None):
        super().__init__()
        self.config = config
        self.unpad = False
        self.ragged: bool | None = None  # unpadded attention on packed tokens; None: on CUDA only
        self.embeddings = Embeddings(config)
        # ELECTRA: embeddings of size E < C, projected up
        E = config.embedding_size or config.hidden_size
        self.embeddings_project = nn.Linear(E, config.hidden_size) if E != config.hidden_size else None
        self.encoder = Encoder(config)
        # a head says whether it reads the pooler; the bare encoder has one where its family does
        self.pooler = Pooler(config) if (config.bare_pooler if add_pooler is None else add_pooler) else None
        self.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        keep = None if attention_mask is None else attention_mask.bool()[:, None, None, :]  # [B, T] -> [B, 1, 1, T]
        x = self.embeddings(input_ids, token_type_ids)  # [B, T, E]
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)  # [B, T, E] -> [B, T, C]
        real = None
        if self.unpad and attention_mask is not None and not output_attentions:
            ragged = attention_mask.is_cuda if self.ragged is None else self.ragged
            real = RealTokens.from_mask(attention_mask, ragged=ragged)
        if real is not None:
            x = real.gather(x)  # [B, T, C] -> [R, C]
        hidden, attentions = self.encoder(x, keep, output_attentions, real)
        if real is not None:
            hidden = real.scatter(hidden)  # [R, C] -> [B, T, C]
        pooled = self.pooler(hidden) if self.pooler is not None else None
        return EncoderOutput(last_hidden_state=hidden, pooler_output=pooled, attentions=attentions)


def set_unpadding(model: nn.Module, enabled: bool = True, ragged: bool | None = None) -> int:
    """Switch unpadding on or off for every encoder inside ``model``; returns how many it found.

    ``ragged``: attention on the packed tokens (:meth:`SelfAttention.ragged`) rather than scattered back to
    [B, T]; None (the default) does so on CUDA only, where a variable-length kernel makes it pay."""
    encoders = [m for m in model.modules() if isinstance(m, BertModel)]
    for encoder in encoders:
        encoder.unpad, encoder.ragged = enabled, ragged
    return len(encoders)

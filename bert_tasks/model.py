"""A from-scratch BERT encoder and its task heads, numerically equivalent to `transformers`.

Read it top-down: Embeddings, SelfAttention, FeedForward, EncoderLayer, Encoder,
Pooler, then the encoder model and the three heads (span QA, sequence
classification/regression, masked LM). Parameter names are our own; the
mapping to Hugging Face names lives in one table in :mod:`bert_tasks.checkpoint`.

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

import functools
import inspect
import math
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .pooling import ATTENTION_QUERIES, ATTENTION_SCORES, POOLINGS, AttentionPooling, max_pool, mean_pool

# --------------------------------------------------------------------------- config


@dataclass
class BertConfig:
    """Model hyper-parameters; field names are those of a Hugging Face BERT ``config.json``."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    #: "absolute" is BERT's learned table (HF's name); "sinusoidal" is a fixed table for models pretrained here.
    position_embedding_type: str = "absolute"
    classifier_dropout: float | None = None
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    problem_type: str | None = None
    #: how a classification head reads the tokens (:mod:`bert_tasks.pooling`): BERT's "cls" pooler, or mean, max,
    #: attention. Any but "cls" is saved so that transformers refuses the folder (see :meth:`to_hf_dict`).
    pooling: str = "cls"
    attention_score: str = "additive"
    attention_query: str = "learned"
    #: the family (bert_tasks/families.py): BERT, RoBERTa, XLM-RoBERTa, ELECTRA, DistilBERT
    model_type: str = "bert"
    #: ELECTRA: embeddings of this size E, projected to the hidden size C (None: E = C)
    embedding_size: int | None = None
    #: DistilBERT: a dropout in front of the span-QA output layer
    qa_dropout: float | None = None
    # -- set by the family from the model type, never written to config.json (FAMILY_FIELDS)
    #: RoBERTa: real tokens take positions padding id + 1, + 2, ... and padding takes the padding id
    positions_from_padding: bool = False
    #: RoBERTa, ELECTRA: the classifier drops out the [CLS] (<s>) state before its dense layer, as well as after it
    pooler_dropout: bool = False
    #: the classifier's activation after its dense layer over [CLS]: BERT's and RoBERTa's tanh, ELECTRA's gelu,
    #: DistilBERT's relu
    pooler_activation: str = "tanh"
    #: the bare encoder has a pooler (BERT, RoBERTa); ELECTRA's and DistilBERT's have none
    bare_pooler: bool = True
    #: dropout on the attention output before its residual (BERT); DistilBERT has none there
    attention_output_dropout: bool = True
    #: HF keys we do not model (e.g. ``_name_or_path``), kept so a saved config round-trips.
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size", "embedding_size"):
            value = getattr(self, name)
            if name == "embedding_size" and value is None:
                continue
            least = 0 if name == "type_vocab_size" else 1  # DistilBERT has no token types
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be {'a non-negative' if least == 0 else 'a positive'} integer, got {value!r}")
        if self.pooler_activation not in POOLER_ACTIVATIONS:
            raise ValueError(f"pooler_activation must be one of {', '.join(POOLER_ACTIVATIONS)}, got {self.pooler_activation!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "qa_dropout"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        if not (isinstance(self.layer_norm_eps, (int, float)) and self.layer_norm_eps > 0):
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")
        if self.pad_token_id is not None and (not isinstance(self.pad_token_id, int) or not 0 <= self.pad_token_id < self.vocab_size):
            raise ValueError(f"pad_token_id must be an id in the vocabulary (0-{self.vocab_size - 1}), got {self.pad_token_id!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}")
        if self.position_embedding_type not in ("absolute", "learned", "sinusoidal"):
            raise ValueError(f"position_embedding_type {self.position_embedding_type!r} is not supported")
        for name, choices in (("pooling", POOLINGS), ("attention_score", ATTENTION_SCORES),
                              ("attention_query", ATTENTION_QUERIES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.id2label is not None:
            self.id2label = {int(k): v for k, v in self.id2label.items()}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2

    @property
    def max_tokens(self) -> int:
        """The longest input the position table serves (RoBERTa's first positions go to the padding id)."""
        return self.max_position_embeddings - (self.pad_token_id + 1 if self.positions_from_padding else 0)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BertConfig":
        known = {f.name for f in fields(cls)} - {"extra"} - set(POOLING_FIELDS) - set(FAMILY_FIELDS)
        data = dict(data)
        pooling = data.pop(POOLING_KEY, None) or {}
        if not isinstance(pooling, dict) or set(pooling) - {*POOLING_FIELDS, "model_type"}:
            raise ValueError(f"{POOLING_KEY} must map some of {', '.join(POOLING_FIELDS)} to values, got {pooling!r}")
        pooling = dict(pooling)
        if pooling:  # ours names the pooling (to_hf_dict); the family's own type is kept beside it
            data["model_type"] = pooling.pop("model_type", "bert")
        kwargs = {k: v for k, v in data.items() if k in known} | pooling
        extra = {k: v for k, v in data.items() if k not in known}
        if "num_labels" in extra and "id2label" not in kwargs:
            kwargs["id2label"] = {i: f"LABEL_{i}" for i in range(int(extra["num_labels"]))}
        extra.pop("num_labels", None)
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "BertConfig":
        try:
            layers, hidden, heads = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
        sizes = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=heads, intermediate_size=4 * hidden)
        return cls(**{**sizes, **overrides})

    def to_hf_dict(self) -> dict[str, Any]:
        """The ``config.json`` content; transformers loads it as a ``BertConfig``.

        With a pooling other than "cls" it must not: transformers would read [CLS] through a random pooler and
        answer nonsense. So the model type names the pooling (``bert-tasks-mean-pooling``), which every
        transformers Auto class and pipeline refuses with that name in the error, and the weights go in a file
        transformers does not read (:data:`bert_tasks.checkpoint.POOLED_WEIGHTS`).
        """
        data = {k: v for k, v in asdict(self).items() if k not in ("extra", *POOLING_FIELDS, *FAMILY_FIELDS)}
        data = {**self.extra, **data, "model_type": self.model_type}
        if self.pooling != "cls":
            data["model_type"] = pooled_model_type(self.pooling)
            data[POOLING_KEY] = {"pooling": self.pooling, **({} if self.model_type == "bert" else {"model_type": self.model_type})}
            if self.pooling == "attention":
                data[POOLING_KEY].update(attention_score=self.attention_score, attention_query=self.attention_query)
        if self.position_embedding_type != "absolute":
            # transformers knows only learned tables; we export the fixed table as one (see checkpoint.py).
            data["bert_tasks_position_embeddings"] = self.position_embedding_type
            data["position_embedding_type"] = "absolute"
        if self.id2label is None:
            for key in ("id2label", "label2id", "problem_type"):
                data.pop(key)
        else:
            data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        for key in ("classifier_dropout", "embedding_size", "qa_dropout"):  # a family's own, or unset
            if data.get(key) is None:
                data.pop(key)
        return data


#: the config.json key that holds a non-"cls" pooling, and the fields it holds
POOLING_KEY = "bert_tasks_pooling"
POOLING_FIELDS = ("pooling", "attention_score", "attention_query")
#: BertConfig fields a family fixes from its model type (bert_tasks/families.py); config.json never holds them
FAMILY_FIELDS = ("positions_from_padding", "pooler_dropout", "pooler_activation", "bare_pooler", "attention_output_dropout")


def pooled_model_type(pooling: Any) -> str:
    """The model type of a classifier with a pooling of ours: one that transformers refuses, naming it."""
    return f"bert-tasks-{pooling}-pooling"


def pooling_text(config: Any) -> str | None:
    """A classifier's pooling in words ("attention (additive score, learned query)"); None for BERT's own [CLS]
    pooler, and for any config without our pooling (transformers' own, a head that reads every token)."""
    pooling = getattr(config, "pooling", "cls")
    if pooling == "cls":
        return None
    if pooling == "attention":
        return f"attention ({config.attention_score} score, {config.attention_query} query)"
    return f"{pooling} over the real tokens"


#: The compact BERTs of Turc et al. 2019 and the two originals: (layers L, hidden H, heads A).
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "medium": (8, 512, 8),
    "base": (12, 768, 12),
    "large": (24, 1024, 16),
}

#: the classifier's activation over its dense [CLS] layer (config.pooler_activation)
POOLER_ACTIVATIONS = {"tanh": torch.tanh, "gelu": F.gelu, "relu": F.relu}

ACTIVATIONS = {
    "gelu": nn.GELU(),  # the exact erf form, as BERT and HF's "gelu"
    "gelu_new": nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": nn.GELU(approximate="tanh"),
    "relu": nn.ReLU(),
}

# --------------------------------------------------------------------------- outputs


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # [B, T, C]
    pooler_output: torch.Tensor | None = None  # [B, C]
    attentions: tuple[torch.Tensor, ...] | None = None  # L x [B, H, T, T]


@dataclass
class QuestionAnsweringOutput:
    start_logits: torch.Tensor  # [B, T]
    end_logits: torch.Tensor  # [B, T]
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class LogitsOutput:
    logits: torch.Tensor  # [B, K] for classification; [B, T, V] or [N, V] for masked LM
    attentions: tuple[torch.Tensor, ...] | None = None
    pooling_weights: torch.Tensor | None = None  # [B, T]: an attention pooling head's weights over the tokens


# --------------------------------------------------------------------------- encoder


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


def positions_after_padding(input_ids: torch.Tensor, pad_id: int) -> torch.Tensor:
    """RoBERTa's (fairseq's) position ids: real tokens count up from pad_id + 1, padding stays at pad_id. [B, T]"""
    real = input_ids.ne(pad_id).long()
    return torch.cumsum(real, dim=1) * real + pad_id


def fused_dropout(device: torch.device) -> bool:
    """Whether SDPA keeps attention dropout inside its fused kernel there: on CUDA (flash, memory-efficient); on
    CPU SDPA with dropout leaves its fused kernel for a slower unfused one, so the explicit path serves there."""
    return device.type == "cuda"


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


# --------------------------------------------------------------------------- models


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


class BertForQuestionAnswering(nn.Module):
    """Span extraction: a start and an end logit per token."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooler=False)
        self.dropout = Dropout(config.qa_dropout) if config.qa_dropout is not None else nn.Identity()  # DistilBERT
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        init_weights(self.qa_outputs, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions)
        start, end = self.qa_outputs(self.dropout(out.last_hidden_state)).unbind(dim=-1)  # [B, T, 2] -> 2 x [B, T]
        return QuestionAnsweringOutput(start_logits=start, end_logits=end, attentions=out.attentions)


class BertForSequenceClassification(nn.Module):
    """Pool, dropout, linear: K class logits, or one regression output when K = 1.

    ``config.pooling`` picks how the T token states become one vector (:mod:`bert_tasks.pooling`): BERT's
    tanh pooler over [CLS] (the default, as transformers), or mean, max or attention over the real tokens.
    """

    def __init__(self, config: BertConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        # ``encoder``: another BERT encoder returning last_hidden_state (transformers' own, for --backend hf)
        self.bert = encoder if encoder is not None else BertModel(config, add_pooler=config.pooling == "cls")
        self.pooling = None
        if config.pooling == "attention":
            self.pooling = AttentionPooling(config.hidden_size, config.attention_score, config.attention_query)
            self.pooling.apply(lambda m: init_weights(m, config.initializer_range))
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        types = {"token_type_ids": token_type_ids} if takes_token_types(self.bert) else {}  # DistilBERT's takes none
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions, **types)
        weights = None
        if self.config.pooling == "cls":
            pooled = out.pooler_output  # [B, C]
        else:
            h = out.last_hidden_state  # [B, T, C]
            real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
            if self.config.pooling == "mean":
                pooled = mean_pool(h, real)
            elif self.config.pooling == "max":
                pooled = max_pool(h, real)
            else:
                pooled, weights = self.pooling(h, real)
        return LogitsOutput(logits=self.classifier(self.dropout(pooled)), attentions=out.attentions,
                            pooling_weights=weights)


class MaskedLMHead(nn.Module):
    """Transform (dense, activation, LayerNorm), then a decoder tied to the word embeddings.

    The transform maps C to the embedding size E (= C but in an ELECTRA generator, whose embeddings are smaller).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        E = config.embedding_size or config.hidden_size
        self.dense = nn.Linear(config.hidden_size, E)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.activation(self.dense(hidden)))  # [..., C] -> [..., E]
        return F.linear(h, word_embeddings, self.bias)  # [..., E] -> [..., V], decoder tied to the [V, E] embeddings


class BertForMaskedLM(nn.Module):
    """Masked-LM pretraining head; can predict at selected positions only."""

    #: forward accepts ``prediction_mask`` and then returns logits [N, V] for those positions only
    supports_prediction_mask = True

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooler=False)
        self.cls = MaskedLMHead(config)
        self.cls.apply(lambda m: init_weights(m, config.initializer_range))

    def forward(
        self, input_ids, attention_mask=None, token_type_ids=None, prediction_mask=None, output_attentions=False
    ):
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions)
        hidden = out.last_hidden_state  # [B, T, C]
        if prediction_mask is not None:
            # Gather before the decoder: the V-wide projection is paid only at the ~15% masked positions.
            hidden = hidden[prediction_mask]  # [B, T, C] -> [N, C]
        logits = self.cls(hidden, self.bert.embeddings.word.weight)
        return LogitsOutput(logits=logits, attentions=out.attentions)


def set_unpadding(model: nn.Module, enabled: bool = True, ragged: bool | None = None) -> int:
    """Switch unpadding on or off for every encoder inside ``model``; returns how many it found.

    ``ragged``: attention on the packed tokens (:meth:`SelfAttention.ragged`) rather than scattered back to
    [B, T]; None (the default) does so on CUDA only, where a variable-length kernel makes it pay."""
    encoders = [m for m in model.modules() if isinstance(m, BertModel)]
    for encoder in encoders:
        encoder.unpad, encoder.ragged = enabled, ragged
    return len(encoders)


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

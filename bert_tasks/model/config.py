"""Model hyper-parameters: :class:`BertConfig`, the presets, and its config.json in both directions.

Field names are those of a Hugging Face BERT ``config.json``; a family's own names and options are
translated by :mod:`bert_tasks.model.families`, a classifier's pooling is a
:class:`bert_tasks.model.spec.Pooling`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .spec import POOLING_FIELDS, POOLING_KEY, Pooling, read_pooling_json


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
    #: how a classification head reads the tokens (:class:`bert_tasks.model.spec.Pooling`): BERT's "cls" pooler, or mean, max,
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
    #: the token classifier drops out with classifier_dropout when it is set (BERT, RoBERTa, ELECTRA); DistilBERT's
    #: reads its ``dropout`` (our hidden_dropout_prob) always, its ``seq_classif_dropout`` being the sentence head's
    token_classifier_dropout: bool = True
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
        Pooling(self.pooling, self.attention_score, self.attention_query)  # its choices are checked there
        if self.id2label is not None:
            self.id2label = {int(k): v for k, v in self.id2label.items()}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def pooling_spec(self) -> Pooling:
        """The classifier's pooling as one object (its three fields stay plain, as config.json holds them)."""
        return Pooling(self.pooling, self.attention_score, self.attention_query)

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
        fragment = data.pop(POOLING_KEY, None)
        pooling = {}
        if fragment:  # ours names the pooling (to_hf_dict); the family's own type is kept beside it
            spec, family = read_pooling_json(fragment)
            pooling, data["model_type"] = spec.fields(), family or "bert"
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
        if self.pooling_spec.reads_tokens:
            data["model_type"] = self.pooling_spec.model_type()
            data[POOLING_KEY] = self.pooling_spec.to_json(self.model_type)
        if self.position_embedding_type != "absolute":
            # transformers knows only learned tables; we export the fixed table as one (see checkpoint/save.py).
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


#: BertConfig fields a family fixes from its model type (bert_tasks/families.py); config.json never holds them
FAMILY_FIELDS = ("positions_from_padding", "pooler_dropout", "pooler_activation", "bare_pooler", "attention_output_dropout",
                 "token_classifier_dropout")


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

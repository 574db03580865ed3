"""The model side as typed objects: a classifier's :class:`Pooling`, its choices written once.

Torch-free, so that the recipe loader and ``--help`` read the choices without loading torch. A
``Pooling`` is made (and checked) once, where a recipe or a config.json is read, and passed down
as it is: the checkpoint code writes and reads its config.json fragment through it, the key table
asks it for its rows, and the classifier builds its pooling module from it
(:func:`bert_tasks.model.pooling.pooling_module`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

#: how a sentence head turns T token states into one vector (bert_tasks/model/pooling.py)
PoolingKind = Literal["cls", "mean", "max", "attention"]
#: an attention pooling's scoring function, and its query
AttentionScore = Literal["additive", "dot", "general", "concat"]
AttentionQuery = Literal["learned", "cls"]

POOLINGS: tuple[str, ...] = typing.get_args(PoolingKind)
ATTENTION_SCORES: tuple[str, ...] = typing.get_args(AttentionScore)
ATTENTION_QUERIES: tuple[str, ...] = typing.get_args(AttentionQuery)

#: the config.json key that holds a pooling other than "cls", and the BertConfig fields it holds
POOLING_KEY = "bert_tasks_pooling"
POOLING_FIELDS = ("pooling", "attention_score", "attention_query")
#: the weights file of a classifier with a pooling of ours: a name transformers does not read, so that no
#: transformers class loads the encoder with a random head instead (BertConfig.to_hf_dict)
POOLED_WEIGHTS = "bert_tasks_model.safetensors"


@dataclass(frozen=True)
class Pooling:
    """How a classifier pools: BERT's own [CLS] pooler (``cls``), or mean, max or attention over the real tokens.

    ``score`` and ``query`` matter for ``attention`` only. Field names are BertConfig's, as in config.json.
    """

    pooling: PoolingKind = "cls"
    attention_score: AttentionScore = "additive"
    attention_query: AttentionQuery = "learned"

    def __post_init__(self) -> None:
        for name, choices in zip(POOLING_FIELDS, (POOLINGS, ATTENTION_SCORES, ATTENTION_QUERIES)):
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")

    @classmethod
    def of(cls, value: "Pooling | Mapping[str, Any] | None") -> "Pooling | None":
        """A Pooling from itself, or a mapping of its fields (``load_pretrained(pooling={...})``); None stays None."""
        if value is None or isinstance(value, Pooling):
            return value
        return cls(**{k: v for k, v in value.items() if k in POOLING_FIELDS})

    @property
    def reads_tokens(self) -> bool:
        """Every real token, not BERT's pooler over [CLS]: the encoder under it needs no pooler."""
        return self.pooling != "cls"

    @property
    def learned(self) -> bool:
        """It has weights of its own (attention), saved under ``pooling.``."""
        return self.pooling == "attention"

    def fields(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in POOLING_FIELDS}

    def text(self) -> str | None:
        """In words ("attention (additive score, learned query)"); None for BERT's own [CLS] pooler."""
        if self.pooling == "cls":
            return None
        if self.pooling == "attention":
            return f"attention ({self.attention_score} score, {self.attention_query} query)"
        return f"{self.pooling} over the real tokens"

    def model_type(self) -> str:
        """The model type of a classifier with this pooling: one that transformers refuses, naming it."""
        return pooled_model_type(self.pooling)

    def to_json(self, family: str) -> dict[str, str]:
        """The config.json fragment under :data:`POOLING_KEY`: the pooling, and the family's own model type
        beside it when it is not BERT's (the folder's ``model_type`` names the pooling instead)."""
        data = {"pooling": self.pooling, **({} if family == "bert" else {"model_type": family})}
        if self.learned:
            data.update(attention_score=self.attention_score, attention_query=self.attention_query)
        return data


def pooled_model_type(pooling: Any) -> str:
    return f"bert-tasks-{pooling}-pooling"


def read_pooling_json(value: Any) -> tuple[Pooling, str | None]:
    """A config.json fragment under :data:`POOLING_KEY` -> (its Pooling, the family's model type it names, if any)."""
    if not isinstance(value, dict) or set(value) - {*POOLING_FIELDS, "model_type"}:
        raise ValueError(f"{POOLING_KEY} must map some of {', '.join(POOLING_FIELDS)} to values, got {value!r}")
    return Pooling(**{k: v for k, v in value.items() if k in POOLING_FIELDS}), value.get("model_type")

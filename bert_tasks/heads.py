"""The one head table: every model head, described once.

A :class:`Head` names our model class for it, the Hugging Face architecture it is saved as,
its rows of the key table (HF name, our name; no ``bert.`` prefix on either side), whether the
encoder under it keeps BERT's pooler, and how the Hub and the model card name what it does.
Loading, saving, the model card and the checks that a folder holds a trained head all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .errors import BertTasksError
from .model import BertForMaskedLM, BertForQuestionAnswering, BertForSequenceClassification, BertModel, unwrap


@dataclass(frozen=True)
class Head:
    #: None for the bare encoder; else the ``task`` argument of ``load_pretrained``
    name: str | None
    model_class: type[nn.Module]
    #: the transformers class this head is saved as (``architectures`` in config.json)
    architecture: str
    #: (HF name, our name) of the head's own parameters
    rows: tuple[tuple[str, str], ...]
    #: the encoder keeps BERT's tanh pooler (sequence classification reads it)
    pooler: bool
    #: what the head does, for messages and the model card
    description: str
    #: the Hub's task type (pipeline tag) and its title, and the transformers Auto class that loads the folder
    pipeline_tag: str
    title: str
    auto_class: str


HEADS: dict[str | None, Head] = {
    head.name: head
    for head in (
        Head(None, BertModel, "BertModel", (), True, "encoder", "feature-extraction", "Feature Extraction", "AutoModel"),
        Head("squad", BertForQuestionAnswering, "BertForQuestionAnswering",
             (("qa_outputs.weight", "qa_outputs.weight"), ("qa_outputs.bias", "qa_outputs.bias")),
             False, "question-answering", "question-answering", "Question Answering", "AutoModelForQuestionAnswering"),
        Head("glue", BertForSequenceClassification, "BertForSequenceClassification",
             (("classifier.weight", "classifier.weight"), ("classifier.bias", "classifier.bias")),
             True, "sequence-classification", "text-classification", "Text Classification",
             "AutoModelForSequenceClassification"),
        Head("mlm", BertForMaskedLM, "BertForMaskedLM",
             (("cls.predictions.transform.dense.weight", "cls.dense.weight"),
              ("cls.predictions.transform.dense.bias", "cls.dense.bias"),
              ("cls.predictions.transform.LayerNorm.weight", "cls.norm.weight"),
              ("cls.predictions.transform.LayerNorm.bias", "cls.norm.bias"),
              ("cls.predictions.bias", "cls.bias")),
             False, "masked-LM", "fill-mask", "Masked Language Modeling", "AutoModelForMaskedLM"),
    )
}


def get_head(name: str | None) -> Head:
    if name not in HEADS:
        raise BertTasksError(f"unknown head {name!r}; choose one of {', '.join(str(h) for h in HEADS)}")
    return HEADS[name]


def head_of(model: nn.Module) -> Head:
    """The head of one of our models (through any DDP, Accelerate or compile wrapper, and FSDP2's class swap,
    which makes a model an ``FSDP<its class>`` subclass of its own class)."""
    model = unwrap(model)
    for cls in type(model).__mro__:
        for head in HEADS.values():
            if cls is head.model_class:
                return head
    raise BertTasksError(f"{type(model).__name__} is not one of bert-tasks' models")


"""The task heads over the encoder, and the one head table that describes each of them once.

The modules: span QA (:class:`BertForQuestionAnswering`), sequence classification and regression
(:class:`BertForSequenceClassification`, with any pooling of :mod:`bert_tasks.model.pooling`), token
classification (:class:`BertForTokenClassification`, NER), masked LM
(:class:`BertForMaskedLM`). The table: a :class:`Head` names our model class, the transformers architecture
it is saved as, what it outputs and whether it takes labels or a pooling, and its rows of the key table,
BERT's and each family's own. Loading, saving, the model card and the "does this folder hold a trained head"
check read it; nothing tells a head apart by its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BertTasksError
from .config import ACTIVATIONS, BertConfig
from .encoder import BertModel, init_weights
from .families import Family, Rows
from .fast import Dropout, takes_token_types, unwrap
from .pooling import pooling_module

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

    ``config.pooling_spec`` picks how the T token states become one vector (:mod:`bert_tasks.model.pooling`):
    BERT's tanh pooler over [CLS] (the default, as transformers), or mean, max or attention over the real tokens.
    """

    def __init__(self, config: BertConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        # ``encoder``: another BERT encoder returning last_hidden_state (transformers' own, for --backend hf)
        spec = config.pooling_spec
        self.bert = encoder if encoder is not None else BertModel(config, add_pooler=not spec.reads_tokens)
        self.pooling = pooling_module(spec, config.hidden_size)  # [CLS] through the pooler, or over the real tokens
        if spec.learned:
            self.pooling.apply(lambda m: init_weights(m, config.initializer_range))
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        types = {"token_type_ids": token_type_ids} if takes_token_types(self.bert) else {}  # DistilBERT's takes none
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions, **types)
        real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        pooled, weights = self.pooling(out, real)  # [B, C], and an attention pooling's [B, T] weights
        return LogitsOutput(logits=self.classifier(self.dropout(pooled)), attentions=out.attentions,
                            pooling_weights=weights)


class BertForTokenClassification(nn.Module):
    """Dropout and a linear layer over every token state: K logits per token ([B, T, K]), as transformers'
    ``BertForTokenClassification`` (no pooler). The dropout is ``classifier_dropout`` when set, else the hidden
    dropout (DistilBERT: always its ``dropout``, ``config.token_classifier_dropout``)."""

    def __init__(self, config: BertConfig, encoder: nn.Module | None = None):
        super().__init__()
        self.config = config
        self.bert = encoder if encoder is not None else BertModel(config, add_pooler=False)
        own = config.classifier_dropout is not None and config.token_classifier_dropout
        self.dropout = Dropout(config.classifier_dropout if own else config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, output_attentions=False):
        types = {"token_type_ids": token_type_ids} if takes_token_types(self.bert) else {}  # DistilBERT's takes none
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_attentions=output_attentions, **types)
        return LogitsOutput(logits=self.classifier(self.dropout(out.last_hidden_state)), attentions=out.attentions)


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


# --------------------------------------------------------------------------- the head table


@dataclass(frozen=True)
class Head:
    #: ``load_pretrained``'s ``task`` argument for it (None for the bare encoder)
    name: str | None
    model_class: type[nn.Module]
    #: the transformers class this head is saved as, BERT's name (``architectures`` in config.json)
    architecture: str
    #: what it outputs: the token states, a start and end logit per token, K logits per sequence, V per token
    outputs: Literal["encoder", "span", "sequence", "token", "masked-lm"]
    #: (HF name, our name) of the head's own parameters in BERT
    rows: Rows
    #: the encoder keeps BERT's tanh pooler (the bare encoder, sequence classification)
    pooler: bool
    #: what the head does, for messages and the model card
    description: str
    #: the Hub's task type (pipeline tag) and its title, and the transformers Auto class that loads the folder
    pipeline_tag: str
    title: str
    auto_class: str
    #: it takes labels (num_labels, id2label: config.json keeps them) and a pooling of ours
    labels: bool = False
    pools: bool = False
    #: a pretraining head (the model card says "Pretrained", not "Fine-tuned")
    pretraining: bool = False
    #: model type -> this head's rows in that family, where they are not BERT's
    family_rows: Mapping[str, Rows] = field(default_factory=dict)
    #: model type -> transformers' name of the dense layer over [CLS] (ours: ``bert.pooler.dense``) in that family
    family_dense: Mapping[str, str] = field(default_factory=dict)

    @property
    def bare(self) -> bool:
        return self.name is None

    def rows_in(self, family: Family) -> Rows:
        """The head's own (HF name, our name) rows in ``family``."""
        return tuple(self.family_rows.get(family.model_type, self.rows))

    def dense_in(self, family: Family) -> str | None:
        """transformers' name of this head's dense layer over [CLS] in ``family``, or None where it has none."""
        if not self.pooler:
            return None
        if self.bare:  # the bare encoder's own pooler, where the family has one
            return "pooler.dense" if family.options.get("bare_pooler", True) else None
        return self.family_dense.get(family.model_type, f"{family.prefix}.pooler.dense")

    def architecture_in(self, family: Family) -> str:
        """The transformers class a folder of ``family`` with this head is saved as (``architectures``)."""
        return family.class_prefix + self.architecture.removeprefix("Bert")


def _mlm_rows(dense: str, norm: str, bias: str) -> Rows:
    return ((f"{dense}.weight", "cls.dense.weight"), (f"{dense}.bias", "cls.dense.bias"),
            (f"{norm}.weight", "cls.norm.weight"), (f"{norm}.bias", "cls.norm.bias"), (bias, "cls.bias"))


#: RoBERTa's and ELECTRA's classifier: dropout, dense, activation, dropout, out_proj
_OUT_PROJ: Rows = (("classifier.out_proj.weight", "classifier.weight"), ("classifier.out_proj.bias", "classifier.bias"))
_ROBERTA_LM = _mlm_rows("lm_head.dense", "lm_head.layer_norm", "lm_head.bias")

ENCODER = Head(None, BertModel, "BertModel", "encoder", (), True, "encoder", "feature-extraction",
               "Feature Extraction", "AutoModel")
SPAN = Head("squad", BertForQuestionAnswering, "BertForQuestionAnswering", "span",
            (("qa_outputs.weight", "qa_outputs.weight"), ("qa_outputs.bias", "qa_outputs.bias")),
            False, "question-answering", "question-answering", "Question Answering", "AutoModelForQuestionAnswering")
SEQUENCE = Head("glue", BertForSequenceClassification, "BertForSequenceClassification", "sequence",
                (("classifier.weight", "classifier.weight"), ("classifier.bias", "classifier.bias")),
                True, "sequence-classification", "text-classification", "Text Classification",
                "AutoModelForSequenceClassification", labels=True, pools=True,
                family_rows={"roberta": _OUT_PROJ, "xlm-roberta": _OUT_PROJ, "electra": _OUT_PROJ},
                family_dense={"roberta": "classifier.dense", "xlm-roberta": "classifier.dense",
                              "electra": "classifier.dense", "distilbert": "pre_classifier"})
TOKEN = Head("ner", BertForTokenClassification, "BertForTokenClassification", "token",
             (("classifier.weight", "classifier.weight"), ("classifier.bias", "classifier.bias")),
             False, "token-classification", "token-classification", "Token Classification",
             "AutoModelForTokenClassification", labels=True)  # every family names it classifier.*
MASKED_LM = Head("mlm", BertForMaskedLM, "BertForMaskedLM", "masked-lm",
                 _mlm_rows("cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias"),
                 False, "masked-LM", "fill-mask", "Masked Language Modeling", "AutoModelForMaskedLM", pretraining=True,
                 family_rows={"roberta": _ROBERTA_LM, "xlm-roberta": _ROBERTA_LM,
                              "electra": _mlm_rows("generator_predictions.dense", "generator_predictions.LayerNorm",
                                                   "generator_lm_head.bias"),
                              "distilbert": _mlm_rows("vocab_transform", "vocab_layer_norm", "vocab_projector.bias")})

#: every head by ``load_pretrained``'s ``task`` name
HEADS: dict[str | None, Head] = {head.name: head for head in (ENCODER, SPAN, SEQUENCE, TOKEN, MASKED_LM)}


def get_head(name: "str | Head | None") -> Head:
    if isinstance(name, Head):
        return name
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

"""The BERT family table: each relative of BERT our encoder runs, described once.

All are post-LN encoders that differ from BERT in a few places, each expressed here or as a
:class:`bert_tasks.model.config.BertConfig` option, never as a copy of the model:

* **RoBERTa, XLM-RoBERTa**: positions are numbered from the padding id + 1 (``positions_from_padding``) and
  there is one token type; the classifier reads ``<s>`` through ``dropout -> dense -> tanh`` (``pooler_dropout``:
  BERT's pooler with a dropout in front), saved as ``classifier.dense`` and ``classifier.out_proj``; the
  masked-LM head is ``lm_head`` (each head's rows per family are in the head table, :mod:`bert_tasks.model.heads`).
* **ELECTRA**: embeddings of their own size E projected to the hidden size (``embedding_size``,
  ``embeddings_project``); no pooler; the classifier is RoBERTa's with gelu for tanh; a generator's masked-LM
  head maps C to E.
* **DistilBERT**: no token types; its own weight and config names (``q_lin``, ``sa_layer_norm``, ``dim``,
  ``n_layers``...); no dropout on the attention output (``attention_output_dropout``); the classifier is
  ``pre_classifier -> relu``; a dropout before the QA outputs (``qa_dropout``); ``sinusoidal_pos_embds`` is our
  sinusoidal table.

A :class:`Family` gives the name of the encoder inside transformers' task models, its backbone rows where they
are not BERT's (:mod:`bert_tasks.model.keymap` holds BERT's), its config names, the config options the family
fixes, and the prefix of its transformers class names. It is looked up once per load (:func:`get_family`) and
passed down. Any other model type runs with ``--backend hf``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import BertTasksError
from .config import FAMILY_FIELDS

#: (HF name, or HF names fused into one of ours, our name)
Rows = tuple[tuple[Any, str], ...]


@dataclass(frozen=True)
class Family:
    #: ``model_type`` in config.json
    model_type: str
    #: the encoder's attribute in transformers' task models (``bert.``, ``roberta.``), the prefix of its weights
    prefix: str
    #: the prefix of its transformers classes: Bert -> BertForSequenceClassification
    class_prefix: str
    #: BertConfig fields the family fixes (never written to config.json: the model type implies them)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: the encoder's rows when they are not BERT's (keymap.BACKBONE_TABLE)
    backbone: Rows | None = None
    #: config.json name -> BertConfig name, where the family names a setting differently
    config_names: Mapping[str, str] = field(default_factory=dict)
    #: BertConfig values the family has no setting for (DistilBERT: no token types, LayerNorm eps 1e-12)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    #: the family's own switch for a fixed sinusoidal position table (DistilBERT's ``sinusoidal_pos_embds``)
    sinusoidal_switch: str | None = None
    #: the first name part of heads transformers has and we do not (ELECTRA's discriminator): known, not loaded
    other_heads: tuple[str, ...] = ()

    def from_hf(self, hf_config: Mapping[str, Any]) -> dict[str, Any]:
        """A config.json of this family in BertConfig's names, with the values it fixes."""
        data = {self.config_names.get(k, k): v for k, v in hf_config.items()}
        if self.sinusoidal_switch and data.pop(self.sinusoidal_switch, False):
            data["position_embedding_type"] = "sinusoidal"  # the same table (model.sinusoidal_table)
        return {**data, **self.fixed}

    def to_hf(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """BertConfig.to_hf_dict's content in this family's names, without what the model type implies."""
        ours_to_hf = {v: k for k, v in self.config_names.items()}
        out = {ours_to_hf.get(k, k): v for k, v in data.items() if k not in self.fixed and k not in FAMILY_FIELDS}
        if self.sinusoidal_switch:  # the family's switch says it, not ours (BertConfig.to_hf_dict)
            out[self.sinusoidal_switch] = out.pop("bert_tasks_position_embeddings", None) == "sinusoidal"
            out.pop("position_embedding_type", None)
        return out


ROBERTA_OPTIONS = {"positions_from_padding": True, "pooler_dropout": True}
_LAYER = "transformer.layer.{i}."
DISTILBERT_BACKBONE: Rows = (
    ("embeddings.word_embeddings.weight", "embeddings.word.weight"),
    ("embeddings.position_embeddings.weight", "embeddings.position.weight"),
    ("embeddings.LayerNorm.weight", "embeddings.norm.weight"),
    ("embeddings.LayerNorm.bias", "embeddings.norm.bias"),
    *(((_LAYER + "attention.q_lin." + p, _LAYER + "attention.k_lin." + p, _LAYER + "attention.v_lin." + p),
       "encoder.layers.{i}.attention.qkv." + p) for p in ("weight", "bias")),
    *((_LAYER + hf + "." + p, "encoder.layers.{i}." + ours + "." + p)
      for hf, ours in (("attention.out_lin", "attention.output"), ("sa_layer_norm", "attention_norm"),
                       ("ffn.lin1", "feed_forward.up"), ("ffn.lin2", "feed_forward.down"),
                       ("output_layer_norm", "output_norm"))
      for p in ("weight", "bias")),
)
DISTILBERT_NAMES = {"dim": "hidden_size", "n_layers": "num_hidden_layers", "n_heads": "num_attention_heads",
                    "hidden_dim": "intermediate_size", "activation": "hidden_act", "dropout": "hidden_dropout_prob",
                    "attention_dropout": "attention_probs_dropout_prob", "seq_classif_dropout": "classifier_dropout"}

FAMILIES: dict[str, Family] = {
    family.model_type: family
    for family in (
        Family("bert", "bert", "Bert"),
        Family("roberta", "roberta", "Roberta", ROBERTA_OPTIONS),
        Family("xlm-roberta", "roberta", "XLMRoberta", ROBERTA_OPTIONS),
        Family("electra", "electra", "Electra", {"pooler_dropout": True, "pooler_activation": "gelu", "bare_pooler": False},
               other_heads=("discriminator_predictions",)),
        Family("distilbert", "distilbert", "DistilBert",
               {"pooler_activation": "relu", "bare_pooler": False, "attention_output_dropout": False,
                "token_classifier_dropout": False},
               backbone=DISTILBERT_BACKBONE,
               config_names=DISTILBERT_NAMES, fixed={"type_vocab_size": 0, "layer_norm_eps": 1e-12},
               sinusoidal_switch="sinusoidal_pos_embds"),
    )
}


def get_family(model_type: str, *, file: Any = None) -> Family:
    """The family of ``model_type``; any other type is one line that says how to run it anyway."""
    if model_type not in FAMILIES:
        raise BertTasksError(f"model_type {model_type!r} is not one our encoder implements ({', '.join(FAMILIES)}); "
                             "run it with --backend hf (transformers' own model)", file=file)
    return FAMILIES[model_type]

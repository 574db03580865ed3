"""The declarative key table between Hugging Face BERT parameter names and ours.

Every row pairs a Hugging Face name with ours; loading reads the table left to right and saving
right to left. A row whose left side is a tuple of HF names says "these concatenate along dim 0
into this one tensor of ours" (the fused query/key/value projection); saving splits it back into
equal parts with the same row, so the round trip is bit-exact. The backbone rows are here; each
head's own rows, in every family, are in the head table (:mod:`bert_tasks.model.heads`).
"""

from __future__ import annotations

import re
from typing import Iterable

import torch

from .families import FAMILIES, Family, get_family
from .heads import HEADS, SEQUENCE, Head, get_head
from .pooling import AttentionPooling
from .spec import Pooling

#: One HF name, or a tuple of HF names whose tensors concatenate along dim 0 into one of ours.
HFKey = str | tuple[str, ...]

#: (Hugging Face name(s), our name). ``{i}`` is a layer index. Backbone names are relative
#: to the encoder; in a model with a head ours carry the prefix ``bert.`` and transformers' its family's
#: (``bert.``, ``roberta.``: bert_tasks/families.py).
BACKBONE_TABLE: tuple[tuple[HFKey, str], ...] = (
    ("embeddings.word_embeddings.weight", "embeddings.word.weight"),
    ("embeddings.position_embeddings.weight", "embeddings.position.weight"),
    ("embeddings.token_type_embeddings.weight", "embeddings.token_type.weight"),
    ("embeddings.LayerNorm.weight", "embeddings.norm.weight"),
    ("embeddings.LayerNorm.bias", "embeddings.norm.bias"),
    # fused projection: query, key, value stacked as rows [0:C], [C:2C], [2C:3C] of ours
    (
        (
            "encoder.layer.{i}.attention.self.query.weight",
            "encoder.layer.{i}.attention.self.key.weight",
            "encoder.layer.{i}.attention.self.value.weight",
        ),
        "encoder.layers.{i}.attention.qkv.weight",
    ),
    (
        (
            "encoder.layer.{i}.attention.self.query.bias",
            "encoder.layer.{i}.attention.self.key.bias",
            "encoder.layer.{i}.attention.self.value.bias",
        ),
        "encoder.layers.{i}.attention.qkv.bias",
    ),
    ("encoder.layer.{i}.attention.output.dense.weight", "encoder.layers.{i}.attention.output.weight"),
    ("encoder.layer.{i}.attention.output.dense.bias", "encoder.layers.{i}.attention.output.bias"),
    ("encoder.layer.{i}.attention.output.LayerNorm.weight", "encoder.layers.{i}.attention_norm.weight"),
    ("encoder.layer.{i}.attention.output.LayerNorm.bias", "encoder.layers.{i}.attention_norm.bias"),
    ("encoder.layer.{i}.intermediate.dense.weight", "encoder.layers.{i}.feed_forward.up.weight"),
    ("encoder.layer.{i}.intermediate.dense.bias", "encoder.layers.{i}.feed_forward.up.bias"),
    ("encoder.layer.{i}.output.dense.weight", "encoder.layers.{i}.feed_forward.down.weight"),
    ("encoder.layer.{i}.output.dense.bias", "encoder.layers.{i}.feed_forward.down.bias"),
    ("encoder.layer.{i}.output.LayerNorm.weight", "encoder.layers.{i}.output_norm.weight"),
    ("encoder.layer.{i}.output.LayerNorm.bias", "encoder.layers.{i}.output_norm.bias"),
)
#: HF names that carry no information of their own: tied copies and legacy buffers.
HF_REDUNDANT = re.compile(r"^((cls\.predictions|lm_head)\.decoder\.(weight|bias)|vocab_projector\.weight|generator_lm_head\.weight"
                          r"|embeddings\.(position_ids|token_type_ids))$")
#: The first name part of every head's parameters in every family (and BERT's next-sentence head, under
#: ``cls.``): known, but unused when a checkpoint holds another task's head.
HEAD_PREFIXES = tuple(sorted({hf.split(".")[0] for head in HEADS.values() for family in FAMILIES.values()
                              for hf, _ in head.rows_in(family)} | {"pooling"}
                             | {dense.split(".")[0] for head in HEADS.values() for dense in head.family_dense.values()}
                             | {name for f in FAMILIES.values() for name in f.other_heads}))


def pooling_rows(pooling: Pooling) -> list[tuple[HFKey, str]]:
    """A learned pooling's own parameters (:mod:`bert_tasks.model.pooling`), saved under our names: a model that has
    them is one transformers cannot load anyway (see ``BertConfig.to_hf_dict``)."""
    if not pooling.learned:
        return []
    module = AttentionPooling(1, pooling.attention_score, pooling.attention_query)
    return [(f"pooling.{name}", f"pooling.{name}") for name in module.state_dict()]


def key_table(head: Head | str | None, num_layers: int, pooling: Pooling = Pooling(), family: Family | str = "bert",
              projected: bool = False) -> list[tuple[HFKey, str]]:
    """The full (HF name(s), our name) list for one model with ``head``, layer templates expanded.

    A classification head with a pooling over the tokens has no pooler, and an attention pooling adds its own
    rows. ``family`` names the encoder and the heads as transformers does for it; ``projected``: ELECTRA's
    embeddings are smaller than its hidden size and projected up."""
    head = get_head(head)
    family = family if isinstance(family, Family) else get_family(family)
    ours_prefix, hf_prefix = ("", "") if head.bare else ("bert.", family.prefix + ".")
    rows = family.backbone or BACKBONE_TABLE
    if projected:
        rows += tuple((f"embeddings_project.{p}", f"embeddings_project.{p}") for p in ("weight", "bias"))
    pairs: list[tuple[HFKey, str]] = []
    for hf, ours in rows:
        layers = range(num_layers) if "{i}" in ours else [None]
        for i in layers:
            names = tuple(hf_prefix + h.format(i=i) for h in hf) if isinstance(hf, tuple) else hf_prefix + hf.format(i=i)
            pairs.append((names, ours_prefix + ours.format(i=i)))
    dense = head.dense_in(family)
    if dense is not None and not pooling.reads_tokens:  # the dense layer over [CLS]: the encoder's pooler, or the classifier's
        pairs += [(f"{dense}.{p}", f"{ours_prefix}pooler.dense.{p}") for p in ("weight", "bias")]
    return pairs + list(head.rows_in(family)) + pooling_rows(pooling)


def model_key_table(head: Head | str | None, config, family: Family | None = None) -> list[tuple[HFKey, str]]:
    """:func:`key_table` for a model with this :class:`bert_tasks.model.config.BertConfig` (its family, when the
    caller has looked it up already)."""
    return key_table(head, config.num_hidden_layers, config.pooling_spec, family or config.model_type,
                     config.embedding_size not in (None, config.hidden_size))


def pooled_head_rows(config, family: Family | None = None) -> list[tuple[HFKey, str]]:
    """(HF name, our name) of a pooled classifier's head over transformers' encoder (``--backend hf``)."""
    family = family or get_family(config.model_type)
    return list(SEQUENCE.rows_in(family)) + pooling_rows(config.pooling_spec)


def hf_parts(hf: HFKey) -> tuple[str, ...]:
    """The HF names of one table entry, in concatenation order."""
    return hf if isinstance(hf, tuple) else (hf,)


def hf_to_ours(pairs: Iterable[tuple[HFKey, str]], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors under HF names -> under our names (fused entries concatenated); entries with no tensors are left out."""
    out = {}
    for hf, ours in pairs:
        parts = hf_parts(hf)
        if all(p in tensors for p in parts):
            out[ours] = tensors[parts[0]] if len(parts) == 1 else torch.cat([tensors[p] for p in parts], dim=0)
    return out


def ours_to_hf(pairs: Iterable[tuple[HFKey, str]], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors under our names -> under HF names (fused entries split into equal dim-0 parts); absent ones are left out.

    Works for anything keyed like our parameters: weights, gradients, optimizer moments.
    """
    out = {}
    for hf, ours in pairs:
        if ours not in tensors:
            continue
        parts = hf_parts(hf)
        pieces = tensors[ours].chunk(len(parts), dim=0) if len(parts) > 1 else (tensors[ours],)
        out.update(zip(parts, pieces))
    return out


def normalize_hf_key(key: str, prefix: str = "bert") -> str:
    """Undo the spellings older checkpoints use: TF-era gamma/beta and a missing or extra encoder prefix
    (``bert.``; ``roberta.`` for that family)."""
    key = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", key)
    key = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
    return key.removeprefix(prefix + ".")

"""Loading: a model folder (local, Hub or bundled) -> our model with a head, or transformers' own.

Names are translated by the key table (:mod:`bert_tasks.model.keymap`) and the head table
(:mod:`bert_tasks.model.heads`). Anything the tables do not explain is an error, so a silently ignored
weight cannot happen. The folder's family is looked up once, in :func:`load_pretrained`, and passed down.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch
import transformers
from torch import nn

from ..errors import BertTasksError, shown
from ..model.config import BertConfig
from ..model.families import FAMILIES, Family, get_family
from ..model.heads import BertForSequenceClassification, Head, get_head
from ..model.keymap import (HEAD_PREFIXES, HF_REDUNDANT, hf_parts, hf_to_ours, model_key_table, normalize_hf_key,
                            pooled_head_rows, pooling_rows)
from ..model.spec import POOLING_KEY, Pooling
from .files import Folder, model_family, read_folder, read_state_dict

log = logging.getLogger(__name__)

BACKENDS = ("scratch", "hf")


def build_config(hf_config: dict[str, Any], num_labels: int | None, source: Any = None,
                 pooling: Pooling | None = None, family: Family | None = None) -> BertConfig:
    """Our config for a checkpoint's ``config.json``: its family's options set, ``pooling`` over its own."""
    family = family or get_family(model_family(hf_config), file=source)
    data = {**family.from_hf(hf_config), "model_type": family.model_type}
    if pooling is not None:  # a new head's pooling, over the checkpoint's own
        data.pop(POOLING_KEY, None)
        if pooling.reads_tokens:
            data[POOLING_KEY] = {**pooling.fields(), "model_type": family.model_type}
    if data.get("type_vocab_size") == 0 and "type_vocab_size" not in family.fixed:  # only DistilBERT has none
        raise BertTasksError(f"unsupported model config (type_vocab_size must be a positive integer for a "
                             f"{family.model_type} model, got 0)", file=source)
    fixed = data.pop("bert_tasks_position_embeddings", None)
    if fixed:
        data["position_embedding_type"] = fixed
    if num_labels is not None:
        labels = data.get("id2label")
        if not labels or len(labels) != num_labels:
            data["id2label"] = {i: f"LABEL_{i}" for i in range(num_labels)}
            data.pop("label2id", None)
    try:
        return dataclasses.replace(BertConfig.from_dict(data), **family.options)
    except (TypeError, ValueError) as exc:
        raise BertTasksError(f"unsupported model config ({exc})", file=source) from None


def load_pretrained(
    name_or_path: str | os.PathLike | None = None,
    task: str | Head | None = None,
    num_labels: int | None = None,
    backend: str = "scratch",
    *,
    trained_head: bool = False,
    pooling: Pooling | Mapping[str, str] | None = None,
) -> nn.Module:
    """Load a BERT-family checkpoint into our encoder (``backend="scratch"``: BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
    DistilBERT; :mod:`bert_tasks.model.families`), or any encoder into ``transformers``' own model class (``"hf"``).

    ``task`` picks the head (:data:`bert_tasks.model.heads.HEADS`): None (bare encoder), ``"squad"``,
    ``"glue"`` or ``"mlm"``. A head the checkpoint lacks is initialised and named in one log line;
    with ``trained_head`` (evaluation and prediction, where a random head would answer nonsense)
    it is an error instead, naming the model the folder does hold. ``pooling`` (a sentence head's: a
    :class:`~bert_tasks.model.spec.Pooling`, or a mapping of its fields) replaces the checkpoint's own pooling.
    The folder is read once (:func:`~bert_tasks.checkpoint.files.read_folder`); everything after works on what it read.
    """
    if backend not in BACKENDS:
        raise BertTasksError(f"unknown backend {backend!r}; choose scratch or hf")
    folder = read_folder(name_or_path, keys=trained_head, weights=backend == "scratch")
    head, pooling = get_head(task), Pooling.of(pooling)
    if pooling is not None and not head.pools:
        raise BertTasksError(f"pooling is for the sentence classification head (task glue), not {task}")
    labels = num_labels if head.labels else None
    check = trained_head and not head.bare
    if folder.family is None and backend == "hf":  # an encoder ours does not implement
        if pooling is not None and pooling.reads_tokens:
            raise BertTasksError(f"pooling {pooling.pooling} needs one of our encoders ({', '.join(FAMILIES)}); "
                                 f"this is a {folder.model_type}", file=folder.config_file)
        if check:
            check_trained_head(folder, head)
        return _load_hf(folder.path, head, labels, folder.config.get("id2label"), sdpa=False)
    family = folder.family or get_family(folder.model_type, file=folder.config_file)
    config = build_config(folder.config, labels, source=folder.config_file, pooling=pooling, family=family)
    if not head.pools and config.pooling_spec.reads_tokens:  # a pooled classifier's encoder, read for another head
        config.pooling = "cls"
    if check:
        check_trained_head(folder, head)
    if backend == "hf":
        if config.pooling_spec.reads_tokens:
            return _load_hf_pooled(folder, config, family)
        return _load_hf(folder.path, head, config.num_labels if head.labels else None, config.id2label, sdpa=True)
    model = head.model_class(config)
    load_hf_state_dict(model, folder.state, head, source=folder.path, family=family)
    return model


def require_trained_head(model_dir: str | os.PathLike, task: str | Head) -> None:
    """Refuse a folder without ``task``'s trained head weights, naming the model it does hold.

    Evaluating or predicting with a freshly initialised head would answer nonsense without a word.
    """
    check_trained_head(read_folder(model_dir, keys=True), get_head(task))


def check_trained_head(folder: Folder, head: Head) -> None:
    """:func:`require_trained_head` on a folder already read (with its keys)."""
    held = ", ".join(folder.config.get("architectures") or []) or "a model without a recorded architecture"
    if folder.family is None:  # an encoder only transformers runs: its recorded class says which head it has
        if any(name.endswith(head.architecture.removeprefix("Bert")) for name in folder.config.get("architectures") or []):
            return
    else:
        family = folder.family
        rows = list(head.rows_in(family))
        if head.pools and folder.pooling is not None:  # a trained attention pooling is part of the trained head
            rows += pooling_rows(folder.pooling)
        if all(normalize_hf_key(hf, family.prefix) in folder.keys for hf, _ in rows):
            return
    raise BertTasksError(f"this folder holds {held}, with no trained {head.description} head ({head.architecture}); "
                         f"fine-tune one first (bert-tasks finetune ...)", file=folder.path)


def load_hf_state_dict(model: nn.Module, hf_state: dict[str, torch.Tensor], task: str | Head | None,
                       source: Any = None, family: Family | None = None) -> None:
    """Copy a Hugging Face state dict into ``model`` through the key table; fail on anything unexplained."""
    head = get_head(task)
    config: BertConfig = model.config
    family = family or get_family(config.model_type)
    pairs = model_key_table(head, config, family)
    found = _placed_tensors(model, hf_state, pairs, family.prefix, task, source)
    prefix = family.prefix
    normalized_pairs = [
        (tuple(normalize_hf_key(h, prefix) for h in hf) if isinstance(hf, tuple) else normalize_hf_key(hf, prefix), ours)
        for hf, ours in pairs
    ]
    loaded = hf_to_ours(normalized_pairs, found)  # a fused entry loads only when all its parts are present

    missing = {ours for _, ours in pairs if ours not in loaded}
    if config.position_embedding_type == "sinusoidal":
        missing -= {ours for ours in missing if ours.endswith("embeddings.position.weight")}
    # A checkpoint may lack a head, the pooler (BertForMaskedLM has none) or our pooling; those start fresh.
    fresh = {ours for _, ours in head.rows} | {ours for _, ours in pairs if "pooler." in ours or ours.startswith("pooling.")}
    initialised = missing & fresh
    absent_backbone = sorted(missing - initialised)
    if absent_backbone:
        shown = ", ".join(absent_backbone[:3]) + (f" and {len(absent_backbone) - 3} more" if len(absent_backbone) > 3 else "")
        raise BertTasksError(f"checkpoint lacks encoder weights: {shown}", file=source)
    if initialised:
        names = sorted({".".join(k.split(".")[:2]) if k.startswith("bert.") else k.split(".")[0] for k in initialised})
        log.warning("new %s weights initialised: the checkpoint has none (expected when fine-tuning a pretrained "
                    "model on a new task)", ", ".join(names))
    model.load_state_dict(loaded, strict=False)


def _placed_tensors(model: nn.Module, hf_state: dict[str, torch.Tensor], pairs: list, prefix: str, task: Any,
                    source: Any) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors the key table places (normalized HF name -> tensor), shapes checked; tied copies,
    legacy buffers and other tasks' heads left out (the latter named in one log line)."""
    sinusoidal = model.config.position_embedding_type == "sinusoidal"
    # each HF name -> (our name, its share of our tensor: parts of a fused entry are equal slices of dim 0)
    target_of = {normalize_hf_key(h, prefix): (ours, len(hf_parts(hf))) for hf, ours in pairs for h in hf_parts(hf)}
    normalized: dict[str, torch.Tensor] = {}
    for raw_key, tensor in hf_state.items():
        key = normalize_hf_key(raw_key, prefix)
        if key in normalized:
            raise BertTasksError(f"weight {raw_key!r} appears twice (with and without a prefix)", file=source)
        normalized[key] = tensor
    ours_state = model.state_dict()
    found: dict[str, torch.Tensor] = {}
    unused_heads: set[str] = set()
    for key, tensor in normalized.items():
        if HF_REDUNDANT.match(key) or (sinusoidal and key == "embeddings.position_embeddings.weight"):
            continue  # tied copies, legacy buffers, and a fixed table that we recompute
        if key not in target_of:
            # a pooler the table does not place goes unused: mean/max/attention read none, and RoBERTa's and
            # ELECTRA's classifiers have their own dense layer (classifier.dense), beside the base model's pooler
            if key.split(".")[0] in HEAD_PREFIXES or key.startswith("pooler."):
                unused_heads.add(key.split(".")[0])
                continue
            raise BertTasksError(f"checkpoint weight {key!r} has no place in a BERT {task or 'encoder'} model", file=source)
        target, parts = target_of[key]
        check_weight(key, tensor, ours_state[target].dtype, source)
        full = ours_state[target].shape
        expected = (full[0] // parts, *full[1:])
        if tuple(tensor.shape) != tuple(expected):
            raise BertTasksError(
                f"shape mismatch for {key!r}: checkpoint {tuple(tensor.shape)}, config expects {tuple(expected)}",
                file=source,
            )
        found[key] = tensor
    if unused_heads:
        log.info("ignored checkpoint heads not used by this task: %s", ", ".join(sorted(unused_heads)))
    stored = sorted({str(t.dtype).removeprefix("torch.") for t in found.values()} - {"float32"})
    if stored:  # the model computes in float32; a half-precision checkpoint is widened, and that is said
        log.warning("checkpoint weights stored as %s are read as float32", ", ".join(stored))
    return found


def check_weight(name: str, tensor: torch.Tensor, expected: torch.dtype, source: Any) -> None:
    """A weight is what it claims: floats where the model has floats (an integer tensor there would be read as
    numbers it never held), and finite (a NaN weight makes every prediction the same, with a score)."""
    if expected.is_floating_point and not tensor.is_floating_point():
        raise BertTasksError(f"weight {name!r} is stored as {str(tensor.dtype).removeprefix('torch.')}, not as "
                             "floats: not a trained weight", file=source)
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise BertTasksError(f"weight {name!r} holds NaN or infinite values", file=source)


def _load_hf(model_dir: Path, head: Head, num_labels: int | None, id2label: Any, *, sdpa: bool) -> nn.Module:
    """transformers' own model for the folder's model type with ``head`` (its Auto class). ``sdpa``: our families'
    models have SDPA attention; any other type gets the implementation transformers picks for it."""
    cls = getattr(transformers, head.auto_class)
    kwargs: dict[str, Any] = {"attn_implementation": "sdpa"} if sdpa else {}
    if num_labels is not None:
        labels = {int(k): v for k, v in (id2label or {}).items()}
        if len(labels) != num_labels:
            labels = {i: f"LABEL_{i}" for i in range(num_labels)}
        kwargs.update(num_labels=num_labels, id2label=labels, label2id={v: k for k, v in labels.items()})
    try:
        model = cls.from_pretrained(str(model_dir), **kwargs)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise BertTasksError(f"transformers cannot load this checkpoint ({shown(str(exc).splitlines()[0])})",
                             file=model_dir) from None
    for name, tensor in model.state_dict().items():
        check_weight(name, tensor, tensor.dtype, model_dir)
    return model


def _load_hf_pooled(folder: Folder, config: BertConfig, family: Family) -> nn.Module:
    """``--backend hf`` with a pooling of ours: transformers' encoder under our pooling and classifier."""
    encoder_config = {k: v for k, v in family.to_hf(config.to_hf_dict()).items() if k not in (POOLING_KEY, "model_type")}
    no_pooler = {"add_pooling_layer": False} if config.bare_pooler else {}  # ELECTRA's and DistilBERT's have none
    encoder = transformers.AutoModel.from_config(
        transformers.AutoConfig.for_model(config.model_type, **encoder_config, attn_implementation="sdpa"), **no_pooler)
    model = BertForSequenceClassification(config, encoder=encoder)
    weights = folder.state if folder.state is not None else read_state_dict(folder.path)
    state = {normalize_hf_key(k, family.prefix): v for k, v in weights.items()}
    model_dir = folder.path
    head_pairs = pooled_head_rows(config, family)
    head_names = {hf for hf, _ in head_pairs}
    encoder_state = {k: v for k, v in state.items() if k not in head_names and not k.startswith(("pooler.", "cls."))
                     and k.split(".")[0] not in HEAD_PREFIXES and not HF_REDUNDANT.match(k)}
    missing, unexpected = encoder.load_state_dict(encoder_state, strict=False)
    if unexpected or [k for k in missing if not k.endswith("position_ids")]:
        shown = ", ".join((unexpected or missing)[:3])
        raise BertTasksError(f"transformers' encoder does not match this checkpoint ({shown})", file=model_dir)
    head_state = hf_to_ours(head_pairs, state)
    fresh = sorted({ours.split(".")[0] for _, ours in head_pairs if ours not in head_state})
    if fresh:  # a new head or pooling (a trained one was checked by require_trained_head), as our encoder does
        log.warning("new %s weights initialised: the checkpoint has none", ", ".join(fresh))
    model.load_state_dict(head_state, strict=False)
    for name, tensor in model.state_dict().items():
        check_weight(name, tensor, tensor.dtype, model_dir)
    return model

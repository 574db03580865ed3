"""Checkpoint files: find a model folder (local, Hub or bundled), read and write it, in both directions.

Names are translated by the key table (:mod:`bert_tasks.keymap`) and each head's rows in the head
table (:mod:`bert_tasks.heads`). Anything the tables do not explain is an error, so a silently
ignored weight cannot happen.

Public API (kept stable):

* :func:`load_pretrained` — hub id, local folder or the bundled MiniLM -> our model
  (or the matching ``transformers`` model with ``backend="hf"``);
* :func:`save_pretrained` — our model -> a folder ``transformers`` loads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers
from huggingface_hub import snapshot_download
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save
from torch import nn

from .bundled import BUNDLED_NAMES, BUNDLED_SHA256, bundled_model_path, sha256_file  # noqa: F401 (re-exported)
from .errors import BertTasksError
from .families import FAMILIES, architecture, get_family, head_rows
from .heads import HEADS, Head, get_head, head_of
from .hub import require_hub
from .io import atomic_write_bytes, write_json
from .keymap import (HEAD_PREFIXES, HF_REDUNDANT, hf_parts, hf_to_ours, model_key_table, normalize_hf_key, ours_to_hf,
                     pooling_rows)
from .model import POOLING_KEY, BertConfig, BertForSequenceClassification, pooled_model_type, sinusoidal_table, unwrap
from .version import __version__

log = logging.getLogger(__name__)

BACKENDS = ("scratch", "hf")

# --------------------------------------------------------------------------- locating checkpoints


def resolve_model_dir(name_or_path: str | os.PathLike | None) -> Path:
    """A local folder for ``name_or_path``: the bundled MiniLM, a folder, or a Hub download."""
    if name_or_path is None or str(name_or_path).lower() in BUNDLED_NAMES:
        return bundled_model_path()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BertTasksError("no config.json in this folder; is it a Hugging Face model folder?", file=path)
        return path
    if path.exists():
        raise BertTasksError("expected a model folder, got a file", file=path)
    local = str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1
    if local or (len(path.parts) > 1 and Path(path.parts[0]).is_dir()):  # runs/sst2 with ./runs here: a local path
        raise BertTasksError("no such model folder", file=path)
    return _download_from_hub(str(name_or_path))


def _download_from_hub(repo_id: str) -> Path:
    require_hub(f"model {repo_id!r}")
    try:
        return Path(
            snapshot_download(
                repo_id,
                allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer*", "vocab.txt", "special_tokens_map.json"],
            )
        )
    except Exception as exc:  # offline, unknown id, or gated: all end the same way for the user
        raise BertTasksError(
            f"cannot get {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}); "
            "pass a local model folder, or use the bundled checkpoint with --model minilm"
        ) from None


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertTasksError(f"cannot read the model config ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise BertTasksError("the model config is not a JSON object", file=path)
    if not isinstance(data.get("model_type"), str):
        raise BertTasksError("the model config has no model_type", file=path)
    return data


def model_family(hf_config: dict[str, Any]) -> str:
    """The model type of the encoder a config describes: a pooled classifier of ours keeps it beside its pooling."""
    pooling = hf_config.get(POOLING_KEY)
    if isinstance(pooling, dict) and hf_config.get("model_type") == pooled_model_type(pooling.get("pooling")):
        return pooling.get("model_type", "bert")
    return hf_config["model_type"]


#: the weights file of a classifier with a pooling of ours: a name transformers does not read, so that no
#: transformers class loads the encoder with a random head instead (BertConfig.to_hf_dict)
POOLED_WEIGHTS = "bert_tasks_model.safetensors"


def weights_file(model_dir: Path) -> Path:
    """The folder's single safetensors file: ours for a pooled classifier, else transformers' name."""
    return model_dir / POOLED_WEIGHTS if (model_dir / POOLED_WEIGHTS).is_file() else model_dir / "model.safetensors"


def read_state_dict(model_dir: Path) -> dict[str, torch.Tensor]:
    """Weights from safetensors (one file or shards), else ``pytorch_model.bin`` without unpickling code."""
    single, index = weights_file(model_dir), model_dir / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BertTasksError(f"cannot read the shard index ({exc})", file=index) from None
        files = [model_dir / shard for shard in shards]
    elif (model_dir / "pytorch_model.bin").is_file():
        bin_path = model_dir / "pytorch_model.bin"
        try:
            state = torch.load(bin_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch's own message advises weights_only=False, which we never do
            raise BertTasksError(f"not a PyTorch checkpoint that loads without running code ({type(exc).__name__}); "
                                 "only plain tensors are accepted: convert it to model.safetensors", file=bin_path) from None
        return state.get("state_dict", state) if isinstance(state, dict) else state
    else:
        raise BertTasksError("no model.safetensors or pytorch_model.bin in the model folder", file=model_dir)
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(load_file(file))
        except (SafetensorError, OSError, ValueError) as exc:
            raise BertTasksError(f"truncated or corrupt safetensors file ({exc})", file=file) from None
    return state


# --------------------------------------------------------------------------- loading


def build_config(hf_config: dict[str, Any], num_labels: int | None, source: Any = None,
                 pooling: dict[str, str] | None = None) -> BertConfig:
    """Our config for a checkpoint's ``config.json``: its family's options set, ``pooling`` over its own."""
    family = get_family(model_family(hf_config), file=source)
    data = {**family.from_hf(hf_config), "model_type": family.model_type}
    if pooling is not None:  # a new head's pooling, over the checkpoint's own
        data.pop(POOLING_KEY, None)
        if pooling["pooling"] != "cls":
            data[POOLING_KEY] = {**pooling, "model_type": family.model_type}
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
    task: str | None = None,
    num_labels: int | None = None,
    backend: str = "scratch",
    *,
    trained_head: bool = False,
    pooling: dict[str, str] | None = None,
) -> nn.Module:
    """Load a BERT-family checkpoint into our encoder (``backend="scratch"``: BERT, RoBERTa, XLM-RoBERTa, ELECTRA,
    DistilBERT; :mod:`bert_tasks.families`), or any encoder into ``transformers``' own model class (``"hf"``).

    ``task`` picks the head (:data:`bert_tasks.heads.HEADS`): None (bare encoder), ``"squad"``,
    ``"glue"`` or ``"mlm"``. A head the checkpoint lacks is initialised and named in one log line;
    with ``trained_head`` (evaluation and prediction, where a random head would answer nonsense)
    it is an error instead, naming the model the folder does hold. ``pooling`` (``task="glue"``: the keys
    pooling, attention_score, attention_query) replaces the checkpoint's own pooling (BERT's "cls").
    """
    head = get_head(task)
    if backend not in BACKENDS:
        raise BertTasksError(f"unknown backend {backend!r}; choose scratch or hf")
    model_dir = resolve_model_dir(name_or_path)
    hf_config = read_config(model_dir)
    if pooling is not None and head.name != "glue":
        raise BertTasksError(f"pooling is for the sentence classification head (task glue), not {task}")
    if backend == "hf" and model_family(hf_config) not in FAMILIES:  # an encoder ours does not implement
        if pooling is not None and pooling["pooling"] != "cls":
            raise BertTasksError(f"pooling {pooling['pooling']} needs one of our encoders ({', '.join(FAMILIES)}); "
                                 f"this is a {model_family(hf_config)}", file=model_dir / "config.json")
        if trained_head and head.name is not None:
            require_trained_head(model_dir, head.name)
        return _load_hf(model_dir, head, num_labels if head.name == "glue" else None, hf_config.get("id2label"), sdpa=False)
    config = build_config(hf_config, num_labels if head.name == "glue" else None, source=model_dir / "config.json",
                          pooling=pooling)
    if head.name != "glue" and config.pooling != "cls":  # a pooled classifier's encoder, read for another head
        config.pooling = "cls"
    if trained_head and head.name is not None:
        require_trained_head(model_dir, head.name)
    if backend == "hf":
        if config.pooling != "cls":
            return _load_hf_pooled(model_dir, config)
        return _load_hf(model_dir, head, config.num_labels if head.name == "glue" else None, config.id2label, sdpa=True)
    model = head.model_class(config)
    load_hf_state_dict(model, read_state_dict(model_dir), head.name, source=model_dir)
    return model


def checkpoint_keys(model_dir: Path, prefix: str = "bert") -> set[str]:
    """The weight names a folder holds (normalized: without the encoder's ``prefix``), read without loading the
    tensors where the format allows."""
    single = weights_file(model_dir)
    if not single.is_file():  # shards or pytorch_model.bin: load them (read_state_dict checks them too)
        return {normalize_hf_key(k, prefix) for k in read_state_dict(model_dir)}
    try:
        with safe_open(str(single), framework="pt") as f:
            return {normalize_hf_key(k, prefix) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise BertTasksError(f"truncated or corrupt safetensors file ({exc})", file=single) from None


def require_trained_head(model_dir: str | os.PathLike, task: str) -> None:
    """Refuse a folder without ``task``'s trained head weights, naming the model it does hold.

    Evaluating or predicting with a freshly initialised head would answer nonsense without a word.
    """
    head = get_head(task)
    model_dir = resolve_model_dir(model_dir)
    config = read_config(model_dir)
    held = ", ".join(config.get("architectures") or []) or "a model without a recorded architecture"
    family = FAMILIES.get(model_family(config))
    if family is None:  # an encoder only transformers runs: its recorded class says which head it has
        if any(name.endswith(head.architecture.removeprefix("Bert")) for name in config.get("architectures") or []):
            return
    else:
        present = checkpoint_keys(model_dir, family.prefix)
        rows = list(head_rows(family, head))
        pooling = config.get(POOLING_KEY) if head.name == "glue" else None
        if isinstance(pooling, dict):  # a trained attention pooling is part of the trained head
            rows += pooling_rows(pooling.get("pooling", "cls"), pooling.get("attention_score", "additive"),
                                 pooling.get("attention_query", "learned"))
        if all(normalize_hf_key(hf, family.prefix) in present for hf, _ in rows):
            return
    raise BertTasksError(f"this folder holds {held}, with no trained {head.description} head ({head.architecture}); "
                         f"fine-tune one first (bert-tasks finetune ...)", file=model_dir)


def load_hf_state_dict(model: nn.Module, hf_state: dict[str, torch.Tensor], task: str | None, source: Any = None) -> None:
    """Copy a Hugging Face state dict into ``model`` through the key table; fail on anything unexplained."""
    head = get_head(task)
    config: BertConfig = model.config
    sinusoidal = config.position_embedding_type == "sinusoidal"
    pairs = model_key_table(head, config)
    prefix = get_family(config.model_type).prefix
    # each HF name -> (our name, its share of our tensor: parts of a fused entry are equal slices of dim 0)
    target_of = {normalize_hf_key(h, prefix): (ours, len(hf_parts(hf))) for hf, ours in pairs for h in hf_parts(hf)}

    normalized: dict[str, torch.Tensor] = {}
    for raw_key, tensor in hf_state.items():
        key = normalize_hf_key(raw_key, prefix)
        if key in normalized:
            raise BertTasksError(f"weight {raw_key!r} appears twice (with and without a prefix)", file=source)
        normalized[key] = tensor

    ours_state = model.state_dict()
    found: dict[str, torch.Tensor] = {}  # normalized HF name -> tensor, for names the table places
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
        full = ours_state[target].shape
        expected = (full[0] // parts, *full[1:])
        if tuple(tensor.shape) != tuple(expected):
            raise BertTasksError(
                f"shape mismatch for {key!r}: checkpoint {tuple(tensor.shape)}, config expects {tuple(expected)}",
                file=source,
            )
        found[key] = tensor
    normalized_pairs = [
        (tuple(normalize_hf_key(h, prefix) for h in hf) if isinstance(hf, tuple) else normalize_hf_key(hf, prefix), ours)
        for hf, ours in pairs
    ]
    loaded = hf_to_ours(normalized_pairs, found)  # a fused entry loads only when all its parts are present

    missing = {ours for _, ours in pairs if ours not in loaded}
    if sinusoidal:
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
    if unused_heads:
        log.info("ignored checkpoint heads not used by this task: %s", ", ".join(sorted(unused_heads)))
    model.load_state_dict(loaded, strict=False)


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
        return cls.from_pretrained(str(model_dir), **kwargs)
    except (OSError, ValueError, RuntimeError) as exc:
        raise BertTasksError(f"transformers cannot load this checkpoint ({str(exc).splitlines()[0]})", file=model_dir) from None


def _load_hf_pooled(model_dir: Path, config: BertConfig) -> nn.Module:
    """``--backend hf`` with a pooling of ours: transformers' encoder under our pooling and classifier."""
    family = get_family(config.model_type)
    encoder_config = {k: v for k, v in family.to_hf(config.to_hf_dict()).items() if k not in (POOLING_KEY, "model_type")}
    no_pooler = {"add_pooling_layer": False} if config.bare_pooler else {}  # ELECTRA's and DistilBERT's have none
    encoder = transformers.AutoModel.from_config(
        transformers.AutoConfig.for_model(config.model_type, **encoder_config, attn_implementation="sdpa"), **no_pooler)
    model = BertForSequenceClassification(config, encoder=encoder)
    state = {normalize_hf_key(k, family.prefix): v for k, v in read_state_dict(model_dir).items()}
    head_pairs = pooled_head_rows(config)
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
    return model


def pooled_head_rows(config: BertConfig) -> list[tuple[str, str]]:
    """(HF name, our name) of a pooled classifier's head over transformers' encoder (``--backend hf``)."""
    return list(head_rows(get_family(config.model_type), HEADS["glue"])) + pooling_rows(
        config.pooling, config.attention_score, config.attention_query)


# --------------------------------------------------------------------------- saving


def to_hf_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Our state dict (``state_dict``, or the model's own) under Hugging Face names (no tied copies),
    contiguous and on the CPU."""
    model = unwrap(model)
    head = head_of(model)
    config: BertConfig = model.config
    ours = model.state_dict() if state_dict is None else state_dict
    if isinstance(getattr(model, "bert", None), transformers.PreTrainedModel):  # --backend hf under our pooling
        prefix = get_family(config.model_type).prefix + "."
        out = {prefix + k.removeprefix("bert."): t for k, t in ours.items()  # transformers' encoder: its own names
               if k.startswith("bert.") and not k.endswith("position_ids")}
        out.update(ours_to_hf(pooled_head_rows(config), ours))
        return {k: t.detach().to("cpu").contiguous().clone() for k, t in out.items()}
    pairs = model_key_table(head, config)
    covered = {our_key for _, our_key in pairs}
    leftovers = [k for k in ours if k not in covered]
    if leftovers:
        raise BertTasksError(f"our model has weights the HF table does not cover: {', '.join(leftovers[:3])}")
    if config.position_embedding_type == "sinusoidal":
        for hf, our_key in pairs:
            if our_key.endswith("embeddings.position.weight"):
                ours[our_key] = sinusoidal_table(config.max_position_embeddings, config.hidden_size)
    out = ours_to_hf(pairs, ours)
    return {hf: tensor.detach().to("cpu").contiguous().clone() for hf, tensor in out.items()}


def save_pretrained(model: nn.Module, out_dir: str | os.PathLike, tokenizer: Any = None,
                    state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a Hugging Face model folder: ``config.json``, ``model.safetensors`` and the tokenizer.

    ``state_dict`` stands in for the model's own weights (a sharded model's, gathered whole)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inner = unwrap(model)
    if isinstance(inner, transformers.PreTrainedModel):  # --backend hf: its own saver, and our mark
        inner.save_pretrained(out_dir, state_dict=state_dict)
        config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
        write_json(out_dir / "config.json", {**config, "bert_tasks_version": __version__})
    else:
        head = head_of(inner)
        family = get_family(inner.config.model_type)
        config = inner.config.to_hf_dict()
        config["architectures"] = [architecture(family, head)]
        if head.name != "glue":
            for key in ("id2label", "label2id", "problem_type"):
                config.pop(key, None)
        pooling = config.pop(POOLING_KEY, None)
        config = family.to_hf({**config, "model_type": family.model_type})
        written = hf_config_json(config)
        weights = "model.safetensors"
        if pooling:  # transformers must refuse this folder, naming the pooling (BertConfig.to_hf_dict)
            written.update({"model_type": pooled_model_type(pooling["pooling"]), POOLING_KEY: pooling,
                            "architectures": [f"BertTasks{pooling['pooling'].capitalize()}PoolingForSequenceClassification"]})
            weights = POOLED_WEIGHTS
        atomic_write_bytes(out_dir / weights, save(to_hf_state_dict(inner, state_dict), metadata={"format": "pt"}))
        write_json(out_dir / "config.json", dict(sorted(written.items())))
        stale = out_dir / ("model.safetensors" if pooling else POOLED_WEIGHTS)  # a folder saved before with the other
        stale.unlink(missing_ok=True)
    if tokenizer is not None:
        save_tokenizer(tokenizer, out_dir)
    return out_dir


#: keys of a base checkpoint's config.json that describe that checkpoint's writer, not ours
STALE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "bert_tasks_version")


def hf_config_json(config: dict[str, Any]) -> dict[str, Any]:
    """``config.json`` as the installed transformers writes it, marked as written by bert-tasks.

    A loaded checkpoint's ``_name_or_path`` and ``transformers_version`` describe where it came
    from; the folder we write is a new model, so transformers itself fills in its version.
    """
    data = {k: v for k, v in config.items() if k not in STALE_CONFIG_KEYS and k != "model_type"}
    # what transformers' own save_pretrained writes for this model type
    written = transformers.AutoConfig.for_model(config.get("model_type", "bert"), **data).to_diff_dict()
    written.pop("_name_or_path", None)
    written["bert_tasks_version"] = __version__
    return dict(sorted(written.items()))


def save_tokenizer(tokenizer: Any, out_dir: Path) -> None:
    """The tokenizer's files, each written atomically into ``out_dir``."""
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".tokenizer.") as tmp:
        for path in tokenizer.save_pretrained(tmp):
            path = Path(path)
            if path.is_file():
                atomic_write_bytes(out_dir / path.name, path.read_bytes())


def max_tokens(config: Any) -> int | None:
    """The longest input a model's position table serves: ours, or a transformers config of any family."""
    if isinstance(config, BertConfig):
        return config.max_tokens
    positions = getattr(config, "max_position_embeddings", None)
    family = FAMILIES.get(getattr(config, "model_type", None))
    if positions is not None and family is not None and family.options.get("positions_from_padding"):
        positions -= config.pad_token_id + 1
    return positions


def check_vocab_fits(tokenizer: Any, config: Any, source: Any = None) -> None:
    """Refuse a tokenizer whose ids run past the model's embedding table (an IndexError mid-run otherwise)."""
    vocab_size = config["vocab_size"] if isinstance(config, dict) else config.vocab_size
    if len(tokenizer) > vocab_size:
        raise BertTasksError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only {vocab_size}; "
                             "use the tokenizer saved with the model", file=source)


def load_tokenizer(name_or_path: str | os.PathLike | None = None):
    """The fast tokenizer stored with a checkpoint (the bundled MiniLM by default)."""
    model_dir = resolve_model_dir(name_or_path)
    try:
        return transformers.AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    except (OSError, ValueError) as exc:
        raise BertTasksError(f"cannot load a tokenizer ({str(exc).splitlines()[0]})", file=model_dir) from None

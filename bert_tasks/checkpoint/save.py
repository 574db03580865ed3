"""Saving: our model -> a folder ``transformers`` loads (config.json as it writes it, safetensors, the tokenizer).

A classifier with a pooling of ours is saved so that transformers refuses it, naming the pooling, instead of
loading it with a random head (:meth:`bert_tasks.model.config.BertConfig.to_hf_dict`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors.torch import save
from torch import nn

from ..errors import BertTasksError
from ..io import atomic_write_bytes, write_json
from ..model.config import BertConfig
from ..model.families import get_family
from ..model.fast import sinusoidal_table, unwrap
from ..model.heads import head_of
from ..model.keymap import model_key_table, ours_to_hf, pooled_head_rows
from ..model.spec import POOLING_KEY
from ..version import __version__
from .files import POOLED_WEIGHTS


def to_hf_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Our state dict (``state_dict``, or the model's own) under Hugging Face names (no tied copies),
    contiguous and on the CPU."""
    model = unwrap(model)
    head = head_of(model)
    config: BertConfig = model.config
    ours = model.state_dict() if state_dict is None else state_dict
    family = get_family(config.model_type)
    if isinstance(getattr(model, "bert", None), transformers.PreTrainedModel):  # --backend hf under our pooling
        prefix = family.prefix + "."
        out = {prefix + k.removeprefix("bert."): t for k, t in ours.items()  # transformers' encoder: its own names
               if k.startswith("bert.") and not k.endswith("position_ids")}
        out.update(ours_to_hf(pooled_head_rows(config, family), ours))
        return {k: t.detach().to("cpu").contiguous().clone() for k, t in out.items()}
    pairs = model_key_table(head, config, family)
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
        config["architectures"] = [head.architecture_in(family)]
        if not head.labels:
            for key in ("id2label", "label2id", "problem_type"):
                config.pop(key, None)
        pooled = config.pop(POOLING_KEY, None) is not None
        config = family.to_hf({**config, "model_type": family.model_type})
        written = hf_config_json(config)
        weights = "model.safetensors"
        if pooled:  # transformers must refuse this folder, naming the pooling (BertConfig.to_hf_dict)
            pooling = inner.config.pooling_spec
            written.update({"model_type": pooling.model_type(), POOLING_KEY: pooling.to_json(family.model_type),
                            "architectures": [f"BertTasks{pooling.pooling.capitalize()}PoolingForSequenceClassification"]})
            weights = POOLED_WEIGHTS
        atomic_write_bytes(out_dir / weights, save(to_hf_state_dict(inner, state_dict), metadata={"format": "pt"}))
        write_json(out_dir / "config.json", dict(sorted(written.items())))
        stale = out_dir / ("model.safetensors" if pooled else POOLED_WEIGHTS)  # a folder saved before with the other
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

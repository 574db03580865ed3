"""A model folder's files, read without building a model: config.json, the weights (safetensors, shards, or a
``pytorch_model.bin`` read without unpickling code) and the weight names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from ..errors import BertTasksError, shown
from ..io import input_problem
from ..model.families import FAMILIES, Family
from ..model.keymap import normalize_hf_key
from ..model.spec import POOLED_WEIGHTS, POOLING_KEY, Pooling, pooled_model_type, read_pooling_json
from .locate import resolve_model_dir


@dataclass
class Folder:
    """A model folder as read once: where it is, its config.json, its encoder's family (None: a type only
    transformers runs), the pooling its classifier was saved with, and, when asked for, its weights' names
    (normalized, without the encoder's prefix) and the weights themselves."""

    path: Path
    config: dict[str, Any]
    model_type: str
    family: Family | None
    pooling: Pooling | None
    keys: set[str] | None = None
    state: dict[str, torch.Tensor] | None = None

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"


def read_folder(name_or_path: Any, *, keys: bool = False, weights: bool = False) -> Folder:
    """Find and read a model folder once; ``keys``: its weight names too, ``weights``: its tensors too."""
    path = resolve_model_dir(name_or_path)
    config = read_config(path)
    model_type = model_family(config)
    family = FAMILIES.get(model_type)
    folder = Folder(path, config, model_type, family, folder_pooling(config))
    if keys and family is not None:
        folder.keys = checkpoint_keys(path, family.prefix)
    if weights and family is not None:  # a type only transformers runs: its loader reads them
        folder.state = read_state_dict(path)
    return folder


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    problem = input_problem(path)
    if problem is not None:
        raise BertTasksError(f"the model config {problem}", file=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BertTasksError(f"cannot read the model config ({shown(str(exc))})", file=path) from None
    except RecursionError:
        raise BertTasksError("the model config is JSON nested too deeply", file=path) from None
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


def folder_pooling(hf_config: dict[str, Any]) -> Pooling | None:
    """The pooling a folder's classifier was saved with (None: BERT's own, or none recorded)."""
    try:
        return read_pooling_json(hf_config[POOLING_KEY])[0] if hf_config.get(POOLING_KEY) else None
    except (TypeError, ValueError):
        return None


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
        if (model_dir / "model.onnx").is_file():  # `bert-tasks export` keeps the graph, not the PyTorch weights
            raise BertTasksError("an ONNX export folder (model.onnx) holds no PyTorch weights: predict takes it; "
                                 "eval, fine-tune and plot the trained folder it was exported from", file=model_dir)
        raise BertTasksError("no model.safetensors or pytorch_model.bin in the model folder", file=model_dir)
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(load_file(file))
        except (SafetensorError, OSError, ValueError) as exc:
            raise BertTasksError(f"truncated or corrupt safetensors file ({exc})", file=file) from None
    return state


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

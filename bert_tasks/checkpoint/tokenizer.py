"""A model's tokenizer, and the checks that it fits the model: its vocabulary, and the positions it serves."""

from __future__ import annotations

import os
from typing import Any

import transformers

from ..errors import BertTasksError
from ..model.config import BertConfig
from ..model.families import FAMILIES
from .locate import resolve_model_dir


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

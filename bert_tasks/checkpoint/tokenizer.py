"""A model's tokenizer, and the checks that it fits the model: its vocabulary, and the positions it serves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import transformers

from ..errors import BertTasksError, shown
from ..io import input_problem
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
    """Refuse a tokenizer whose ids run past the model's embedding table (an IndexError mid-run otherwise), or
    that covers under a tenth of it: not the model's own tokenizer (an empty one, built from a folder without
    tokenizer files, has 5 tokens for BERT's 30522 rows: every word would be [UNK])."""
    vocab_size = config["vocab_size"] if isinstance(config, dict) else config.vocab_size
    if len(tokenizer) > vocab_size:
        raise BertTasksError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary only {vocab_size}; "
                             "use the tokenizer saved with the model", file=source)
    if 10 * len(tokenizer) < vocab_size:
        raise BertTasksError(f"the tokenizer has {len(tokenizer)} tokens for a model vocabulary of {vocab_size}: it is "
                             "not this model's tokenizer; pass the right one (--tokenizer, or copy its files into the "
                             "model folder)", file=source)


#: the files one of which holds a tokenizer's vocabulary (fast tokenizers, WordPiece, BPE, SentencePiece)
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
                    "tokenizer.model")


def check_tokenizer_files(model_dir: Path) -> None:
    """A folder without any vocabulary file would load as an empty tokenizer (every word [UNK]) without a word;
    a tokenizer file that is a FIFO or a folder would hang or crash the load."""
    present = [name for name in (*VOCABULARY_FILES, "tokenizer_config.json", "special_tokens_map.json", "merges.txt")
               if (model_dir / name).exists() or (model_dir / name).is_symlink()]
    for name in present:
        problem = input_problem(model_dir / name)
        if problem is not None:
            raise BertTasksError(f"the tokenizer file {problem}", file=model_dir / name)
    if not any(name in VOCABULARY_FILES for name in present):
        raise BertTasksError(f"no tokenizer in this model folder (none of {', '.join(VOCABULARY_FILES[:2])}, ...): "
                             "pass --tokenizer, or copy the tokenizer files of the model it came from into it",
                             file=model_dir)


def load_tokenizer(name_or_path: str | os.PathLike | None = None):
    """The fast tokenizer stored with a checkpoint (the bundled MiniLM by default)."""
    local = Path(name_or_path).expanduser() if name_or_path is not None else None
    # a tokenizer folder (--tokenizer) needs no config.json; a model name or Hub id is found as a model is
    model_dir = local if local is not None and local.is_dir() else resolve_model_dir(name_or_path)
    check_tokenizer_files(model_dir)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds for a broken file; each is the folder's
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise BertTasksError(f"cannot load a tokenizer ({type(exc).__name__}: {shown(first)})", file=model_dir) from None
    if tokenizer.cls_token_id is None and tokenizer.bos_token_id is None:
        raise BertTasksError("the tokenizer has no special tokens ([CLS]/<s>): not a BERT-family tokenizer; pass "
                             "--tokenizer, or copy the model's own tokenizer files", file=model_dir)
    return tokenizer

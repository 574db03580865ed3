"""WordPiece vocabulary training, and loading the tokenizer an MLM run uses.

:func:`train_wordpiece` builds a BERT-style tokenizer from raw text with the
``tokenizers`` library and wraps it as ``transformers``' BERT fast tokenizer,
so ``save_pretrained`` writes a folder that ``AutoTokenizer.from_pretrained``
reloads unchanged (and, for tools that read it, a ``vocab.txt``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece
from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerFast

from ...checkpoint.tokenizer import check_tokenizer_files
from ...errors import BertTasksError
from ...io import atomic_write_text, write_json
from .config import SPECIAL_TOKENS, MlmDataConfig

PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
CONTINUATION_PREFIX = "##"
# Rarer characters than the 1000 most frequent become [UNK] instead of crowding out real subwords.
ALPHABET_LIMIT = 1000
DEFAULT_MODEL_MAX_LENGTH = 512


class BertTokenizerWithVocab(BertTokenizer):
    """transformers' BERT fast tokenizer that also writes ``vocab.txt`` when saved.

    ``tokenizer_config.json`` records the parent's class name, so the folder
    loads with plain ``AutoTokenizer`` and needs nothing from this package.
    """

    def save_pretrained(self, save_directory, *args, **kwargs):
        # the last call's truncation/padding linger in the backend and would be saved as defaults;
        # transformers sets them afresh on every call, so dropping them changes nothing here
        self.backend_tokenizer.no_truncation()
        self.backend_tokenizer.no_padding()
        files = super().save_pretrained(save_directory, *args, **kwargs)
        config_file = Path(save_directory) / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        write_json(config_file, {**config, "tokenizer_class": BertTokenizer.__name__})
        vocab = self.get_vocab()
        vocab_file = Path(save_directory) / "vocab.txt"
        atomic_write_text(vocab_file, "".join(f"{token}\n" for token in sorted(vocab, key=vocab.__getitem__)))
        return (*files, str(vocab_file))


def train_wordpiece(
    text_iterator: Iterable[str] | Iterable[list[str]],
    *,
    vocab_size: int,
    lowercase: bool = True,
    min_frequency: int = 2,
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
) -> PreTrainedTokenizerFast:
    """Learn a WordPiece vocabulary of at most ``vocab_size`` entries; [PAD] gets id 0.

    ``text_iterator`` yields strings or batches (lists) of strings.
    """
    if vocab_size <= len(SPECIAL_TOKENS):
        raise BertTasksError(f"vocab_size {vocab_size} leaves no room beside the {len(SPECIAL_TOKENS)} special tokens {' '.join(SPECIAL_TOKENS)}")
    backend = Tokenizer(WordPiece(unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        limit_alphabet=ALPHABET_LIMIT,
        continuing_subword_prefix=CONTINUATION_PREFIX,
        show_progress=False,
    )
    backend.train_from_iterator(text_iterator, trainer)
    learned = backend.get_vocab_size()
    if learned == len(SPECIAL_TOKENS):
        raise BertTasksError("no text to train the WordPiece vocabulary on")
    if learned > vocab_size:
        raise BertTasksError(
            f"vocab_size {vocab_size} is too small: the {len(SPECIAL_TOKENS)} special tokens and the corpus's characters "
            f"(alone and as '{CONTINUATION_PREFIX}' continuations) already need {learned} entries"
        )
    vocab = _canonical_vocab(backend.get_vocab())
    backend.model = WordPiece(vocab, unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX)
    backend.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    backend.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
    return BertTokenizerWithVocab(
        tokenizer_object=backend,
        do_lower_case=lowercase,
        strip_accents=None,
        model_max_length=model_max_length,
        **dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIAL_TOKENS)),
    )


def _canonical_vocab(vocab: dict[str, int]) -> dict[str, int]:
    """The learned vocabulary with its characters in sorted order.

    The trainer lists the alphabet in hash-map order, which differs from run to
    run; sorting it gives the same ids for the same text. Learned subwords keep
    their order, and the special tokens stay first.
    """
    learned = sorted(vocab, key=vocab.__getitem__)
    specials, rest = learned[: len(SPECIAL_TOKENS)], learned[len(SPECIAL_TOKENS) :]

    def is_char(token: str) -> bool:
        return len(token.removeprefix(CONTINUATION_PREFIX)) == 1

    chars = sorted((t for t in rest if is_char(t)), key=lambda t: (t.startswith(CONTINUATION_PREFIX), t))
    ordered = specials + chars + [t for t in rest if not is_char(t)]
    return {token: i for i, token in enumerate(ordered)}


def iter_text_batches(dataset, batch_size: int = 1000, column: str = "text") -> Iterator[list[str]]:
    """Batches of a (streaming or not) dataset's text column, for tokenizer training."""
    for batch in dataset.iter(batch_size=batch_size):
        yield batch[column]


def load_or_train_tokenizer(cfg: MlmDataConfig, train_split=None) -> PreTrainedTokenizerFast:
    """The tokenizer named by ``cfg.tokenizer``, or a new WordPiece vocabulary trained on ``train_split``."""
    if cfg.tokenizer is None:
        if train_split is None:
            raise ValueError("training a tokenizer needs the training split")
        return train_wordpiece(
            iter_text_batches(train_split),
            vocab_size=cfg.vocab_size,
            lowercase=cfg.lowercase,
            min_frequency=cfg.min_frequency,
            model_max_length=max(cfg.max_seq_length, DEFAULT_MODEL_MAX_LENGTH),
        )
    return load_tokenizer(cfg.tokenizer)


def load_tokenizer(name_or_path: str | os.PathLike) -> PreTrainedTokenizerFast:
    """A fast tokenizer with a mask token; word boundaries for whole-word masking need the fast one."""
    if Path(name_or_path).is_dir():
        check_tokenizer_files(Path(name_or_path))  # an empty folder would give an empty tokenizer, not an error
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError, AttributeError, TypeError) as err:
        where = "folder" if Path(name_or_path).exists() else "Hub id (the Hub is unreachable offline)"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BertTasksError(f"cannot load the tokenizer from this {where}: {reason}", file=name_or_path) from None
    if not getattr(tokenizer, "is_fast", False):
        raise BertTasksError("tokenizer is not a fast (tokenizers-backed) tokenizer; MLM preprocessing needs word boundaries", file=name_or_path)
    if tokenizer.mask_token_id is None:
        raise BertTasksError("tokenizer has no mask token, so it cannot be used for masked-LM training", file=name_or_path)
    return tokenizer

"""The parts of a masked-LM run only pretraining has: its tokenizer, streamed corpora, and masks that resume.

The run template (:func:`bert_tasks.runner.train`) does the rest; :class:`~.task.MlmTask`'s hooks call these.

Tokenizer: the one already saved in the output folder (a resumed run never retrains it), else
``data.tokenizer``, else the checkpoint's own (continued pretraining), else a WordPiece vocabulary
trained on the training split. It is saved into the run folder at once.

Masks and exact resume: no masking state is checkpointed. Each training batch's masks come from a
generator seeded with (seed, epoch, position of the batch in the epoch), and the batches themselves
are a function of (seed, epoch) (``train.EpochBatchSampler``), so a resumed run rebuilds the masks
it would have drawn from ``trainer_state.json`` alone. (Saving the collator's generator would not
do: Accelerate's loader collates one batch ahead, so the saved state would be a batch early.)
This needs collation in the training process, so ``dataloader_workers`` is 0 for MLM (its
settle says so); collating is cheap next to the forward pass since tokenizing happens once.
Evaluation masks are fixed per sample by ``data.eval_mask_seed`` (see ``masking.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Any

import datasets
from datasets.fingerprint import Hasher

from ...checkpoint.locate import resolve_model_dir
from ...checkpoint.save import save_tokenizer
from ...training.checkpoints import STATE_FILE
from .config import MlmDataConfig
from .tokenizer import load_or_train_tokenizer, load_tokenizer

#: a streamed corpus trains its WordPiece vocabulary on this many leading documents, not the whole stream
STREAMING_TOKENIZER_DOCUMENTS = 200_000
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")
MATERIALIZE_VERSION = 1


def run_tokenizer(recipe: Any, train_split: Any, output_dir: Path, accelerator: Any):
    """The run's tokenizer: reused from the output folder when there, else loaded or trained and saved at once.

    The main process goes first, so other processes load what it saved instead of training again.
    """
    cfg: MlmDataConfig = recipe.data
    with accelerator.main_process_first():
        if all((output_dir / name).is_file() for name in TOKENIZER_FILES):
            return load_tokenizer(output_dir)
        source = cfg.tokenizer or recipe.model.tokenizer
        if source is None and not recipe.model.preset:
            source = str(resolve_model_dir(recipe.model.name_or_path))  # continued pretraining keeps its vocabulary
        if source is not None:
            tokenizer = load_tokenizer(source)
        else:
            if isinstance(train_split, datasets.IterableDataset):
                train_split = train_split.take(STREAMING_TOKENIZER_DOCUMENTS)
            tokenizer = load_or_train_tokenizer(cfg, train_split)
            print(f"trained a WordPiece vocabulary of {len(tokenizer)} tokens", flush=True)
        if accelerator.is_main_process:
            save_tokenizer(tokenizer, output_dir)
    return tokenizer


def materialize(features: Any, cfg: MlmDataConfig, tokenizer: Any, *, train: bool, limit: int | None = None):
    """A streamed split written to an on-disk Arrow dataset: the loop samples by index (train.EpochBatchSampler).

    A streamed training split stops at ``limit`` sequences (what ``max_steps`` can consume), so a long
    corpus is read and tokenized only as far as the run needs. The sequences go to the datasets cache
    on disk, not to memory, keyed by the settings and text.
    """
    if not isinstance(features, datasets.IterableDataset):
        return features
    files = [(f, *_stat(f)) for f in [*cfg.train_files, *([cfg.validation_file] if cfg.validation_file else [])]]
    key = Hasher.hash([MATERIALIZE_VERSION, cfg.__dict__, files, tokenizer.backend_tokenizer.to_str(), train, limit])
    return datasets.Dataset.from_generator(_take, features=features.features, gen_kwargs={"stream": features, "limit": limit},
                                           fingerprint=key)


def _take(stream, limit):
    yield from itertools.islice(iter(stream), limit)


def _stat(path: str) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


class EpochPositionMasking:
    """Training collate: the masking collator, its generator reseeded from (seed, epoch, batch position).

    ``train.fit`` collates the batches of each epoch in order, once each, in this process; this
    object counts them, so batch ``i`` of epoch ``e`` always gets the same masks, a different
    epoch gets fresh ones, and :meth:`resume_from` restarts the count at a checkpoint's position.
    Under several processes each one collates every ``num_processes``-th batch (Accelerate's
    sharding, last batches evened out), which the position accounts for.
    """

    def __init__(self, collator, *, seed: int, num_examples: int, batch_size: int, num_processes: int = 1,
                 process_index: int = 0):
        self.collator = collator
        self.seed = seed
        self.num_processes = num_processes
        self.process_index = process_index
        batches = math.ceil(num_examples / batch_size)
        self.local_per_epoch = max(1, math.ceil(batches / num_processes))
        self.count = 0

    def resume_from(self, state: dict[str, Any] | None) -> None:
        if state:
            local_in_epoch = state["micro_in_epoch"] // self.num_processes
            self.count = state["epoch"] * self.local_per_epoch + local_in_epoch

    def resume_from_checkpoint(self, checkpoint: Path | None) -> None:
        if checkpoint is not None:
            self.resume_from(json.loads((Path(checkpoint) / STATE_FILE).read_text()))

    def position(self) -> tuple[int, int]:
        epoch, local = divmod(self.count, self.local_per_epoch)
        return epoch, local * self.num_processes + self.process_index

    def __call__(self, features):
        epoch, index = self.position()
        digest = hashlib.blake2b(f"{self.seed}/{epoch}/{index}".encode(), digest_size=8).digest()
        self.collator.generator.manual_seed(int.from_bytes(digest, "little") >> 1)
        self.count += 1
        return self.collator(features)


def corpus_name(cfg: MlmDataConfig) -> str:
    if cfg.dataset:
        return cfg.dataset + (f" ({cfg.dataset_config})" if cfg.dataset_config else "")
    return ", ".join(Path(f).name for f in cfg.train_files)

"""Masked-LM pretraining orchestration: text in, a Hugging Face ``BertForMaskedLM`` folder out.

:func:`pretrain_mlm` runs, in order, so that bad input fails before expensive work:

1. cheap checks (a model source; ``max_seq_length`` within a preset's or local checkpoint's positions);
   ``--dry-run`` prints the resolved recipe here and stops, writing nothing;
2. the corpus (:func:`~.corpus.load_corpus`: files, JSON Lines, a Hub dataset, streamed or not),
   read before the output folder is touched, so an empty or non-UTF-8 corpus leaves no folder behind;
3. the output folder (``runner.start_run``), then the tokenizer: the one already saved there (a resumed
   run never retrains it), else ``data.tokenizer``, else the checkpoint's own (continued pretraining),
   else a WordPiece vocabulary trained on the training split. It is saved at once, so a run cut off
   before its first checkpoint still resumes with the same vocabulary;
4. the model: a fresh preset sized to the tokenizer's vocabulary, or the checkpoint (its MLM head
   initialised when the checkpoint has none);
5. packing or line-by-line sequences, ``train.fit`` with an evaluation callback, ``runner.finish_run``.

Masks and exact resume: no masking state is checkpointed. Each training batch's masks come from a
generator seeded with (seed, epoch, position of the batch in the epoch), and the batches themselves
are a function of (seed, epoch) (``train.EpochBatchSampler``), so a resumed run rebuilds the masks
it would have drawn from ``trainer_state.json`` alone. (Saving the collator's generator would not
do: Accelerate's loader collates one batch ahead, so the saved state would be a batch early.)
This needs collation in the training process, so ``dataloader_workers`` is set to 0 for MLM;
collating is cheap next to the forward pass since tokenizing happens once, up front.
Evaluation masks are fixed per sample by ``data.eval_mask_seed`` (see ``masking.py``), so every
evaluation scores the same corrupted tokens.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from pathlib import Path
from typing import Any

from ...config import Recipe
from ...errors import BertTasksError
from .config import MlmDataConfig

log = logging.getLogger(__name__)

#: the command's own defaults, below any recipe: pretraining from scratch, not MiniLM fine-tuning
MLM_DEFAULTS: dict[str, Any] = {
    "model.name_or_path": None,
    "model.preset": "mini",
    "train.learning_rate": 5e-4,  # small BERTs from scratch want far more than fine-tuning's 2e-5
    "train.batch_size": 32,
    "train.warmup_ratio": 0.06,
    "train.weight_decay": 0.01,
    "train.eval_batch_size": 64,
    "train.epochs": 1.0,
}
#: a streamed corpus trains its WordPiece vocabulary on this many leading documents, not the whole stream
STREAMING_TOKENIZER_DOCUMENTS = 200_000
#: the positions a fresh preset gets (BertConfig's default)
PRESET_POSITIONS = 512
TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


def pretrain_mlm(recipe: Recipe, *, overwrite: bool = False, resume_from: str | None = None,
                 dry_run: bool = False) -> dict[str, Any]:
    """Pretrain (or continue pretraining) a masked LM; returns the held-out metrics."""
    from accelerate.utils import set_seed

    from ...runner import announce_training, build_model, finish_run, print_summary, start_run
    from ...train import fit
    from .corpus import load_corpus
    from .task import MlmTask

    cfg: MlmDataConfig = recipe.data
    _check_model_source(recipe)
    _check_positions(recipe, _known_positions(recipe))
    if dry_run:
        start_run(recipe, dry_run=True)
        return {}
    corpus = load_corpus(cfg)
    if recipe.train.dataloader_workers:
        log.warning("dataloader_workers ignored: MLM masks are drawn in the training process (see tasks/mlm/run.py)")
        recipe.train.dataloader_workers = 0
    run = start_run(recipe, overwrite=overwrite, resume_from=resume_from)
    accelerator = run.accelerator
    tokenizer = _run_tokenizer(recipe, corpus["train"], run.output_dir, accelerator)

    set_seed(recipe.train.seed)  # the fresh model's initial weights follow the seed too
    model = build_model(recipe, "mlm", vocab_size=len(tokenizer), resuming=run.resume_from is not None)
    _check_model_fits(model, tokenizer, cfg, recipe)

    task = MlmTask(seed=recipe.train.seed)
    train_features = task.preprocess(corpus["train"], tokenizer, cfg, train=True)
    eval_features = task.preprocess(corpus["validation"], tokenizer, cfg, train=False)
    train_features = _materialize(train_features, recipe, tokenizer, train=True)
    eval_features = _materialize(eval_features, recipe, tokenizer, train=False)
    if len(eval_features) == 0:
        raise BertTasksError("the validation split holds no text; give a validation_file or raise validation_split")

    masking = EpochPositionMasking(task.train_collator, seed=recipe.train.seed, num_examples=len(train_features),
                                   batch_size=recipe.train.batch_size, num_processes=accelerator.num_processes,
                                   process_index=accelerator.process_index)
    masking.resume_from(_resume_state(run.resume_from, run.output_dir))
    evaluate = _evaluator(task, eval_features, recipe.train.eval_batch_size)
    announce_training(run)
    result = fit(model, task, train_features, recipe.train, run.output_dir, evaluate=evaluate,
                 resume_from=run.resume_from, accelerator=accelerator, collate=masking,
                 run_config=recipe.to_dict())
    metrics = dict(result.eval_history[-1]) if result.eval_history else {}
    metrics.pop("step", None)
    metrics["eval_samples"] = len(eval_features)
    card = {"dataset_name": _corpus_name(cfg), "dataset_type": "text"}
    if "eval_tokens" in metrics:
        card["eval_set"] = (f"{metrics['eval_tokens']} masked tokens of {len(eval_features)} held-out sequences"
                            f" (masks fixed by eval_mask_seed {cfg.eval_mask_seed})")
    finish_run(run, model, tokenizer, metrics, result, card=card)
    print_summary(f"mlm ({run.output_dir})", {**metrics, "steps": result.global_step})
    return metrics


# --------------------------------------------------------------------------- checks


def _check_model_source(recipe: Recipe) -> None:
    if not recipe.model.preset and not recipe.model.name_or_path:
        raise BertTasksError("no model: set model.preset (e.g. --preset tiny) to pretrain from scratch, "
                             "or --model to continue pretraining a checkpoint")


def _known_positions(recipe: Recipe) -> tuple[int | None, str]:
    """The model's position count when it is known without loading weights (a preset or a local folder)."""
    if recipe.model.preset:
        return PRESET_POSITIONS, f"the '{recipe.model.preset}' preset"
    from ...checkpoint import BUNDLED_NAMES, bundled_model_path

    name = str(recipe.model.name_or_path)
    folder = bundled_model_path(verify=False) if name.lower() in BUNDLED_NAMES else Path(name).expanduser()
    config = folder / "config.json"
    if not config.is_file():
        return None, name  # a Hub id: checked once the model is loaded
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["max_position_embeddings"]), str(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None, str(folder)  # load_pretrained reports a broken config with its own message


def _check_positions(recipe: Recipe, known: tuple[int | None, str]) -> None:
    positions, where = known
    if positions is not None and recipe.data.max_seq_length > positions:
        raise BertTasksError(f"max_seq_length {recipe.data.max_seq_length} is above the {positions} positions of "
                             f"{where}; lower --max-seq-length", record="key max_seq_length")


def _check_model_fits(model, tokenizer, cfg: MlmDataConfig, recipe: Recipe) -> None:
    from ...checkpoint import check_vocab_fits

    config = model.config
    _check_positions(recipe, (config.max_position_embeddings, recipe.model.name_or_path or "the model"))
    check_vocab_fits(tokenizer, config, source=recipe.model.name_or_path)


# --------------------------------------------------------------------------- tokenizer


def _run_tokenizer(recipe: Recipe, train_split, output_dir: Path, accelerator):
    """The run's tokenizer: reused from the output folder when there, else loaded or trained and saved at once.

    The main process goes first, so other processes load what it saved instead of training again.
    """
    from ...checkpoint import _save_tokenizer, resolve_model_dir
    from .tokenizer import load_or_train_tokenizer, load_tokenizer

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
            if isinstance(train_split, _iterable_type()):
                train_split = train_split.take(STREAMING_TOKENIZER_DOCUMENTS)
            tokenizer = load_or_train_tokenizer(cfg, train_split)
            print(f"trained a WordPiece vocabulary of {len(tokenizer)} tokens", flush=True)
        if accelerator.is_main_process:
            _save_tokenizer(tokenizer, output_dir)
    return tokenizer


def _iterable_type():
    import datasets

    return datasets.IterableDataset


# --------------------------------------------------------------------------- data


def _materialize(features, recipe: Recipe, tokenizer, *, train: bool):
    """A streamed split written to an on-disk Arrow dataset: the loop samples by index (train.EpochBatchSampler).

    A streamed training split stops at what ``max_steps`` can consume, so a long corpus is read
    (and tokenized) only as far as the run needs; without ``max_steps`` the whole stream is kept.
    The sequences go to the datasets cache on disk, not to memory, keyed by the settings and text.
    """
    import datasets
    from datasets.fingerprint import Hasher

    if not isinstance(features, datasets.IterableDataset):
        return features
    limit = None
    if train and recipe.train.max_steps:
        limit = recipe.train.max_steps * recipe.train.batch_size * recipe.train.gradient_accumulation_steps
    cfg: MlmDataConfig = recipe.data
    files = [(f, *_stat(f)) for f in [*cfg.train_files, *([cfg.validation_file] if cfg.validation_file else [])]]
    key = Hasher.hash([MATERIALIZE_VERSION, recipe.data.__dict__, files, tokenizer.backend_tokenizer.to_str(), train, limit])
    return datasets.Dataset.from_generator(_take, features=features.features, gen_kwargs={"stream": features, "limit": limit},
                                           fingerprint=key)


MATERIALIZE_VERSION = 1


def _take(stream, limit):
    yield from itertools.islice(iter(stream), limit)


def _stat(path: str) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def _resume_state(resume_from: str | None, output_dir: Path) -> dict[str, Any] | None:
    from ...train import STATE_FILE, resolve_resume

    found = resolve_resume(resume_from, output_dir)
    return None if found is None else json.loads((found / STATE_FILE).read_text())


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

    def position(self) -> tuple[int, int]:
        epoch, local = divmod(self.count, self.local_per_epoch)
        return epoch, local * self.num_processes + self.process_index

    def __call__(self, features):
        epoch, index = self.position()
        digest = hashlib.blake2b(f"{self.seed}/{epoch}/{index}".encode(), digest_size=8).digest()
        self.collator.generator.manual_seed(int.from_bytes(digest, "little") >> 1)
        self.count += 1
        return self.collator(features)


def _evaluator(task, eval_features, batch_size: int):
    """fit's ``evaluate`` callback: loss, perplexity and masked-token accuracy with fixed masks."""
    from torch.utils.data import DataLoader

    from ...train import EpochBatchSampler, feature_lengths
    from .task import evaluate_mlm

    sampler = EpochBatchSampler(feature_lengths(eval_features), batch_size, seed=0, sort=True)
    loader = DataLoader(eval_features, batch_sampler=sampler, collate_fn=task.eval_collate)
    prepared: dict[str, Any] = {}

    def evaluate(model, accelerator) -> dict[str, Any]:
        # prepared on first use, after fit's own loader, so checkpoints list the loaders in one order
        if "loader" not in prepared:
            prepared["loader"] = accelerator.prepare_data_loader(loader) if accelerator.num_processes > 1 else loader
        return evaluate_mlm(model, prepared["loader"], accelerator if accelerator.num_processes > 1 else None)

    return evaluate


def _corpus_name(cfg: MlmDataConfig) -> str:
    if cfg.dataset:
        return cfg.dataset + (f" ({cfg.dataset_config})" if cfg.dataset_config else "")
    return ", ".join(Path(f).name for f in cfg.train_files)

"""`pretrain mlm`: parse, resolve the recipe, call tasks/mlm/run.py."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import options as o
from .app import pretrain_app

TrainFile = Annotated[Optional[list[str]], typer.Option("--train-file", help="Plain text (one document a line) or JSON Lines with a 'text' field; repeatable.")]
ValidationFile = Annotated[Optional[str], typer.Option("--validation-file", help="Held-out text; default: the first --validation-split of the documents.")]
ValidationSplit = Annotated[Optional[float], typer.Option("--validation-split", help="Share of the documents held out for evaluation (default 0.01).")]
Dataset = Annotated[Optional[str], typer.Option("--dataset", help="A Hub dataset id (needs a network or a cache), instead of --train-file.")]
DatasetConfig = Annotated[Optional[str], typer.Option("--dataset-config", help="The Hub dataset's configuration, e.g. wikitext-103-raw-v1.")]
TextColumn = Annotated[Optional[str], typer.Option("--text-column", help="Field or column holding the text (default 'text').")]
Streaming = Annotated[Optional[bool], typer.Option("--streaming/--no-streaming", help="Read the corpus lazily; with --max-steps only as far as training needs.")]
Tokenizer = Annotated[Optional[str], typer.Option("--tokenizer", help="Tokenizer folder or Hub id; default: train WordPiece on the corpus (or the --model's own).")]
VocabSize = Annotated[Optional[int], typer.Option("--vocab-size", help="Size of the WordPiece vocabulary to train (default 8192).")]
Lowercase = Annotated[Optional[bool], typer.Option("--lowercase/--no-lowercase", help="Lowercase text in the trained tokenizer (default: lowercase).")]
MaxSeqLength = Annotated[Optional[int], typer.Option("--max-seq-length", help="Tokens per sequence, [CLS] and [SEP] included (default 128).")]
LineByLine = Annotated[Optional[bool], typer.Option("--line-by-line/--packing", help="One sequence per line instead of packing documents into full sequences.")]
MlmProbability = Annotated[Optional[float], typer.Option("--mlm-probability", help="Share of tokens predicted (default 0.15; 80% [MASK], 10% random, 10% kept).")]
WholeWord = Annotated[Optional[bool], typer.Option("--whole-word-masking/--token-masking", help="Mask every piece of a chosen word together.")]
MaxEval = Annotated[Optional[int], typer.Option("--max-eval-samples", help="Evaluate on the first N held-out sequences only.")]
Preset = Annotated[Optional[str], typer.Option("--preset", help="Fresh model size: tiny, mini, small, medium, base or large.")]
PositionType = Annotated[Optional[str], typer.Option("--position-embedding-type", help="absolute (learned) or sinusoidal; fresh models only.")]
Scheduler = Annotated[Optional[str], typer.Option("--lr-scheduler", help="linear, cosine or constant decay after warmup.")]
WarmupRatio = Annotated[Optional[float], typer.Option("--warmup-ratio", help="Share of the steps spent warming the learning rate up.")]

#: recipe key for each MLM flag
DATA_KEYS = {
    "train_file": "data.train_files",
    "validation_file": "data.validation_file",
    "validation_split": "data.validation_split",
    "dataset": "data.dataset",
    "dataset_config": "data.dataset_config",
    "text_column": "data.text_column",
    "streaming": "data.streaming",
    "tokenizer": "data.tokenizer",
    "vocab_size": "data.vocab_size",
    "lowercase": "data.lowercase",
    "max_seq_length": "data.max_seq_length",
    "line_by_line": "data.line_by_line",
    "mlm_probability": "data.mlm_probability",
    "whole_word_masking": "data.whole_word_masking",
    "max_eval_samples": "data.max_eval_samples",
    "preset": "model.preset",
    "position_embedding_type": "model.position_embedding_type",
    "lr_scheduler": "train.lr_scheduler",
    "warmup_ratio": "train.warmup_ratio",
}


def _resets(values: dict) -> list[str]:
    """What a flag replaces in the recipe rather than clashing with: the other text source, the other model source."""
    resets = []
    if values.get("train_file"):
        resets += ["data.dataset=null", "data.dataset_config=null"]
    if values.get("dataset"):
        resets += ["data.train_files=[]"]
    if values.get("model") and not values.get("preset"):
        resets += ["model.preset=null"]  # --model continues pretraining that checkpoint
    if values.get("preset") and not values.get("model"):
        resets += ["model.name_or_path=null"]
    return resets


def resolve_mlm_recipe(recipe: str | None, sets: list[str] | None, values: dict):
    from ..config import resolve_recipe
    from ..errors import BertTasksError
    from ..tasks.mlm.run import MLM_DEFAULTS

    if values.get("model") and values.get("preset"):
        raise BertTasksError("give --preset (a fresh model) or --model (continue pretraining a checkpoint), not both")
    return resolve_recipe(recipe, task="mlm", overrides=[*(sets or []), *_resets(values)],
                          flags=o.train_flags(values, DATA_KEYS), defaults=MLM_DEFAULTS)


@pretrain_app.command("mlm")
@o.training_command
def pretrain_mlm(
    train_file: TrainFile = None,
    validation_file: ValidationFile = None,
    validation_split: ValidationSplit = None,
    dataset: Dataset = None,
    dataset_config: DatasetConfig = None,
    text_column: TextColumn = None,
    streaming: Streaming = None,
    tokenizer: Tokenizer = None,
    vocab_size: VocabSize = None,
    lowercase: Lowercase = None,
    max_seq_length: MaxSeqLength = None,
    line_by_line: LineByLine = None,
    mlm_probability: MlmProbability = None,
    whole_word_masking: WholeWord = None,
    max_eval_samples: MaxEval = None,
    preset: Preset = None,
    position_embedding_type: PositionType = None,
    lr_scheduler: Scheduler = None,
    warmup_ratio: WarmupRatio = None,
    *,
    options: dict,
) -> None:
    """Pretrain a BERT with masked-LM on a text corpus: WordPiece tokenizer, packed sequences, dynamic masking.

    A fresh model comes from --preset; --model continues pretraining a checkpoint with its own tokenizer.

    The output folder works with transformers' fill-mask pipeline and with `finetune glue|squad --model`.

    Example: bert-tasks pretrain mlm --recipe mlm-tiny --train-file corpus.txt --output-dir runs/mlm-tiny
    """
    values = {**{k: v for k, v in locals().items() if k != "options"}, **options}
    values = {k: v if v != [] else None for k, v in values.items()}  # an unused repeatable flag is "not given"
    resolved = resolve_mlm_recipe(options["recipe"], options["sets"], values)
    from ..tasks.mlm.run import pretrain_mlm as run

    run(resolved, **o.run_switches(options))

"""The sections every recipe has: ``model`` (:class:`ModelSettings`), ``train`` (:class:`TrainConfig`), the task's
``data`` (a :class:`DataSettings`), and the :class:`Recipe` that holds them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Generic, Literal, TypeVar

import yaml

from ..model.spec import AttentionQuery, AttentionScore, Pooling, PoolingKind
from .declare import Settings, require, setting

Backend = Literal["scratch", "hf"]
Preset = Literal["tiny", "mini", "small", "medium", "base", "large"]


@dataclass
class ModelSettings(Settings):
    name_or_path: str | None = setting("minilm", "HF model folder, hub id, or 'minilm' (bundled).", flags=("--model", "-m"),
                                       source="checkpoint")
    backend: Backend = setting("scratch", "scratch (our encoder) or hf (plain transformers).")
    preset: Preset | None = setting(None, "Fresh model size: tiny, mini, small, medium, base or large.", source="preset")
    position_embedding_type: Literal["absolute", "sinusoidal"] = setting(
        "absolute", "absolute (learned, as BERT) or sinusoidal; fresh models only.")
    tokenizer: str | None = setting(None, "The tokenizer, when it is not stored with the model.", cli=False)
    #: how a classification head turns the token states into one vector (bert_tasks/pooling.py); None keeps the
    #: checkpoint's own (BERT's "cls" pooler for any plain BERT)
    pooling: PoolingKind | None = setting(
        None, "Classifier pooling: cls (BERT's pooler), mean, max or attention over the real tokens; default: the "
        "checkpoint's own (cls).")
    attention_score: AttentionScore = setting(
        "additive", "With --pooling attention: the scoring function (additive, dot, general, concat).")
    attention_query: AttentionQuery = setting(
        "learned", "With --pooling attention: a learned query vector, or each input's [CLS] state.")

    def pooling_spec(self) -> Pooling | None:
        """The pooling a new head gets, made once here (``load_pretrained(pooling=...)``); None keeps the checkpoint's."""
        if self.pooling is None:
            return None
        return Pooling(self.pooling, self.attention_score, self.attention_query)


@dataclass
class TrainConfig(Settings):
    learning_rate: float = setting(3e-5, "Peak learning rate.", flags=("--learning-rate", "--lr"), above=0)
    batch_size: int = setting(12, "Per-device training batch size (effective: x processes x accumulation).", at_least=1)
    eval_batch_size: int = setting(64, "Per-device evaluation batch size.", at_least=1)
    epochs: float = setting(2.0, "Training epochs.", at_least=0)
    max_steps: int | None = setting(None, "Optimizer steps; overrides --epochs.", at_least=1)
    warmup_ratio: float = setting(0.0, "Share of the steps spent warming the learning rate up.", at_least=0, below=1)
    warmup_steps: int = setting(0, "Warmup steps; overrides warmup_ratio when set.", cli=False, at_least=0)
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorm).", cli=False, at_least=0)
    lr_scheduler: Literal["linear", "cosine", "constant"] = setting("linear", "linear, cosine or constant decay after warmup.")
    adam_beta1: float = setting(0.9, "AdamW beta1.", cli=False, at_least=0, below=1)
    adam_beta2: float = setting(0.999, "AdamW beta2.", cli=False, at_least=0, below=1)
    adam_epsilon: float = setting(1e-8, "AdamW epsilon.", cli=False, above=0)
    #: fused: one kernel over every parameter (CPU and CUDA); on a CPU MiniLM step 18 ms against 165 ms for
    #: torch's per-parameter loop (benchmarks/RESULTS.md); the HF Trainer's default is fused too
    adam_kernel: Literal["fused", "foreach", "loop"] = setting("fused", "AdamW implementation.", cli=False)
    gradient_accumulation_steps: int = setting(1, "Micro-batches per optimizer step.", at_least=1)
    max_grad_norm: float | None = setting(1.0, "Clip gradients to this norm (null: no clipping).", cli=False, above=0)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = setting(
        "auto", "auto (bf16 where the CPU or GPU computes it natively, else fp32), no, bf16 or fp16 (fp16 needs a CUDA GPU).")
    seed: int = setting(42, "Random seed.", at_least=0, below=2**32)
    group_by_length: bool = setting(True, "Batches of similar length, shuffled in mega-batches: less padding.", cli=False)
    logging_steps: int = setting(10, "Log every N steps.", at_least=1)
    eval_steps: int | None = setting(None, "Evaluate every N steps (default: at the end only).", at_least=1)
    save_steps: int | None = setting(None, "Write a resumable checkpoint every N steps.", at_least=1)
    select_best: str | None = setting(
        None, "With --eval-steps: keep the best evaluated state by this dev metric ('main': the task's main metric; "
        "losses and errors are minimised, other metrics maximised) and save it as the model.", flags=("--select-best",))
    early_stopping_patience: int | None = setting(
        None, "With --eval-steps: stop after N evaluations without improvement (keeps the best state; metric: "
        "--select-best, default the task's main metric).", at_least=1)
    early_stopping_threshold: float = setting(
        0.0, "The least change of the metric that counts as an improvement.", at_least=0)
    save_total_limit: int | None = setting(2, "Keep only the newest N checkpoints (null: all).", cli=False, at_least=1)
    budget_minutes: float | None = setting(None, "Stop cleanly after this much wall time, as Cramming does.", above=0)
    skip_nonfinite: bool = setting(False, "Skip NaN/inf steps instead of stopping.",
                                   flags=("--skip-nonfinite/--stop-on-nonfinite",))
    dataloader_workers: int = setting(0, "DataLoader worker processes.", cli=False, at_least=0)
    num_threads: int | None = setting(
        None, "Torch threads; null: every allowed core less those other work keeps busy (threads.choose_threads).",
        cli=False, at_least=1)
    compile: bool = setting(False, "torch.compile the encoder layers (falls back to eager if compiling fails).")
    compile_scope: Literal["layer", "model"] = setting(
        "layer", "What one compiled graph covers: each encoder layer (compiles once) or the whole model.", cli=False)
    unpad: bool = setting(False, "Run the encoder on real tokens only, skipping padding (scratch backend; GLUE and MLM).")
    report_to: list[Literal["tensorboard", "wandb", "none"]] = setting(
        help="tensorboard and/or wandb (via Accelerate trackers).", factory=list)

    def check(self) -> None:
        require(self.epochs > 0 or (self.max_steps or 0) > 0, "epochs", "epochs or max_steps must be positive")
        require(not (self.max_steps and self.warmup_steps >= self.max_steps), "warmup_steps",
                f"warmup_steps {self.warmup_steps} is not below max_steps {self.max_steps}: the learning rate would never "
                "reach its peak; lower warmup_steps or use warmup_ratio")
        require(not (self.unpad and self.compile), "unpad", "unpad and compile cannot be combined: unpadding picks the "
                "real tokens with a data-dependent nonzero, which splits the compiled graphs")
        for key in ("select_best", "early_stopping_patience"):
            flag = "--" + key.replace("_", "-")
            require(getattr(self, key) is None or self.eval_steps is not None, key,
                    f"{flag} needs --eval-steps: it chooses among the evaluations made during training")
        require(self.select_best is None or bool(self.select_best.strip()), "select_best",
                "select_best is empty: name a dev metric, or 'main' for the task's main metric")
        require(self.mixed_precision != "fp16" or _cuda_available(), "mixed_precision",
                "mixed_precision fp16 needs a CUDA GPU; on CPU use bf16 or no")


def _cuda_available() -> bool:
    import torch  # local: `recipes validate` and the CLI's option tables need no torch; only an fp16 recipe asks

    return torch.cuda.is_available()


class DataSettings(Settings):
    """Base of every task's ``data:`` settings (a dataclass deriving it): what the run template reads of any task's
    data, declared here so that it reads it the same way for all. A task's class overrides what it has."""

    #: the longest input, in tokens, that the task feeds the model (a field of the task's own, where it has one):
    #: the template checks it against the model's positions (:func:`max_seq_length_rule`)
    max_seq_length: ClassVar[int | None] = None
    #: score the model before training too (SQuAD's quickstart shows what fine-tuning gained)
    eval_before_training: ClassVar[bool] = False
    #: a sentence head that may pool the tokens: ``model.pooling`` applies to it
    pools_tokens: ClassVar[bool] = False
    #: the settings the user gave (a recipe file, ``--set``, a flag), as opposed to defaults: set where the
    #: settings are resolved (``resolve_recipe``, ``trained_settings``); not a field, never written out
    given: frozenset[str] = frozenset()

    def settle(self, recipe: Any) -> None:
        """Rules that span recipe sections, and the normalisation that makes the task's settings agree; run before
        every section is validated. Override with ``require(...)`` lines."""

    def fit_positions(self, positions: int | None, where: Any) -> str | None:
        """The one ``max_seq_length`` rule of training, ``eval`` and ``predict``: a value the user gave above the
        model's positions is refused in one line; the default is lowered to them, and the note saying so returned
        (the caller validates again: a setting that depends on it, SQuAD's stride, may no longer hold)."""
        length = self.max_seq_length
        if positions is None or length is None or length <= positions:
            return None
        require("max_seq_length" not in self.given, "max_seq_length",
                f"max_seq_length {length} is above the {positions} positions of {where}; lower --max-seq-length")
        self.max_seq_length = positions
        return f"max_seq_length: the default {length} is above the {positions} positions of {where}; using {positions}"

    def input_paths(self) -> list[str]:
        """The local files and folders these settings name (fields declared with ``setting(..., path=True)``)."""
        found: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("path") and value:
                found += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return found


D = TypeVar("D")

#: where ``eval`` commands write into a model folder given no --output-dir: beside the training results, not over them
EVAL_DIR = "eval"


@dataclass
class Recipe(Generic[D]):
    task: str
    description: str = ""
    model: ModelSettings = field(default_factory=ModelSettings)
    #: the task's own settings (GlueDataConfig, SquadDataConfig, MlmDataConfig, ...): a DataSettings
    data: D = None  # type: ignore[assignment]
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str | None = setting(None, "Where the run writes its model and results.", flags=("--output-dir", "-o"))
    #: a recipe file's ``search:`` block, ``{"trials": N, "space": ["KEY=DIST", ...]}`` (:func:`.recipes.search_block`),
    #: which ``--search``/``--trials``/``--search-space`` extend; never in a run's recipe.yaml: a trial is one run
    search: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def validate(self) -> "Recipe[D]":
        """Every section's own rules and those that span sections; a task's cross-section rules (and the
        normalisation that makes its settings agree) live in its data settings' ``settle``, run first."""
        if self.data is not None:
            self.data.settle(self)
        for section in (self.model, self.train, self.data):
            if section is not None:  # a Recipe built in code may leave data out
                section.validate()
        require(not (self.train.unpad and self.model.backend == "hf"), "train.unpad",
                "train.unpad needs model.backend scratch: the transformers model has no unpadded path")
        require(self.model.pooling in (None, "cls") or (self.data is not None and self.data.pools_tokens), "model.pooling",
                f"model.pooling {self.model.pooling} is for sentence classification and regression (glue); "
                f"task {self.task} reads every token")
        return self

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("search")
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

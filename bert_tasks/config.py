"""Recipes: versioned YAML files validated into typed dataclasses, and every setting declared once.

A recipe has four sections, ``model``, ``data`` (the task's own dataclass), ``train`` and
``output_dir``, plus the ``task`` it runs. Each setting is one dataclass field made with
:func:`setting`: its type (``Literal`` for a choice), default, help, command-line flag and bounds
live there, and the recipe loader, the CLI (which generates its options from these fields),
``recipes validate`` and the docs all read them from there.

Loading is strict: an unknown key, a value of the wrong type or out of bounds is an error
naming the key and the file. Settings are layered, later winning: dataclass defaults < the
command's own defaults (run_glue.py's, run_qa.py's) < recipe file < ``--set a.b=value`` < flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml

from .errors import BertTasksError

# --------------------------------------------------------------------------- declaring a setting


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, flags: tuple[str, ...] | None = None,
            cli: bool = True, at_least: float | None = None, above: float | None = None, at_most: float | None = None,
            below: float | None = None, source: str | None = None, also: tuple[str, ...] = ()) -> Any:
    """A dataclass field that declares everything about one setting, once.

    ``flags``: the CLI spelling(s) (default ``--field-name``; ``"--a/--b"`` names a bool's two sides);
    ``cli=False`` leaves the setting to recipes and ``--set``; ``at_least``/``above``/``at_most``/
    ``below`` bound a number; ``source`` groups settings that name one data (or model) source, so
    a flag naming one source clears the recipe's other ones; ``also``: further recipe keys a flag sets.
    """
    metadata = {"help": help, "flags": flags, "cli": cli, "bounds": (at_least, above, at_most, below),
                "source": source, "also": also}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def require(ok: bool, key: str, reason: str) -> None:
    """The one way a settings class states a rule: ``require(condition, "field", "why it must hold")``."""
    if not ok:
        raise BertTasksError(reason, record=f"key {key}")


class Settings:
    """Base of every settings dataclass: :meth:`validate` checks each field's declared type, choices and
    bounds, then the class's own cross-field rules in :meth:`check`."""

    def validate(self):
        """Raise BertTasksError on the first broken rule; return self, valid."""
        hints = type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            coerce(hints[f.name], value, f.name, None)
            check_bounds(f, value)
        self.check()
        return self

    def check(self) -> None:
        """Rules that span fields; override with ``require(...)`` lines."""


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_bounds(f: dataclasses.Field, value: Any) -> None:
    at_least, above, at_most, below = f.metadata.get("bounds", (None,) * 4)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        require(False, f.name, f"{f.name} must be a finite number, got {value!r}")
    words = []
    if at_least is not None and not value >= at_least:
        words.append(f"at least {at_least:g}")
    if above is not None and not value > above:
        words.append(f"above {above:g}")
    if at_most is not None and not value <= at_most:
        words.append(f"at most {at_most:g}")
    if below is not None and not value < below:
        words.append(f"below {below:g}")
    if words == ["at least 1"] and isinstance(value, int):
        words = ["a positive integer"]
    if words or (isinstance(value, float) and not math.isfinite(value)):
        require(False, f.name, f"{f.name} must be {' and '.join(words) or 'a number'}, got {value!r}")


# --------------------------------------------------------------------------- the sections every recipe has

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
    pooling: Literal["cls", "mean", "max", "attention"] | None = setting(
        None, "Classifier pooling: cls (BERT's pooler), mean, max or attention over the real tokens; default: the "
        "checkpoint's own (cls).")
    attention_score: Literal["additive", "dot", "general", "concat"] = setting(
        "additive", "With --pooling attention: the scoring function (additive, dot, general, concat).")
    attention_query: Literal["learned", "cls"] = setting(
        "learned", "With --pooling attention: a learned query vector, or each input's [CLS] state.")

    def pooling_settings(self) -> dict[str, str] | None:
        """What ``load_pretrained(pooling=...)`` takes: None to keep the checkpoint's pooling."""
        if self.pooling is None:
            return None
        return {"pooling": self.pooling, "attention_score": self.attention_score, "attention_query": self.attention_query}


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
        require(self.mixed_precision != "fp16" or _cuda_available(), "mixed_precision",
                "mixed_precision fp16 needs a CUDA GPU; on CPU use bf16 or no")


def _cuda_available() -> bool:
    import torch  # local: `recipes validate` and the CLI's option tables need no torch; only an fp16 recipe asks

    return torch.cuda.is_available()


D = TypeVar("D")

#: where ``eval`` commands write into a model folder given no --output-dir: beside the training results, not over them
EVAL_DIR = "eval"


@dataclass
class Recipe(Generic[D]):
    task: str
    description: str = ""
    model: ModelSettings = field(default_factory=ModelSettings)
    #: the task's own settings (GlueDataConfig, SquadDataConfig, MlmDataConfig, ...)
    data: D = None  # type: ignore[assignment]
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str | None = setting(None, "Where the run writes its model and results.", flags=("--output-dir", "-o"))

    def validate(self) -> "Recipe[D]":
        """Every section's own rules and those that span sections; a task's cross-section rules (and the
        normalisation that makes its settings agree) live in its data config's ``settle``, run first."""
        settle = getattr(self.data, "settle", None)
        if callable(settle):
            settle(self)
        for section in (self.model, self.train, self.data):
            if section is not None:  # a Recipe built in code may leave data out
                section.validate()
        require(not (self.train.unpad and self.model.backend == "hf"), "train.unpad",
                "train.unpad needs model.backend scratch: the transformers model has no unpadded path")
        require(self.model.pooling in (None, "cls") or getattr(self.data, "pools_tokens", False), "model.pooling",
                f"model.pooling {self.model.pooling} is for sentence classification and regression (glue); "
                f"task {self.task} reads every token")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- strict conversion


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


#: the words YAML 1.1 (PyYAML) reads as False / True
YAML_BOOLS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}


def coerce(tp: Any, value: Any, key: str, file: Any) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only where YAML is loose (int for float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, key, file)
            except BertTasksError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and not isinstance(value, bool):
            return value
        if isinstance(value, bool):  # YAML 1.1 reads an unquoted no/off/yes/on as a bool: take the choice it spelled
            spelled = [c for c in choices if isinstance(c, str) and c.lower() in YAML_BOOLS[value]]
            if len(spelled) == 1:
                return spelled[0]
        raise BertTasksError(f"key '{key}' must be one of {', '.join(map(str, choices))}; got {value!r}", file=file)
    if tp is Any or isinstance(tp, TypeVar):
        return value
    if is_dataclass(tp):
        return value if isinstance(value, tp) else from_dict(tp, value, file=file, where=key + ".")
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # a single value where a list is expected is a list of one
        if not isinstance(value, list):
            raise BertTasksError(f"key '{key}' must be a list, got {type(value).__name__}", file=file)
        return [coerce(item, v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise BertTasksError(f"key '{key}' must be a mapping, got {type(value).__name__}", file=file)
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads "5e-5" (no dot) as a string; people write it that way, so accept it.
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise BertTasksError(f"key '{key}' must be {_type_name(tp)}, got {value!r}", file=file)
    return value


def from_dict(cls: type, data: Any, *, file: Any = None, where: str = "", check: bool = True) -> Any:
    """Build settings class ``cls`` from a mapping, rejecting unknown keys, wrong types and (with ``check``)
    values out of bounds or against the class's rules."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BertTasksError(f"section '{where.rstrip('.') or 'top level'}' must be a mapping", file=file)
    known = {f.name: f for f in fields(cls) if f.init}
    hints = type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f" (did you mean '{where}{close[0]}'?)" if close else ""
            raise BertTasksError(f"unknown key '{where}{key}'{hint}", file=file)
        kwargs[key] = coerce(hints[key], value, where + key, file)
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise BertTasksError(f"section '{where.rstrip('.') or 'top level'}': {exc}", file=file) from None
    if check and isinstance(obj, Settings):
        try:
            obj.validate()
        except BertTasksError as exc:
            record = exc.record
            if isinstance(record, str) and record.startswith("key ") and where:
                record = f"key {where}{record[4:]}"
            raise BertTasksError(exc.reason, file=file, record=record) from None
    return obj


# --------------------------------------------------------------------------- recipe files


def recipes_dir() -> Path:
    """Packaged recipes: the repo's ``recipes/`` in a checkout, ``bert_tasks/recipes`` in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "recipes", here.parent / "recipes"):
        if candidate.is_dir():
            return candidate
    raise BertTasksError("the packaged recipes are missing from this installation")


def list_recipes() -> list[Path]:
    return sorted(recipes_dir().glob("*.yaml"))


def find_recipe(name_or_path: str) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    packaged = recipes_dir() / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if packaged.is_file():
        return packaged
    names = [p.stem for p in list_recipes()]
    close = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "; `bert-tasks recipes list` shows them"
    raise BertTasksError(f"no recipe file or packaged recipe named '{name_or_path}'{hint}")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BertTasksError(f"not UTF-8 text (byte {exc.start})", file=path) from None
    except OSError as exc:
        raise BertTasksError(f"cannot read ({exc.strerror})", file=path) from None
    try:
        data = yaml.safe_load(text)  # safe_load: YAML tags can never construct Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BertTasksError(f"invalid YAML: {reason}", file=path, record=where) from None
    if data is None:
        raise BertTasksError("the recipe file is empty; `bert-tasks recipes cp NAME FILE` gives one to start from",
                             file=path)
    if not isinstance(data, dict):
        raise BertTasksError("a recipe must be a YAML mapping", file=path)
    if not isinstance(data.get("task"), str):
        raise BertTasksError("a recipe must name its task (e.g. `task: sst2`)", file=path, record="key task")
    return data


def trained_recipe(model_dir: str | Path) -> dict[str, Any]:
    """The recipe.yaml a run folder kept (a plain mapping; {} when there is none or it does not parse).

    Evaluation and inference read the settings a model was trained with from it (window sizes,
    the GLUE task, the SQuAD version), so a user need not repeat them.
    """
    path = Path(model_dir) / "recipe.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    if not isinstance(data.get("data"), dict):
        data["data"] = {}
    return data


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise BertTasksError(f"override '{item}' must look like key=value (e.g. train.learning_rate=5e-5)")
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise BertTasksError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path, value


def set_path(data: dict[str, Any], path: list[str], value: Any, origin: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BertTasksError(f"cannot set '{'.'.join(path)}': '{part}' is not a section", record=origin)
        node = child
    node[path[-1]] = value


def resolve_recipe(
    recipe: str | None,
    *,
    task: str,
    data_class: type,
    overrides: list[str] = (),
    flags: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    flag_names: dict[str, str] | None = None,
) -> Recipe:
    """Layer defaults, recipe file, ``--set`` overrides and explicit flags into a validated Recipe.

    ``task`` is the command's task when the recipe names none; ``data_class`` is that task's settings
    class (the registry knows it); ``flags`` maps dotted keys to CLI values (None: not given);
    ``defaults`` are the command's own defaults (e.g. run_qa.py's) below the recipe. An error about a
    value names where the value came from: the file, the ``--set`` item, or the flag (``flag_names``).
    """
    file: Path | None = None
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}  # dotted key -> the --set item or flag that gave its value
    for key, value in (defaults or {}).items():
        set_path(data, key.split("."), value, "defaults")
    if recipe:
        file = find_recipe(recipe)
        _deep_update(data, read_yaml(file))
    for item in overrides:
        path, value = parse_override(item)
        set_path(data, path, value, f"--set {item}")
        origins[".".join(path)] = f"--set {item}"
    for key, value in (flags or {}).items():
        if value is not None:
            set_path(data, key.split("."), value, f"flag for {key}")
            origins[key] = (flag_names or {}).get(key, f"the flag for {key}")
    data.setdefault("task", task)
    try:
        data["data"] = from_dict(data_class, data.get("data"), file=file, where="data.", check=False)  # settled first
        return from_dict(Recipe, data, file=file).validate()
    except BertTasksError as exc:
        record = exc.record
        if isinstance(record, str) and record.startswith("key ") and "." not in record:
            record = f"key data.{record[4:]}"  # the data section's own rules name its keys without the section
        key = record[4:] if isinstance(record, str) and record.startswith("key ") else _quoted_key(exc.reason)
        if key in origins:  # the value came from the command line, not the file
            raise BertTasksError(exc.reason, record=origins[key]) from None
        raise BertTasksError(exc.reason, file=file, record=record) from None


def _quoted_key(reason: str) -> str | None:
    found = re.search(r"key '([^']+)'", reason)
    return found.group(1) if found else None


def with_settings(recipe: Recipe, changes: dict[str, Any], *, origin: str) -> Recipe:
    """A copy of ``recipe`` with dotted keys set, checked as a recipe file's values are.

    A key that names no setting, or a value of the wrong type, is one error naming the key and ``origin``.
    """
    data = recipe.to_dict()
    for key, value in changes.items():
        node, parts = data, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                known = list(node) if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, known, n=1)
                hint = f" (did you mean '{'.'.join([*parts[:depth], close[0]])}'?)" if close else ""
                raise BertTasksError(f"{origin}: no setting '{key}'{hint}")
            if depth < len(parts) - 1:
                node = node[part]
        if isinstance(node[parts[-1]], dict):
            raise BertTasksError(f"{origin}: '{key}' is a section, not a setting")
        node[parts[-1]] = value
    try:
        data["data"] = from_dict(type(recipe.data), data["data"], where="data.", check=False)
        return from_dict(Recipe, data).validate()
    except BertTasksError as exc:
        raise BertTasksError(f"{origin}: {exc.reason}", record=exc.record) from None


def _deep_update(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value

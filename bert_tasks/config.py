"""Recipes: versioned YAML files validated into typed dataclasses.

A recipe has four sections, ``model``, ``data`` (the task's own dataclass),
``train`` and ``output_dir``, plus the ``task`` it runs. Loading is strict: an
unknown key or a value of the wrong type is an error naming the key and the
file. Settings are layered, later winning: dataclass defaults < recipe file <
``--set a.b=value`` overrides < explicit CLI flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import BertTasksError

# --------------------------------------------------------------------------- schema


@dataclass
class ModelSettings:
    #: a local HF folder, a hub id, or "minilm" for the bundled, sha256-checked MiniLM
    name_or_path: str | None = "minilm"
    #: "scratch" (our encoder) or "hf" (the plain transformers model, for comparison)
    backend: str = "scratch"
    #: build a fresh model of this size (tiny/mini/small/medium/base/large) instead of loading one
    preset: str | None = None
    #: "absolute" (learned, as BERT) or "sinusoidal"; only for a fresh model
    position_embedding_type: str = "absolute"
    #: the tokenizer to use when it is not stored with the model
    tokenizer: str | None = None


@dataclass
class TrainConfig:
    learning_rate: float = 3e-5
    #: per device; the effective batch is batch_size x processes x gradient_accumulation_steps
    batch_size: int = 12
    eval_batch_size: int = 64
    epochs: float = 2.0
    #: when set, overrides epochs
    max_steps: int | None = None
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.01
    lr_scheduler: str = "linear"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = 1.0
    mixed_precision: str = "no"
    seed: int = 42
    #: batches of similar length, shuffled in mega-batches: less padding, still random
    group_by_length: bool = True
    logging_steps: int = 10
    #: evaluate every N optimizer steps (None: at the end only)
    eval_steps: int | None = None
    #: write a resumable checkpoint every N optimizer steps (None: none)
    save_steps: int | None = None
    save_total_limit: int | None = 2
    #: stop cleanly once this much wall time is spent, as Cramming does
    budget_minutes: float | None = None
    #: skip optimizer steps whose loss is NaN/inf instead of stopping
    skip_nonfinite: bool = False
    dataloader_workers: int = 0
    #: torch threads; None: every allowed core less those other work kept busy over the last minute
    #: (threads.choose_threads: oversubscribed OpenMP threads stall badly)
    num_threads: int | None = None
    #: torch.compile the encoder layers (in place; falls back to eager with a warning if compiling fails)
    compile: bool = False
    #: what one compiled graph covers: "layer" (each encoder layer; compiles once, reused by all) or "model"
    compile_scope: str = "layer"
    #: run the encoder's per-token work on real tokens only (model.RealTokens); scratch backend, GLUE and MLM
    #: (exact at real positions, which are all they read)
    unpad: bool = False
    report_to: list[str] = field(default_factory=list)

    def validate(self, where: str = "train") -> None:
        checks = [
            (self.learning_rate > 0, "learning_rate must be positive"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.eval_batch_size >= 1, "eval_batch_size must be at least 1"),
            (self.epochs > 0 or (self.max_steps or 0) > 0, "epochs or max_steps must be positive"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be at least 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1"),
            (self.lr_scheduler in ("linear", "cosine", "constant"), "lr_scheduler must be linear, cosine or constant"),
            (self.mixed_precision in ("no", "bf16", "fp16"), "mixed_precision must be no, bf16 or fp16"),
            (self.logging_steps >= 1, "logging_steps must be at least 1"),
            (self.eval_steps is None or self.eval_steps >= 1, "eval_steps must be at least 1 (or null: at the end only)"),
            (self.save_steps is None or self.save_steps >= 1, "save_steps must be at least 1 (or null: no checkpoints)"),
            (self.save_total_limit is None or self.save_total_limit >= 1, "save_total_limit must be at least 1 (or null)"),
            (0 <= self.seed < 2**32, "seed must be an integer from 0 to 2**32 - 1"),
            (self.weight_decay >= 0, "weight_decay must not be negative"),
            (0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "adam_beta1 and adam_beta2 must be in [0, 1)"),
            (self.adam_epsilon > 0, "adam_epsilon must be positive"),
            (self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm must be positive (or null: no clipping)"),
            (self.warmup_steps >= 0, "warmup_steps must not be negative"),
            (self.dataloader_workers >= 0, "dataloader_workers must not be negative"),
            (self.num_threads is None or self.num_threads >= 1, "num_threads must be at least 1 (or null: chosen at start-up)"),
            (self.mixed_precision != "fp16" or _cuda_available(), "mixed_precision fp16 needs a CUDA GPU; on CPU use bf16 or no"),
            (all(t in ("tensorboard", "wandb", "none") for t in self.report_to), "report_to takes tensorboard, wandb or none"),
            (self.budget_minutes is None or self.budget_minutes > 0, "budget_minutes must be positive"),
            (self.compile_scope in ("layer", "model"), "compile_scope must be layer or model"),
            (not (self.unpad and self.compile), "unpad and compile cannot be combined: unpadding picks the real "
                                                "tokens with a data-dependent nonzero, which splits the compiled graphs"),
        ]
        for ok, message in checks:
            if not ok:
                raise BertTasksError(f"{where}: {message}")


def _cuda_available() -> bool:
    import torch  # local: recipes are read by `recipes list/validate`, which need no torch; training imports it anyway

    return torch.cuda.is_available()


@dataclass
class Recipe:
    task: str
    description: str = ""
    model: ModelSettings = field(default_factory=ModelSettings)
    data: Any = None
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str | None = None

    def validate(self) -> None:
        """The checks that span sections."""
        if self.train.unpad and self.model.backend == "hf":
            raise BertTasksError("train.unpad needs model.backend scratch: the transformers model has no unpadded path")
        if self.train.unpad and self.task == "squad":
            raise BertTasksError("train.unpad is for tasks that read real positions only (glue, mlm): the SQuAD "
                                 "loss also spans padded positions, which unpadding would change")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------- strict conversion


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


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
    if tp is Any:
        return value
    if is_dataclass(tp):
        return from_dict(tp, value, file=file, where=key + ".")
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


def from_dict(cls: type, data: Any, *, file: Any = None, where: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BertTasksError(f"section '{where.rstrip('.') or 'top level'}' must be a mapping", file=file)
    known = {f.name: f for f in fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
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
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except BertTasksError as exc:
            raise BertTasksError(exc.reason, file=file, record=exc.record) from None
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
    overrides: list[str] = (),
    flags: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Recipe:
    """Layer defaults, recipe file, ``--set`` overrides and explicit flags into a validated Recipe.

    ``flags`` maps dotted keys to CLI values; None means "not given" and is skipped.
    ``defaults`` are the command's own defaults (e.g. run_qa.py's) below the recipe.
    """
    from .tasks import get_task

    file: Path | None = None
    data: dict[str, Any] = {}
    for key, value in (defaults or {}).items():
        set_path(data, key.split("."), value, "defaults")
    if recipe:
        file = find_recipe(recipe)
        _deep_update(data, read_yaml(file))
    for item in overrides:
        path, value = parse_override(item)
        set_path(data, path, value, f"--set {item}")
    for key, value in (flags or {}).items():
        if value is not None:
            set_path(data, key.split("."), value, f"flag for {key}")
    name = data.setdefault("task", task)
    if not isinstance(name, str):
        raise BertTasksError("key 'task' must be a string", file=file)
    task_obj = get_task(name, file=file)
    family = task.split(":")[0]
    if family and task_obj.head != get_task(task).head:
        raise BertTasksError(f"recipe is for task '{name}', which this command does not run", file=file)
    data["data"] = from_dict(task_obj.config_class, data.get("data"), file=file, where="data.")
    return from_dict(Recipe, data, file=file)


def _deep_update(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value

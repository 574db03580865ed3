"""Command-line options made from the settings dataclasses: each setting is declared once, in its field.

A field made with :func:`bert_tasks.config.setting` carries its type (a ``Literal`` is a choice), its
default, its help and its flag; :func:`setting_option` turns it into a typer option, and
:func:`recipe_options` gives a training command every model, data and train setting the CLI offers.
The command's own defaults (run_glue.py's learning rate, ...) are shown in the help, since the
option's real default is None: "not given", so that a recipe's value stands.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Optional

import typer

from ..config import ModelSettings, Recipe, TrainConfig, parse_scalar, type_hints
from ..errors import BertTasksError, shown

#: the options of a training command that are not settings: how to run, not what
SWITCHES = (
    ("recipe", Annotated[Optional[str], typer.Option("--recipe", "-r", help="Recipe name (see `bert-tasks recipes list`) or YAML path.")], None),
    ("sets", Annotated[Optional[list[str]], typer.Option("--set", help="Override a recipe key, e.g. --set train.learning_rate=5e-5 (repeatable).")], None),
    ("overwrite_output_dir", Annotated[bool, typer.Option("--overwrite-output-dir", help="Replace a non-empty output folder.")], False),
    ("resume_from", Annotated[Optional[str], typer.Option("--resume-from", help="A checkpoint folder, or 'latest' in the output folder.")], None),
    ("dry_run", Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and what would run, then exit.")], False),
    ("seeds", Annotated[Optional[str], typer.Option("--seeds", help="Run once per seed, e.g. --seeds 1,2,3,4,5: OUTPUT/seed-N each, then the median and spread of every metric (seeds_summary.json).")], None),
    ("search", Annotated[Optional[str], typer.Option("--search", help="Hyperparameter search: optuna (seeded TPE, median pruning at each --eval-steps evaluation; OUTPUT/search.db resumes with --resume-from latest, OUTPUT/trial-N each). Needs pip install 'bert-tasks[search]'.")], None),
    ("trials", Annotated[Optional[int], typer.Option("--trials", help="With --search: how many trials in all (a resumed search runs the rest).")], None),
    ("search_space", Annotated[Optional[list[str]], typer.Option("--search-space", help="With --search: KEY=DIST, DIST uniform:LOW:HIGH, loguniform:LOW:HIGH, int:LOW:HIGH or choice:A,B (repeatable).")], None),
    ("grid", Annotated[Optional[list[str]], typer.Option("--grid", help="Try every value of a recipe key, e.g. --grid train.learning_rate=1e-4,5e-5 (repeatable: every combination, times every seed); the best by the dev score goes in grid_summary.json.")], None),
)


def parse_seeds(text: str | None) -> list[int] | None:
    """``1,2,3`` -> [1, 2, 3]; each a non-negative integer, none twice."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or not all(items):
        raise BertTasksError(f"--seeds {text!r}: give a comma-separated list of seeds, e.g. --seeds 1,2,3")
    if not all(item.isdigit() for item in items):
        raise BertTasksError(f"--seeds {text!r}: seeds are non-negative integers")
    seeds = [int(item) for item in items]
    if any(seed >= 2**32 for seed in seeds):  # what torch, numpy and Accelerate take as a seed
        raise BertTasksError(f"--seeds {shown(text)}: a seed must be below 2**32 (4294967296)")
    if len(set(seeds)) != len(seeds):
        raise BertTasksError(f"--seeds {text!r}: a seed is given twice")
    return seeds


def parse_search(kind: str | None, trials: int | None, space: list[str] | None,
                 block: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``--search optuna --trials N --search-space ...`` over the recipe's ``search:`` block (``block``, which turns
    the search on by itself; a flag's trials and keys win) -> {"trials": N, "space": [...]}; the distributions are
    read by :func:`bert_tasks.runner.search.parse_space`, which the search imports with optuna."""
    if kind is None and block is None:
        if trials is not None or space:
            raise BertTasksError(f"{'--trials' if trials is not None else '--search-space'} needs --search optuna "
                                 "(or a search: block in the recipe)")
        return None
    if kind is not None and kind != "optuna":
        raise BertTasksError(f"--search {shown(kind)}: the one search is optuna (--search optuna)")
    trials = trials if trials is not None else (block or {}).get("trials")
    if trials is None or trials < 1:
        raise BertTasksError("--search optuna needs --trials N, N at least 1 (or trials: in the recipe's search: block)")
    given = {item.partition("=")[0].strip() for item in space or []}
    inherited = [item for item in (block or {}).get("space", []) if item.partition("=")[0].strip() not in given]
    return {"trials": trials, "space": [*inherited, *(space or [])]}


def parse_grid(items: list[str] | None) -> dict[str, list[Any]] | None:
    """``["train.learning_rate=1e-4,5e-5"]`` -> {"train.learning_rate": [1e-4, 5e-5]} (values read as YAML)."""
    if not items:
        return None
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, _, values = item.partition("=")
        if not key.strip() or not values.strip():
            raise BertTasksError(f"--grid {item!r}: give key=value1,value2 (e.g. train.learning_rate=1e-4,5e-5)")
        if key.strip() in grid:
            raise BertTasksError(f"--grid: {key.strip()} is given twice; list all its values in one --grid")
        parsed = [parse_scalar(v) if v.strip() else None for v in values.split(",")]
        if any(v is None for v in parsed):
            raise BertTasksError(f"--grid {item!r}: an empty value")
        grid[key.strip()] = parsed
    return grid


@dataclass(frozen=True)
class SettingOption:
    """One setting offered on the command line: its parameter name, recipe key and typer annotation."""

    param: str
    key: str
    annotation: Any
    field: dataclasses.Field


def _choices(tp: Any) -> Any:
    """The CLI type of a settings type: Optional stripped (None means "not given"), lists kept repeatable."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        tp = args[0]
    if typing.get_origin(tp) is list and typing.get_origin(typing.get_args(tp)[0]) is Literal:
        return list[str]  # typer takes no choices inside a list; the recipe's type check names them
    return tp


def _shown_default(value: Any) -> str | None:
    if value is None or value == [] or value is dataclasses.MISSING:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_option(cls: type, name: str, *, key: str | None = None, default: Any = dataclasses.MISSING,
                   help: str | None = None, flags: tuple[str, ...] | None = None) -> SettingOption:
    """The typer option of field ``name`` of settings class ``cls``; ``default`` is the one the help shows."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    meta = f.metadata
    tp = _choices(type_hints(cls)[name])
    dashed = name.replace("_", "-")
    flags = flags or meta.get("flags") or ((f"--{dashed}/--no-{dashed}",) if tp is bool else (f"--{dashed}",))
    if default is dataclasses.MISSING:
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    text = help if help is not None else meta.get("help", "")
    shown = _shown_default(default)
    if shown is not None and typing.get_origin(tp) is not list:
        text = f"{text} (default: {shown})"
    choices = typing.get_args(tp) if typing.get_origin(tp) is Literal else None
    if choices:  # shown as <a|b|c>, checked by the settings class, whose error names the recipe key
        tp = str
    annotation = Annotated[Optional[tp], typer.Option(*flags, help=text, metavar="|".join(choices) if choices else None)]
    param = flags[0].split("/")[0].lstrip("-").replace("-", "_")  # the flag's own name: --model -> model
    return SettingOption(param=param, key=key or name, annotation=annotation, field=f)


#: the default an ``eval``/``predict`` option shows for a setting the model folder's recipe supplies
TRAINED = "what the model was trained with"


def data_options(cls: type, names: tuple[str, ...]) -> list[SettingOption]:
    """The ``eval``/``predict`` options for the data settings ``names`` of ``cls``, made from their fields as the
    training command's are; a setting declared ``inherit=True`` shows that it defaults to the trained folder's."""
    inherited = {f.name for f in dataclasses.fields(cls) if f.metadata.get("inherit")}
    return [setting_option(cls, name, default=TRAINED if name in inherited else dataclasses.MISSING) for name in names]


def switch(name: str, annotation: Any, default: Any = None) -> tuple[str, Any, Any]:
    """One non-setting option of a command (how to run, not what), for :func:`with_signature`."""
    return name, annotation, default


#: ``eval`` and ``predict`` compute in the precision the folder was trained in, unless told otherwise
PRECISION_SWITCH = switch("mixed_precision", setting_option(
    TrainConfig, "mixed_precision", default="what the model was trained in",
    help="no (fp32), bf16, fp16 (CUDA) or auto; bf16 results of the two backends differ slightly, fp32 ones do not.",
).annotation)


#: the options every ``eval`` command shares with training's settings: the backend, the eval batch, where results go
Backend = setting_option(ModelSettings, "backend").annotation
EvalBatchSize = setting_option(TrainConfig, "eval_batch_size").annotation
EvalOutput = Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where results go (default: MODEL/eval, beside the training results).")]
#: the sentence head's eval commands (glue, classify): temperature scaling, :mod:`bert_tasks.tasks.calibrate`
CALIBRATE_SWITCH = switch("calibrate", Annotated[bool, typer.Option(
    "--calibrate", help="Single-label classification: fit a temperature on the dev set (min NLL) and keep it in the "
    "folder's config.json; predict applies it.")], False)


def eval_switches(model: Any) -> tuple[tuple[str, Any, Any], ...]:
    """The switches of an ``eval`` command: ``model`` (its ``--model`` annotation), backend, output folder, eval batch,
    precision."""
    return (switch("model", model, ...), switch("backend", Backend), switch("output_dir", EvalOutput),
            switch("eval_batch_size", EvalBatchSize), PRECISION_SWITCH)


def recipe_options(data_class: type, model_flags: tuple[str, ...], defaults: dict[str, Any],
                   refused_train_flags: tuple[str, ...] = ()) -> list[SettingOption]:
    """Every setting a training command offers as a flag: model, output folder, data, then training settings."""
    def section(prefix: str, cls: type, names: list[str]) -> list[SettingOption]:
        keys = [f"{prefix}.{name}" if prefix else name for name in names]
        return [setting_option(cls, name, key=key, default=defaults.get(key, dataclasses.MISSING))
                for name, key in zip(names, keys)]

    cli = lambda cls: [f.name for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]  # noqa: E731
    options = [*section("model", ModelSettings, [n for n in cli(ModelSettings) if n in model_flags]),
               *section("", Recipe, ["output_dir"]),
               *section("data", data_class, cli(data_class)),
               *section("train", TrainConfig, [n for n in cli(TrainConfig) if n not in refused_train_flags])]
    taken: dict[str, str] = {name: "a run switch" for name, _, _ in SWITCHES}
    for option in options:
        if option.param in taken:
            raise BertTasksError(f"{data_class.__name__}.{option.field.name}: its flag --{option.param.replace('_', '-')} "
                                 f"is already {taken[option.param]}'s; give it another flag (setting(..., flags=...)) "
                                 "or cli=False")
        taken[option.param] = option.key
    return options


def with_signature(func: Callable[..., Any], options: list[SettingOption], *, switches: tuple = SWITCHES) -> Callable[..., Any]:
    """``func`` with a typer-readable signature made of ``switches`` and ``options``; it receives them as keywords."""
    parameters = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                  for name, annotation, default in switches]
    parameters += [inspect.Parameter(o.param, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=o.annotation)
                   for o in options]
    func.__signature__ = inspect.Signature(parameters)
    return func


def given_settings(options: list[SettingOption], values: dict[str, Any], sections: dict[str, type]
                   ) -> tuple[dict[str, Any], list[str]]:
    """The recipe keys of the flags the user gave, and the ``--set`` items that clear the sources they replace.

    Settings that name a data (or model) source carry a ``source`` group: a flag naming one source
    clears the recipe's other sources of that section instead of clashing with them (``--data-dir``
    over a recipe's Hub dataset; ``--model`` over a recipe's fresh preset). ``sections`` maps a
    section name (``data``, ``model``) to its settings class.
    """
    given = {o.key: values[o.param] for o in options if values.get(o.param) not in (None, [])}
    flags = dict(given)
    for o in options:
        if o.key in given:
            for also in o.field.metadata.get("also", ()):
                flags[also] = given[o.key]
    named = {(o.key.rsplit(".", 1)[0], o.field.metadata["source"]) for o in options
             if o.key in given and o.field.metadata.get("source")}
    clears = []
    for section, cls in sections.items():
        if not any(s == section for s, _ in named):
            continue
        for f in dataclasses.fields(cls):
            group = f.metadata.get("source")
            if group and (section, group) not in named:
                clears.append(f"{section}.{f.name}={_cleared(f)}")
    return flags, clears


def _cleared(f: dataclasses.Field) -> str:
    if f.default_factory is not dataclasses.MISSING:
        return "[]"
    return "false" if isinstance(f.default, bool) else "null"


__all__ = ["PRECISION_SWITCH", "SWITCHES", "TRAINED", "SettingOption", "data_options", "given_settings", "recipe_options", "setting_option",
           "switch", "with_signature", "Literal"]

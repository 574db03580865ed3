"""Recipe files: the packaged ones, reading a YAML file strictly, the recipe a run folder kept, and layering
defaults < recipe file < ``--set`` < flags into one validated :class:`~bert_tasks.config.sections.Recipe`."""

from __future__ import annotations

import dataclasses
import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import BertTasksError, shown
from .declare import from_dict
from .sections import Recipe


def recipes_dir() -> Path:
    """Packaged recipes: the repo's ``recipes/`` in a checkout, ``bert_tasks/recipes`` in a wheel."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "recipes", package.parent / "recipes"):
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
    except RecursionError:
        raise BertTasksError("invalid YAML: nested too deeply", file=path) from None
    except ValueError as exc:  # an integer of thousands of digits
        raise BertTasksError(f"invalid YAML: {shown(str(exc))}", file=path) from None
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
    """The recipe.yaml a run folder kept (a plain mapping, its ``data`` section always one; ``{"data": {}}`` when
    there is none or it does not parse).

    Evaluation and inference read the settings a model was trained with from it (window sizes,
    the GLUE task, the SQuAD version), so a user need not repeat them.
    """
    path = Path(model_dir) / "recipe.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (yaml.YAMLError, OSError, UnicodeDecodeError, RecursionError):
        return {"data": {}}
    if not isinstance(data, dict):
        return {"data": {}}
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
    return path, parse_scalar(raw) if raw.strip() else None


def parse_scalar(raw: str) -> Any:
    """One value as written on a command line, read as YAML, except that ``1e-3`` is the number YAML 1.2 reads (YAML
    1.1, PyYAML's, wants ``1.0e-3``): a grid, a search choice and an override all keep 1e-3 a float, not a string."""
    try:
        value = yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError):  # ValueError: an integer too long for Python to read; a string then
        return raw
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
        return float(value)
    return value


def set_path(data: dict[str, Any], path: list[str], value: Any, origin: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BertTasksError(f"cannot set '{'.'.join(path)}': '{part}' is not a section", record=origin)
        node = child
    node[path[-1]] = value


SEARCH_BLOCK_KEYS = ("trials", "space")


def search_block(content: dict[str, Any], file: Path) -> dict[str, Any] | None:
    """A recipe file's ``search:`` block, taken out of ``content`` (it is no recipe setting) and checked:
    ``trials: N`` and ``space:`` mapping keys to distributions, as ``--trials`` and ``--search-space`` give them."""
    block = content.pop("search", None)
    if block is None:
        return None
    if not isinstance(block, dict):
        raise BertTasksError("search: must be a mapping with trials and space", file=file, record="key search")
    unknown = sorted(set(block) - set(SEARCH_BLOCK_KEYS))
    if unknown:
        raise BertTasksError(f"search: unknown key {unknown[0]!r} (it takes {', '.join(SEARCH_BLOCK_KEYS)})", file=file,
                             record="key search")
    trials, space = block.get("trials"), block.get("space")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise BertTasksError(f"search.trials must be a whole number of at least 1, not {trials!r}", file=file,
                             record="key search.trials")
    if not isinstance(space, dict) or not space or not all(isinstance(v, str) for v in space.values()):
        raise BertTasksError("search.space must map recipe keys to distributions, e.g. "
                             "train.learning_rate: log(1e-5,1e-3)", file=file, record="key search.space")
    return {"trials": trials, "space": [f"{key}={dist}" for key, dist in space.items()]}


def resolve_recipe(
    recipe: str | None,
    *,
    task: str,
    data_class: type,
    overrides: list[str] = (),
    flags: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    flag_names: dict[str, str] | None = None,
    recipe_data: dict[str, Any] | None = None,
) -> Recipe:
    """Layer defaults, recipe file, ``--set`` overrides and explicit flags into a validated Recipe.

    ``task`` is the command's task when the recipe names none; ``data_class`` is that task's settings
    class (the registry knows it); ``flags`` maps dotted keys to CLI values (None: not given);
    ``defaults`` are the command's own defaults (e.g. run_qa.py's) below the recipe. An error about a
    value names where the value came from: the file, the ``--set`` item, or the flag (``flag_names``).
    ``recipe_data``: the recipe file's content when the caller has read it already (it is read once).
    """
    file: Path | None = None
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}  # dotted key -> the --set item or flag that gave its value
    for key, value in (defaults or {}).items():
        set_path(data, key.split("."), value, "defaults")
    given: set[str] = set()
    if recipe:
        file = find_recipe(recipe)
        content = recipe_data if recipe_data is not None else read_yaml(file)
        given |= _dotted_keys(content)
        _deep_update(data, content)
    for item in overrides:
        path, value = parse_override(item)
        set_path(data, path, value, f"--set {item}")
        origins[".".join(path)] = f"--set {item}"
    for key, value in (flags or {}).items():
        if value is not None:
            set_path(data, key.split("."), value, f"flag for {key}")
            origins[key] = (flag_names or {}).get(key, f"the flag for {key}")
    data.setdefault("task", task)
    given |= set(origins)
    try:
        data["data"] = from_dict(data_class, data.get("data"), file=file, where="data.", check=False)  # settled first
        data["data"].given = frozenset(k.removeprefix("data.") for k in given if k.startswith("data."))
        return from_dict(Recipe, data, file=file).validate()
    except BertTasksError as exc:
        record = exc.record
        if isinstance(record, str) and record.startswith("key ") and "." not in record:
            record = f"key data.{record[4:]}"  # the data section's own rules name its keys without the section
        key = record[4:] if isinstance(record, str) and record.startswith("key ") else _quoted_key(exc.reason)
        if key in origins:  # the value came from the command line, not the file
            raise BertTasksError(exc.reason, record=origins[key]) from None
        raise BertTasksError(exc.reason, file=file, record=record) from None


def _dotted_keys(data: Any, prefix: str = "") -> set[str]:
    """Every leaf key of a nested mapping, dotted (``{"data": {"task": ...}}`` -> ``{"data.task"}``)."""
    if not isinstance(data, dict):
        return {prefix.rstrip(".")} if prefix else set()
    return {key for name, value in data.items() for key in _dotted_keys(value, f"{prefix}{name}.")}


def trained_settings(model_dir: str | Path, cls: type, given: dict[str, Any] | None = None) -> Any:
    """A task's data settings as ``eval`` and ``predict`` take them: each value ``given`` (a flag; None: not
    given), else what the folder was trained with (its recipe.yaml, for the settings declared ``inherit=True``),
    else the default. Checked for types, not yet validated (the caller may still fill in a data source)."""
    trained = trained_recipe(model_dir)["data"]
    values = {f.name: trained[f.name] for f in dataclasses.fields(cls)
              if f.metadata.get("inherit") and trained.get(f.name) is not None}
    explicit = {k: v for k, v in (given or {}).items() if v is not None}
    settings = from_dict(cls, {**values, **explicit}, file=Path(model_dir) / "recipe.yaml", where="data.", check=False)
    settings.given = frozenset(explicit)
    return settings


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
        data["data"].given = recipe.data.given | {k.removeprefix("data.") for k in changes if k.startswith("data.")}
        return from_dict(Recipe, data).validate()
    except BertTasksError as exc:
        raise BertTasksError(f"{origin}: {exc.reason}", record=exc.record) from None


def _deep_update(base: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value

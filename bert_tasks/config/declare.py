"""Declaring a setting once: :func:`setting` (type, default, help, flag, bounds in one field), :class:`Settings`
(checks every field against its declaration), and the strict conversion a recipe file's values go through."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from dataclasses import MISSING, field, fields, is_dataclass
from typing import Any, Literal, TypeVar

from ..errors import BertTasksError, shown


def setting(default: Any = MISSING, help: str = "", *, factory: Any = MISSING, flags: tuple[str, ...] | None = None,
            cli: bool = True, at_least: float | None = None, above: float | None = None, at_most: float | None = None,
            below: float | None = None, source: str | None = None, also: tuple[str, ...] = (), path: bool = False,
            inherit: bool = False) -> Any:
    """A dataclass field that declares everything about one setting, once.

    ``flags``: the CLI spelling(s) (default ``--field-name``; ``"--a/--b"`` names a bool's two sides);
    ``cli=False`` leaves the setting to recipes and ``--set``; ``at_least``/``above``/``at_most``/
    ``below`` bound a number; ``source`` groups settings that name one data (or model) source, so
    a flag naming one source clears the recipe's other ones; ``also``: further recipe keys a flag sets;
    ``path``: the value names a local input (a file or folder the run reads, which its output must spare);
    ``inherit``: ``eval`` and ``predict`` default to the value the model folder was trained with.
    """
    metadata = {"help": help, "flags": flags, "cli": cli, "bounds": (at_least, above, at_most, below),
                "source": source, "also": also, "path": path, "inherit": inherit}
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
        require(False, f.name, f"{f.name} must be a finite number, got {shown(value)}")
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
        require(False, f.name, f"{f.name} must be {' and '.join(words) or 'a number'}, got {shown(value)}")


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
        raise BertTasksError(f"key '{key}' must be one of {', '.join(map(str, choices))}; got {shown(value)}", file=file)
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
        raise BertTasksError(f"key '{key}' must be {_type_name(tp)}, got {shown(value)}", file=file)
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

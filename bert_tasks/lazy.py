"""Package faces that import nothing until a name is asked for, so ``bert-tasks --help`` loads no torch.

A package ``__init__`` lists where each of its public names lives and hands them on::

    __getattr__, __dir__, __all__ = exports(__name__, {"load_pretrained": "load", ...})

``from bert_tasks.checkpoint import load_pretrained`` then imports ``bert_tasks.checkpoint.load`` on first use.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``, whose name ``n`` lives in module ``names[n]``."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{names[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)

"""bert-tasks: fine-tune and pretrain BERT on a from-scratch encoder that matches transformers.

Public API: :func:`load_pretrained`, :func:`save_pretrained`, :class:`QuestionAnswerer`.
Heavy modules are imported on first use so that ``bert-tasks --help`` stays fast.
"""

from __future__ import annotations

from .version import __version__

_LAZY = {
    "load_pretrained": ("bert_tasks.checkpoint.load", "load_pretrained"),
    "save_pretrained": ("bert_tasks.checkpoint.save", "save_pretrained"),
    "BertConfig": ("bert_tasks.model.config", "BertConfig"),
    "QuestionAnswerer": ("bert_tasks.tasks.squad.inference", "QuestionAnswerer"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'bert_tasks' has no attribute {name!r}")

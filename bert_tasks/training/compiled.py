"""Optional ``torch.compile`` of the encoder, in place and with an eager fallback.

Compilation is a fast path, never a requirement: :func:`compile_model` swaps each
target module's ``forward`` for a guarded one. The guard runs the compiled graph and,
if compiling (or running the compiled code) raises, warns once and runs that module
eagerly from then on. Parameter names and the state dict are unchanged, so
checkpoints, ``save_pretrained`` and Accelerate see the same model.

Scopes: ``"layer"`` compiles each :class:`~bert_tasks.model.EncoderLayer`. The layers
share one code object, so the first compile serves all of them (and a recompile for a
new sequence length happens once, not per layer). ``"model"`` compiles the whole
model's forward as one graph.

The backward graph is compiled when the first backward pass runs; ``train.fit`` catches a
failure there too and carries on uncompiled (public API only: no private torch switches).
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any, Callable

import torch
from torch import nn

from ..model.encoder import EncoderLayer
from ..model.fast import unwrap

log = logging.getLogger(__name__)

SCOPES = ("layer", "model")


class _Guard:
    """Compiled forward with a one-way switch to the eager one on the first failure."""

    def __init__(self, name: str, eager: Callable, dynamic: bool | None):
        self.name = name
        self.eager = eager
        self.compiled = torch.compile(eager, dynamic=dynamic)
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.failed:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as exc:  # any compiler or toolchain error: warn, and carry on uncompiled
            self.failed = True
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            warnings.warn(
                f"torch.compile failed for {self.name} ({type(exc).__name__}: {reason}); continuing uncompiled",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.eager(*args, **kwargs)


def compile_targets(model: nn.Module, scope: str = "layer") -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs :func:`compile_model` would compile."""
    if scope not in SCOPES:
        raise ValueError(f"compile scope must be one of {SCOPES}, got {scope!r}")
    model = unwrap(model)
    if scope == "model":
        return [("model", model)]
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, EncoderLayer)]
    return found or [("model", model)]  # a transformers model (--backend hf): whole model


def compile_model(model: nn.Module, scope: str = "layer", dynamic: bool | None = None) -> int:
    """Compile ``model`` in place (see the module docstring); returns how many modules now run compiled.

    Returns 0, with a warning, where ``torch.compile`` is unavailable.
    """
    if not hasattr(torch, "compile"):
        warnings.warn("this torch has no torch.compile; continuing uncompiled", RuntimeWarning, stacklevel=2)
        return 0
    targets = compile_targets(model, scope)
    for name, module in targets:
        if isinstance(module.forward, _Guard):
            continue
        # the bound method; an instance attribute shadows the class's forward, names and state dict untouched
        module.forward = functools.update_wrapper(_Guard(name, module.forward, dynamic), module.forward)
    log.info("torch.compile: %d module(s), scope %s", len(targets), scope)
    return len(targets)


def uncompile_model(model: nn.Module) -> None:
    """Undo :func:`compile_model`: every module runs its plain forward again."""
    for module in unwrap(model).modules():
        if isinstance(module.__dict__.get("forward"), _Guard):
            del module.forward


def compile_failed(model: nn.Module) -> bool:
    """True if any compiled module has fallen back to eager."""
    return any(
        isinstance(m.__dict__.get("forward"), _Guard) and m.__dict__["forward"].failed
        for m in unwrap(model).modules()
    )

"""The output folders a command claims, and the clean-up that removes them again when it stops before results.

What one command has claimed is held by a :class:`Ledger`, not by module state: the CLI opens one per command
(:func:`open_ledger`) and hands the same object to its Ctrl-C watchdog, which runs in another thread. Code that
runs outside any command (the Python API, tests) gets a ledger of its own the first time it claims a folder.
Torch-free, so that the CLI can open a ledger before it knows the command.
"""

from __future__ import annotations

import contextvars
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..io import output_folder, prepare_output_dir
from ..model.spec import POOLED_WEIGHTS


@dataclass
class OutputFolder:
    """An output folder this command claimed, and what it held before."""

    path: Path
    #: True: this command made the folder; False: it was there (empty, or emptied by --overwrite-output-dir)
    created: bool
    #: a --resume-from run continues the folder's contents, which are never removed
    resumed: bool


@dataclass
class Ledger:
    """What one command claimed (its output folders, in order) and how many of its runs began training: a failure
    before any did is the input's, which every other run of a sweep would meet too."""

    folders: list[OutputFolder] = field(default_factory=list)
    trainings_started: int = 0
    #: Ctrl-C was handled (once, whichever thread got there first)
    interrupted: bool = False

    def claim(self, path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
        """:func:`io.prepare_output_dir`, remembering the folder so an unfinished run can be cleaned up."""
        path = Path(path)
        created = not path.exists()
        prepare_output_dir(path, overwrite=overwrite, resume=resume)
        self.folders.append(OutputFolder(path, created=created, resumed=resume and not created))
        return path

    def track(self, path: Path) -> Path:
        """A results folder (``eval``'s): made if missing, removed again if the command stops before it holds results."""
        created = not path.exists()
        output_folder(path)
        self.folders.append(OutputFolder(path, created=created, resumed=not created))
        return path

    def discard_unfinished(self) -> tuple[list[Path], list[Path]]:
        """After an error or Ctrl-C: remove what this command wrote into folders that hold no results yet.

        A folder with a saved model or a complete checkpoint is kept (a resumed folder always is), so
        ``--resume-from latest`` can continue it; anything else this command made is removed, so a bad
        input or an early Ctrl-C leaves nothing half-written and the same command can simply be run again.
        Returns (removed, kept) folders.
        """
        removed, kept = [], []
        while self.folders:
            folder = self.folders.pop()
            if folder.resumed or has_results(folder.path):
                kept.append(folder.path)
                continue
            if not folder.path.is_dir():
                continue
            if folder.created:
                shutil.rmtree(folder.path, ignore_errors=True)
            else:  # the user's own (empty) folder: leave it as it was
                for child in folder.path.iterdir():
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            removed.append(folder.path)
        return removed, kept


_CURRENT: contextvars.ContextVar[Ledger] = contextvars.ContextVar("bert_tasks_ledger")


def current() -> Ledger:
    """The ledger of the command running in this context (a new one where none was opened)."""
    try:
        return _CURRENT.get()
    except LookupError:
        ledger = Ledger()
        _CURRENT.set(ledger)
        return ledger


@contextmanager
def open_ledger() -> Iterator[Ledger]:
    """A fresh ledger for one command, current until the command ends."""
    ledger = Ledger()
    token = _CURRENT.set(ledger)
    try:
        yield ledger
    finally:
        _CURRENT.reset(token)


def claim_output_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
    return current().claim(path, overwrite=overwrite, resume=resume)


def track_output_dir(path: Path) -> Path:
    return current().track(path)


#: the files whose presence makes a folder worth keeping after a failure: a saved model (transformers' weights file,
#: or a pooled classifier's) or scores
RESULT_FILES = ("model.safetensors", POOLED_WEIGHTS, "eval_results.json")


def has_results(folder: Path) -> bool:
    """A saved model, a complete checkpoint or scores anywhere under ``folder``: worth keeping after a failure."""
    if not folder.is_dir():
        return False
    if any((folder / name).is_file() for name in RESULT_FILES) or any(
            folder.glob("checkpoints/step-*/trainer_state.json")):
        return True
    return any(has_results(child) for child in folder.iterdir() if child.is_dir() and child.name != "checkpoints")

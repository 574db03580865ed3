"""User-facing errors: one line naming the file, the record and the reason.

Anything a user can fix (a malformed file, an unknown task, an impossible
config) is raised as :class:`BertTasksError`. The CLI prints it as a single
line on stderr and exits with code 2; every other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import os
import reprlib

EXIT_BAD_INPUT = 2
#: an error line longer than this is cut (a value in it may be a file's whole content, or an expanded YAML alias)
MAX_LINE = 600

_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxlevel = 60, 60, 4, 4, 2


def shown(value: object) -> str:
    """``repr(value)`` cut to a readable length, without building the whole of a huge value's repr first."""
    return _SHOWN.repr(value)


class BertTasksError(Exception):
    """An error in the user's input, rendered as ``file: record: reason``."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, reason: str, *, file: str | os.PathLike | None = None, record: str | int | None = None):
        self.reason = reason
        self.file = None if file is None else str(file)
        self.record = record
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(self.file)
        if self.record is not None:
            named = isinstance(self.record, str) and self.record.startswith(("line ", "key ", "record ", "--", "the flag"))
            parts.append(self.record if named else f"record {self.record}")
        parts.append(self.reason)
        line = ": ".join(p.replace("\n", " ") for p in parts)
        return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def from_ctrl_c(exc: BaseException) -> bool:
    """A Ctrl-C, or an error raised while one was being handled (its ``__context__``): the standard library's own
    clean-up can fail when the interrupt lands mid-way (``shutil.rmtree`` closing a descriptor twice raises
    ``EBADF``), and that error must stop the run as the Ctrl-C it is, not pass for a failed run or a bug."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__context__
    return False

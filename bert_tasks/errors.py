"""User-facing errors: one line naming the file, the record and the reason.

Anything a user can fix (a malformed file, an unknown task, an impossible
config) is raised as :class:`BertTasksError`. The CLI prints it as a single
line on stderr and exits with code 2; every other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import os

EXIT_BAD_INPUT = 2


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
        return ": ".join(p.replace("\n", " ") for p in parts)

"""A Ctrl-C on every line: run a call again and again, raising ``KeyboardInterrupt`` at its 1st, 2nd, 3rd ...
line, counted over every Python frame it runs (the standard library's included, where the windows hide: a
``pathlib`` call between making a folder and the ``try`` that removes it), and check what each run left.

Python delivers a SIGINT between bytecodes, so a line boundary is where a real Ctrl-C lands; this tries them all
rather than hoping a timed signal hits the narrow one (CI's timed Ctrl-C test hit one on two of its runs).
"""

from __future__ import annotations

import sys
from typing import Callable

from bert_tasks.errors import from_ctrl_c


#: path arithmetic, entered but not walked line by line: its lines make nothing, and where a call ends in a system
#: call (``Path.mkdir``, ``Path.unlink``), nothing runs between it and the caller's next line, which is tried
_NOT_WALKED = ("pathlib.py", "posixpath>", "genericpath>")


class _RaiseAt:
    def __init__(self, n: int):
        self.n, self.seen, self.where = n, 0, None

    def __call__(self, frame, event, arg):
        walked = not frame.f_code.co_filename.endswith(_NOT_WALKED)
        if event == "line" and not walked:
            return None
        if event == "call" and not walked and frame.f_back.f_code.co_filename.endswith(_NOT_WALKED):
            return None
        if event in ("call", "line"):
            self.seen += 1
            if self.seen == self.n:
                sys.settrace(None)
                self.where = f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"
                raise KeyboardInterrupt
        return self if walked else None


def interrupt_on_every_line(call: Callable[[], object], check: Callable[[str], None], limit: int = 20000) -> int:
    """Run ``call`` once per line it executes, interrupted there; ``check(where)`` after each run, and once more
    after the run that finished (``where`` "finished"). Returns how many lines were tried."""
    for n in range(1, limit + 1):
        tracer = _RaiseAt(n)
        sys.settrace(tracer)
        try:
            call()
            finished = True
        except BaseException as exc:  # the Ctrl-C, or an error the standard library's clean-up raised over it
            if not from_ctrl_c(exc):
                raise
            finished = False
        finally:
            sys.settrace(None)
        # checked once the exception is let go, as the CLI lets it go before it exits: a `with` cut off on
        # entering __exit__ leaves its generator suspended, closed (and cleaning up) when it is freed
        check("finished" if finished else tracer.where)
        if finished:
            return n
    raise AssertionError(f"the call ran more than {limit} lines: is it a loop?")

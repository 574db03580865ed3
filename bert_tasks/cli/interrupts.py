"""Ctrl-C that is always heard.

The first SIGINT raises ``KeyboardInterrupt`` in the main thread, as Python's default
handler does, so the command stops at once, removes an unfinished output folder and
says ``interrupted``. Python runs signal handlers only between bytecodes of the main
thread, though, so a long call into native code (a tokenizer, a kernel, a file copy)
could keep the run going for minutes. A watchdog thread therefore hears every SIGINT
through :func:`signal.set_wakeup_fd` (written at C level, the moment the signal
arrives): after a second Ctrl-C, or when the run has not stopped ``grace`` seconds
after the first, it calls ``force_exit`` itself.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from typing import Callable

#: seconds the run gets to stop by itself after the first Ctrl-C
GRACE_SECONDS = 10.0
#: SIGINTs closer together than this are one Ctrl-C (a terminal signals the whole process group at once)
SAME_CTRL_C = 0.3
#: the watch of this process, if one is on; a forked child (a DataLoader worker) must not feed its pipe
_ACTIVE: list["InterruptWatch"] = []


def _leave_the_parents_watch() -> None:
    """In a forked child: its SIGINTs are its own, not a second Ctrl-C of the parent's."""
    for watch in _ACTIVE:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in watch._fds or ():
            try:
                os.close(fd)
            except OSError:
                pass
        watch._fds = None
    _ACTIVE.clear()


os.register_at_fork(after_in_child=_leave_the_parents_watch)


class InterruptWatch:
    """Context manager: SIGINT raises KeyboardInterrupt once; a watchdog enforces the grace period."""

    def __init__(self, force_exit: Callable[[str], None], grace: float | None = None):
        self.force_exit = force_exit
        self.grace = GRACE_SECONDS if grace is None else grace
        self.interrupted = False
        self._fds: tuple[int, int] | None = None

    def __enter__(self) -> "InterruptWatch":
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach only the main thread: nothing to watch from here
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._fds = (read_fd, write_fd)
        self._read_fd = read_fd
        self._previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        _ACTIVE.append(self)
        threading.Thread(target=self._watch, name="bert-tasks-interrupts", daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fds is None:
            return
        signal.signal(signal.SIGINT, self._previous_handler)
        signal.set_wakeup_fd(self._previous_fd)
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        write_fd = self._fds[1]
        self._fds = None
        os.close(write_fd)  # the watchdog reads end-of-file, closes its end and returns

    def _on_sigint(self, signum, frame) -> None:
        if self.interrupted:
            return  # already stopping; the watchdog decides whether to wait longer
        self.interrupted = True
        raise KeyboardInterrupt

    def _watch(self) -> None:
        read_fd = self._read_fd
        first = deadline = None
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select([read_fd], [], [], timeout)
                if not ready:
                    self.force_exit(f"the run did not stop within {self.grace:.0f} s of Ctrl-C")
                    return
                data = os.read(read_fd, 64)
                if not data:
                    return
                if signal.SIGINT not in data:
                    continue
                now = time.monotonic()
                if first is None:
                    first, deadline = now, now + self.grace
                elif now - first > SAME_CTRL_C:
                    self.force_exit("second Ctrl-C")
                    return
        except OSError:
            return  # the pipe was closed under us (the watch ended): nothing left to watch
        finally:
            try:
                os.close(read_fd)
            except OSError:
                pass

"""Whether the Hugging Face Hub can be reached, asked once and quickly.

Without a network, `datasets` and `huggingface_hub` retry each request with back-off: half a
minute of WARNING lines before the error. Every Hub path of bert-tasks asks :func:`require_hub`
first and fails at once, in one line. With ``HF_HUB_OFFLINE=1`` the libraries answer from their
cache without a request, so nothing is probed.
"""

from __future__ import annotations

import functools
import os
import socket
import threading

from ..errors import BertTasksError

HOST = ("huggingface.co", 443)


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() not in ("0", "", "false", "no")


@functools.cache
def reachable(timeout: float = 1.0) -> bool:
    """A TCP connection to the Hub within ``timeout`` (a thread bounds the DNS lookup too)."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection(HOST, timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return answer == [True]


def require_hub(what: str) -> None:
    """Refuse at once to fetch ``what`` from an unreachable Hub (HF_HUB_OFFLINE: the cache decides)."""
    if not offline_mode() and not reachable():
        raise BertTasksError(f"{what}: the Hugging Face Hub is unreachable (offline); use local files, or set "
                             "HF_HUB_OFFLINE=1 to use what is in the local cache")

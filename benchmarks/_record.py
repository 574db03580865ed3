"""Writes one benchmark's section into benchmarks/RESULTS.md, keeping the others.

Each section sits between ``<!-- begin NAME -->`` and ``<!-- end NAME -->``
markers, so re-running a benchmark replaces only its own figures.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
#: the real data sets: $BERT_TASKS_DATA, else ../shared/data beside the repository (as on the project's machines)
DATA = Path(os.environ.get("BERT_TASKS_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def shown(path: str | Path) -> str:
    """A data path as RESULTS.md quotes it: relative to the repository, never one machine's absolute path."""
    try:
        return os.path.relpath(Path(path).resolve(), Path(__file__).resolve().parents[1])
    except ValueError:
        return str(path)


def machine_line() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU {cpu}"
    import transformers

    return (
        f"{_dt.date.today().isoformat()} · {device} · {torch.get_num_threads()} threads · "
        f"python {platform.python_version()} · torch {torch.__version__} · transformers {transformers.__version__}"
    )


def load_note(start: float, end: float | None = None) -> str:
    """The 1-minute load average over a run (``end`` defaults to now): how far to trust its absolute times."""
    end = os.getloadavg()[0] if end is None else end
    return (f"1-minute load average {start:.1f} at the start and {end:.1f} at the end on {os.cpu_count()} cores "
            "(the run's own threads included)")


def command_line() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def record(name: str, body: str, path: Path = RESULTS) -> None:
    from bert_tasks.io import atomic_write_text

    section = (
        f"<!-- begin {name} -->\n## {name}\n\n{machine_line()}\n\n"
        f"Command: `{command_line()}`\n\n{body.strip()}\n<!-- end {name} -->"
    )
    text = path.read_text() if path.exists() else "# Benchmark results\n\nEach section is rewritten by the benchmark that owns it.\n"
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    atomic_write_text(path, text)

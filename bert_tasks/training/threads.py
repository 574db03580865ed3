"""How many CPU threads a run uses, chosen once at start-up, with the reason stated.

Torch defaults to one thread per core. That is right on an idle machine (2 threads were 1.7x
faster than 1 for a MiniLM step here), and badly wrong on a busy one: OpenMP threads that
outnumber the free cores stall at every parallel region while a preempted sibling waits its
turn (11x slower with 2 threads than 1 when another job kept a core busy; ``python -m
benchmarks cpu_settings``, benchmarks/RESULTS.md). So a run uses every core it is allowed
(``os.sched_getaffinity``) unless other work kept cores busy *over the last minute* (the 1-minute
load average, less this process's own share) *and still does* (the run queue now): one passing
process cannot fake the first, and a job that has just ended does not linger through the second.
``train.num_threads`` and ``OMP_NUM_THREADS`` win.

Torch-free on purpose: ``bert-tasks env`` reports the choice without importing torch.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

#: the load average the kernel reports decays with this time constant (seconds)
LOAD_WINDOW = 60.0
#: other work's 1-minute load that counts as one busy core (a core busy three quarters of the last minute)
BUSY_CORE_LOAD = 0.75


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str

    def line(self) -> str:
        return f"{self.threads} thread{'s' if self.threads != 1 else ''} ({self.reason})"


def allowed_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def sustained_load() -> float | None:
    """The 1-minute load average, or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def own_load() -> float:
    """This process's share of the 1-minute load: its CPU use so far, weighted as the kernel's average weighs it.

    Small for a command just started; near 1 for a long-lived busy process (a test session calling
    the CLI in-process), which must not count itself as "other work".
    """
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        alive = max(1e-3, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
    busy = min(1.0, time.process_time() / alive)
    return busy * (1.0 - math.exp(-alive / LOAD_WINDOW))


def running_now(samples: int = 5, interval: float = 0.02) -> int | None:
    """Other threads runnable right now: the median of a few reads of /proc/loadavg, less this one."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        counts.append(max(0, running - 1))
        if i + 1 < samples:
            time.sleep(interval)
    return sorted(counts)[len(counts) // 2]


def choose_threads(requested: int | None = None) -> ThreadChoice:
    """The thread count for a run, and why: the recipe, OMP_NUM_THREADS, or the cores not busy with other work."""
    if requested:
        return ThreadChoice(requested, "set by train.num_threads")
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return ThreadChoice(int(omp), "set by OMP_NUM_THREADS")
    cores = allowed_cores()
    load = sustained_load()
    if load is None:
        return ThreadChoice(cores, f"all {cores} allowed cores; no load average on this OS")
    others = max(0.0, load - own_load())
    sustained = int(others + 1 - BUSY_CORE_LOAD)
    now = running_now()
    # busy only if busy over the last minute *and* still now: a job that just ended, or one passing
    # process, leaves the cores to this run
    busy = min(cores - 1, sustained, sustained if now is None else now)
    if busy <= 0:
        return ThreadChoice(cores, f"all {cores} allowed cores; other work: 1-minute load {others:.2f}, "
                                   f"{now if now is not None else '?'} runnable now")
    return ThreadChoice(cores - busy, f"{cores - busy} of {cores} allowed cores: other work kept about {busy} busy "
                                      f"over the last minute (load {others:.2f}) and still does ({now} runnable)")

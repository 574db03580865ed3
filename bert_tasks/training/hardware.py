"""What the CPU can do, read without torch: whether it computes bf16 natively.

``train.mixed_precision: auto`` (the default) picks bf16 autocast only where the matmuls run in bf16 natively:
a CPU with AVX512-BF16 or AMX (on this project's 2-core AMD EPYC a MiniLM fine-tune ran 1.5-1.9x faster at the
same dev scores, ``benchmarks glue_seeds``), or a GPU that supports bf16. Elsewhere bf16 is emulated and slower,
so auto means fp32. ``bert-tasks env`` reports the choice without importing torch.
"""

from __future__ import annotations

from pathlib import Path

#: /proc/cpuinfo flags that mean native bf16 matmuls
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo cannot be read."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_bf16_flag(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The flag that says this CPU computes bf16 natively, or None."""
    flags = cpu_flags(cpuinfo)
    return next((flag for flag in BF16_FLAGS if flag in flags), None)

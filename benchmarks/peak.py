"""This machine's dense matrix-multiply peak (GFLOP/s), the yardstick for model FLOPs utilisation.

Square matmuls of a few sizes are timed after a warm-up; each size reports the
median of its repeats and the best size is the peak. Other benchmarks call
:func:`measure_matmul_peak` so their MFU is computed against a peak measured in
the same run, under the same load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

SIZES = (512, 1024, 2048)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _matmul_times(n: int, dtype: torch.dtype, seconds: float) -> list[float]:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: page in the buffers, let oneDNN/MKL pick its kernel
    times = []
    deadline = time.perf_counter() + seconds
    while not times or (time.perf_counter() < deadline and len(times) < 50):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - start)
    return times


def measure_matmul_peak(dtype: torch.dtype = torch.float32, seconds_budget: float = 3.0) -> float:
    """Best-size median GFLOP/s of ``n x n @ n x n`` in ``dtype``, spending about ``seconds_budget``.

    Sizes go smallest first; a size whose single multiply would overrun its share
    of a small budget is skipped, so a tiny budget means a quick, rougher figure.
    """
    best, share = 0.0, seconds_budget / len(SIZES)
    for n in SIZES:
        times = _matmul_times(n, dtype, share)
        best = max(best, 2 * n**3 / statistics.median(times) / 1e9)
        if 8 * times[-1] > share:  # the next size costs 8x; it would not get enough repeats
            break
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks peak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per dtype")
    parser.add_argument("--quick", action="store_true", help="one second per dtype")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    for name, dtype in DTYPES.items():
        print(f"{name}: {measure_matmul_peak(dtype, seconds):.0f} GFLOP/s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()

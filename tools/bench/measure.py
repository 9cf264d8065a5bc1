"""Timing, FLOP counting and the machine's matmul peak, shared by every bench."""
from __future__ import annotations

import math
import statistics
import time
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: torch.device | str = "cpu") -> float:
    """Wall seconds of one call (CUDA work included)."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1, device: torch.device | str = "cpu",
           between: Callable[[], Any] | None = None) -> list[float]:
    """``warmup`` untimed calls, then the seconds of ``repeats`` timed calls (``between`` runs after each one)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        times.append(timed(fn, device))
        if between is not None:
            between()
    return times


def peak_measured(back_to_back: bool) -> str:
    """Where the matmul rate was measured, as the JSON and the table say it."""
    return "after the updates" if back_to_back else "between the updates"


def timed_update(fn: Callable[[], Any], repeats: int, warmup: int, device: torch.device | str = "cpu",
                 back_to_back: bool = False) -> dict[str, Any]:
    """An update's FLOPs (counted on the first warm-up call), the seconds of ``repeats`` timed calls, and the
    matmul peak measured between them (interleaved, so a loaded machine slows both alike), or with
    ``back_to_back`` the calls timed one after another and the peak measured ``repeats`` times after them (what
    runs between two updates slows the next one: dreamer_v3 README, Performance)."""
    flops, _ = count_flops(fn)
    peaks: list[float] = []
    probe = MatmulProbe(device=device)
    between = None if back_to_back else lambda: peaks.append(probe())
    times = repeat(fn, repeats, warmup=max(0, warmup - 1), device=device, between=between)
    if back_to_back:
        peaks = [probe() for _ in range(repeats)]
    median = statistics.median(times)
    gflops = flops / median / 1e9
    peak = statistics.median(peaks)
    return {"median_s": median, "times_s": times, "flops": flops, "gflops_per_s": gflops,
            "peak_gflops": peak, "peak_samples": peaks, "peak_fraction": gflops / peak,
            "peak_measured": peak_measured(back_to_back)}


def rate(step: Callable[[], Any], repeats: int, target_s: float = 1.0, max_calls: int = 1000,
         device: torch.device | str = "cpu") -> dict[str, Any]:
    """Calls per second of ``step``: one warm-up call sizes each repeat to about ``target_s`` seconds; the median
    over ``repeats`` repeats."""
    first = timed(step, device)
    calls = max(1, min(max_calls, math.ceil(target_s / max(first, 1e-6))))
    times = repeat(lambda: [step() for _ in range(calls)], repeats, warmup=0, device=device)
    return {"calls": calls, "times_s": times, "median_s": statistics.median(times),
            "per_s": calls / statistics.median(times)}


def count_flops(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Floating-point operations of one call as torch's FLOP counter counts them (matmuls, convolutions and
    attention, forward and backward: 2 per multiply-add; elementwise ops are not counted). Returns (flops, result)."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return int(counter.get_total_flops()), out


class MatmulProbe:
    """GFLOP/s of one n x n x n float32 matmul per call (the machine's one-thread sgemm rate at this moment)."""

    def __init__(self, n: int = 2048, device: torch.device | str = "cpu") -> None:
        self.n, self.device = n, device
        self.a, self.b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        self.out = torch.empty(n, n, device=device)
        torch.mm(self.a, self.b, out=self.out)

    def __call__(self) -> float:
        return 2 * self.n ** 3 / timed(lambda: torch.mm(self.a, self.b, out=self.out), self.device) / 1e9


def matmul_peak(n: int = 2048, repeats: int = 5, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """GFLOP/s of an n x n x n matmul (sgemm for float32) on the current thread setting: the median and the best
    of ``repeats`` after one warm-up."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    times = repeat(lambda: torch.mm(a, b, out=out), repeats, warmup=1, device=device)
    flops = 2 * n ** 3
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "times_s": times,
            "median_gflops": flops / statistics.median(times) / 1e9, "best_gflops": flops / min(times) / 1e9}

"""Keep freed tensor memory in the process instead of handing it back to the kernel.

glibc's allocator serves every request above its mmap threshold (128 KiB, raised dynamically up to 32 MiB) with a
fresh ``mmap`` and returns it with ``munmap`` when freed. A training update allocates and frees the same large
activations and gradients every step, so each step touches freshly mapped pages and pays one page fault per 4 KiB
page. Measured with ``python -m tools.bench`` on this project's 2-core CPU: one DreamerV3 12M image update 26.3 ->
17.0 s (dreamer_v3/README.md, Performance, with the command; the other learners' READMEs too). It changes where memory
comes from, never what is computed; the cost is that the process keeps its peak heap (RSS stays at its high-water
mark). Setting ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=...`` before Python starts does
the same; this call does it from inside, for every entry point.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_MAX = -4
_TRIM_NEVER = 2**31 - 1  # the largest int: the heap's top is never trimmed back to the kernel


def reuse_freed_memory() -> bool:
    """Serve large allocations from the heap and never trim it (glibc); True if applied, False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other libcs have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, _TRIM_NEVER))

"""tools.memory: large frees stay in the process on glibc (the bench's 2x on conv updates), a no-op elsewhere."""
import platform
import sys

from tools.memory import reuse_freed_memory


def test_applies_on_glibc_and_is_idempotent():
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert reuse_freed_memory() is expected
    assert reuse_freed_memory() is expected


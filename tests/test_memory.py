"""tools.memory: large frees stay in the process on glibc (DreamerV3's 12M image update -36% in the bench), a no-op elsewhere."""
import platform
import sys

from tools.memory import reuse_freed_memory


def test_applies_on_glibc_and_is_idempotent():
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert reuse_freed_memory() is expected
    assert reuse_freed_memory() is expected

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: one thread is ~10x faster than two competing ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

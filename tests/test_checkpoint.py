import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.checkpoint import CheckpointError, load_checkpoint, rng_state, save_checkpoint, set_rng_state

ROOT = Path(__file__).resolve().parent.parent


def test_round_trip_restores_model_optimiser_and_rng(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).sum().backward()
    optimiser.step()
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                                        "rng": rng_state(), "step": 7})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())

    state = load_checkpoint(tmp_path / "c.pt")
    clone = torch.nn.Linear(3, 2)
    clone.load_state_dict(state["model"])
    clone_optimiser = torch.optim.Adam(clone.parameters(), lr=1e-3)
    clone_optimiser.load_state_dict(state["optimiser"])
    set_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert state["step"] == 7
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(optimiser.state_dict()["state"][0]["exp_avg"], clone_optimiser.state_dict()["state"][0]["exp_avg"])


def test_corrupt_and_missing_checkpoints_raise_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or unreadable checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


KILLED_WRITER = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, {root!r})
    from tools import checkpoint
    checkpoint.save_checkpoint({path!r}, {{"step": 1, "w": torch.ones(3)}})
    def slow_save(state, handle):
        handle.write(b"PK partial bytes of a checkpoint")
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
    checkpoint.torch.save = slow_save
    checkpoint.save_checkpoint({path!r}, {{"step": 2, "w": torch.zeros(3)}})
""")


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    path = str(tmp_path / "latest.pt")
    script = KILLED_WRITER.format(root=str(ROOT), path=path)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    state = load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))

"""Atomic checkpoints with RNG capture.

``save_checkpoint`` writes to a temporary file in the same folder, fsyncs, and renames over the target, so a
run killed in the middle of a write leaves the previous checkpoint intact. ``load_checkpoint`` uses
``weights_only=True``: checkpoints hold tensors, numbers, strings and containers only (RNG states are
converted to tensors by ``rng_state``). ``fault_point`` lets the kill-and-resume tests die inside the write
window (``WORLDMODELS_KILL_AT=checkpoint``).
"""
from __future__ import annotations

import os
import pickle
import random
import signal
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read: corrupt, truncated or not a checkpoint."""


def fault_point(name: str) -> None:
    """The kill-and-resume tests' way into a window no outside kill can aim at: ``WORLDMODELS_KILL_AT=<name>``
    makes the process SIGKILL itself here."""
    if os.environ.get("WORLDMODELS_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        fault_point("checkpoint")  # written, not yet renamed: the previous checkpoint must stay valid
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(f"corrupt or unreadable checkpoint {path}: {error}") from None


def rng_state() -> dict[str, Any]:
    """Python, NumPy (global) and torch RNG states, in a form ``weights_only`` loading accepts."""
    state = {"python": _tuples_to_lists(random.getstate()), "numpy": numpy_rng_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    set_numpy_rng_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def numpy_rng_state() -> dict[str, Any]:
    """NumPy's global RNG state, in a form ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
            "cached": float(cached)}


def set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state(("MT19937", state["keys"].numpy().astype(np.uint32), state["pos"], state["has_gauss"],
                         state["cached"]))


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_tuples_to_lists(item) for item in value]
    return value

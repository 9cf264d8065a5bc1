"""On-disk data of a run: recorded rollouts (one compressed .npz each) and the encoded series."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np


def rollout_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("rollout_*[0-9].npz"))


def load_rollout(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"corrupt rollout file {path}: {error} (delete it and run collect again)") from None


def frame_batches(paths: list[Path], batch_size: int, rng: np.random.Generator,
                  files_per_chunk: int = 64) -> Iterator[np.ndarray]:
    """Shuffled uint8 frame batches (B, 64, 64, 3): files in random order, frames shuffled within chunks of
    ``files_per_chunk`` rollouts (all frames of 10k rollouts do not fit in memory at once)."""
    order = rng.permutation(len(paths))
    for start in range(0, len(order), files_per_chunk):
        frames = np.concatenate([load_rollout(paths[i])["frames"] for i in order[start:start + files_per_chunk]])
        frames = frames[rng.permutation(len(frames))]
        for begin in range(0, len(frames) - batch_size + 1, batch_size):
            yield frames[begin:begin + batch_size]


def save_series(path: Path, mus: list[np.ndarray], logvars: list[np.ndarray], actions: list[np.ndarray],
                dones: list[np.ndarray]) -> None:
    """Every rollout's (mu, logvar) as float16 (as the authors' series.npz), concatenated, with lengths."""
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, mu=np.concatenate(mus).astype(np.float16),
                        logvar=np.concatenate(logvars).astype(np.float16),
                        actions=np.concatenate(actions).astype(np.float32), dones=np.concatenate(dones),
                        lengths=np.array([len(m) for m in mus]))
    tmp.rename(path)


def load_series(path: Path) -> list[dict[str, np.ndarray]]:
    """The series as a list of episodes {mu, logvar, actions, dones} (float32)."""
    with np.load(path) as data:
        bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
        arrays = {key: data[key] for key in ("mu", "logvar", "actions", "dones")}
    return [{key: value[a:b].astype(np.float32) if key != "dones" else value[a:b]
             for key, value in arrays.items()} for a, b in zip(bounds[:-1], bounds[1:])]

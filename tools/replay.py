"""Sequence replay for PlaNet and the Dreamers: FIFO over environment steps, stored on disk.

Each environment worker owns one stream: a ring buffer of ``capacity // num_streams`` steps per key, kept in
``numpy.memmap`` files inside the run directory (``<run>/replay/``). The operating system pages the data in
on demand, so memory stays bounded and there is no second in-RAM copy; a restarted run reopens the same
files and carries on (the write positions live in ``replay/state.json``, written atomically after the data).

Transitions are stored as the Dreamers store them: step ``t`` holds the observation ``o_t``, the action
``a_{t-1}`` that led to it and the reward ``r_t`` received with it, plus ``is_first``, ``is_last`` and
``is_terminal``. ``sample(B, L)`` returns a dict of arrays shaped ``(B, L, ...)``. With
``within_episode=True`` (PlaNet, Dreamer v1) a sequence never crosses an episode boundary; otherwise it may,
and ``is_first`` tells the model where to reset its state (DreamerV2/V3).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np


class SequenceReplay:
    def __init__(self, directory: str | Path, capacity: int, num_streams: int = 1, seed: int = 0,
                 within_episode: bool = False) -> None:
        if capacity < num_streams:
            raise ValueError(f"replay capacity {capacity} is smaller than the number of streams {num_streams}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.capacity = int(capacity)
        self.num_streams = int(num_streams)
        self.stream_capacity = self.capacity // self.num_streams
        self.within_episode = within_episode
        self.rng = np.random.default_rng(seed)
        self.spec: dict[str, tuple[tuple[int, ...], str]] = {}
        self.written = [0] * self.num_streams  # total steps ever written per stream
        self.arrays: dict[str, list[np.memmap]] = {}
        state_path = self.dir / "state.json"
        if state_path.exists():
            state = json.loads(state_path.read_text())
            if state["stream_capacity"] != self.stream_capacity or state["num_streams"] != self.num_streams:
                raise ValueError(f"replay in {self.dir} was made with capacity {state['stream_capacity']} x "
                                 f"{state['num_streams']} streams; asked for {self.stream_capacity} x "
                                 f"{self.num_streams}")
            self.spec = {key: (tuple(shape), dtype) for key, (shape, dtype) in state["spec"].items()}
            self.written = state["written"]
            self._open("r+")

    # ---- writing ---------------------------------------------------------------------------------
    def add(self, step: Mapping[str, np.ndarray], stream: int = 0) -> None:
        """Append one step (a dict of arrays without batch dimension) to ``stream``."""
        if not self.spec:
            self.spec = {key: (tuple(np.shape(value)), np.asarray(value).dtype.str) for key, value in step.items()}
            self._open("w+")
        if set(step) != set(self.spec):
            raise KeyError(f"replay step keys {sorted(step)} differ from the stored keys {sorted(self.spec)}")
        index = self.written[stream] % self.stream_capacity
        for key, value in step.items():
            self.arrays[key][stream][index] = value
        self.written[stream] += 1

    def flush(self) -> None:
        """Push the data to disk, then record the write positions (call before a checkpoint)."""
        for per_stream in self.arrays.values():
            for array in per_stream:
                array.flush()
        state = {"stream_capacity": self.stream_capacity, "num_streams": self.num_streams,
                 "spec": {key: [list(shape), dtype] for key, (shape, dtype) in self.spec.items()},
                 "written": self.written}
        tmp = self.dir / ".state.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.dir / "state.json")

    # ---- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(min(count, self.stream_capacity) for count in self.written)

    def sample(self, batch: int, length: int) -> dict[str, np.ndarray]:
        """``batch`` sequences of ``length`` consecutive steps, uniform over valid start positions."""
        counts = np.array([max(0, min(written, self.stream_capacity) - length + 1) for written in self.written])
        if counts.sum() == 0:
            raise ValueError(f"replay has no sequence of length {length} yet ({len(self)} steps stored)")
        out = {key: np.empty((batch, length, *shape), dtype=dtype) for key, (shape, dtype) in self.spec.items()}
        for row in range(batch):
            stream, index = self._draw(counts, length)
            for key in self.spec:
                out[key][row] = self.arrays[key][stream][index]
        return out

    def _draw(self, counts: np.ndarray, length: int, attempts: int = 1000) -> tuple[int, np.ndarray]:
        """One (stream, ring indices) pair; with ``within_episode``, redraw sequences that cross into a new
        episode (a rejection sampler: uniform over the valid sequences)."""
        for _ in range(attempts):
            stream = int(self.rng.choice(len(counts), p=counts / counts.sum()))
            oldest = max(0, self.written[stream] - self.stream_capacity)
            begin = oldest + int(self.rng.integers(counts[stream]))
            index = np.arange(begin, begin + length) % self.stream_capacity
            if not self.within_episode or not self.arrays["is_first"][stream][index[1:]].any():
                return stream, index
        raise ValueError(f"no sequence of length {length} inside one episode after {attempts} draws; "
                         "are the episodes shorter than the sequence length?")

    def _open(self, mode: str) -> None:
        for key, (shape, dtype) in self.spec.items():
            self.arrays[key] = [
                np.lib.format.open_memmap(self.dir / f"{key}_{stream}.npy", mode=mode, dtype=np.dtype(dtype),
                                          shape=(self.stream_capacity, *shape))
                for stream in range(self.num_streams)]
        if mode == "w+":
            self.flush()

"""Sequence replay for PlaNet and the Dreamers: FIFO over environment steps, stored on disk.

Each environment worker owns one stream: a ring buffer of ``capacity // num_streams`` steps per key, kept in
``numpy.memmap`` files inside the run directory (``<run>/replay/``). The operating system pages the data in
on demand, so memory stays bounded and there is no second in-RAM copy.

Transitions are stored as the Dreamers store them: step ``t`` holds the observation ``o_t``, the action
``a_{t-1}`` that led to it and the reward ``r_t`` received with it, plus ``is_first``, ``is_last`` and
``is_terminal``. ``sample(B, L)`` returns a dict of arrays shaped ``(B, L, ...)``. With
``within_episode=True`` (PlaNet, Dreamer v1) a sequence never crosses an episode boundary; otherwise it may,
and ``is_first`` tells the model where to reset its state (DreamerV2/V3).

Positions and the checkpoint: ``flush()`` pushes the data to disk and writes ``state.json`` (the key layout and
the high-water mark of steps on disk). The authoritative write positions are in ``state_dict()``, which the
training driver stores inside its checkpoint: ``load_state_dict`` truncates the replay to what the checkpoint
knew, so steps written after the last checkpoint (by a run killed before it could save) are never sampled
(they are overwritten as the resumed run collects them again).

Online queue (DreamerV3, official ``replay.online``): with ``online_length=L``, every time a stream has gathered
``L`` new steps that chunk is queued, and ``sample_train`` serves queued chunks before uniform ones.

Replay context (DreamerV3, official ``replay_context``): extra per-step keys (e.g. the RSSM latent the policy or
the last training pass computed there) are stored like observations; ``sample(..., with_index=True)`` also
returns where each row came from, and ``update(index, values)`` writes new values back.
"""
from __future__ import annotations

import ast
import json
import os
from collections import deque
from pathlib import Path
from typing import Mapping

import numpy as np


class ReplayError(ValueError):
    """Replay files that do not match what the run expects (sizes, layout, positions)."""


class SequenceReplay:
    def __init__(self, directory: str | Path, capacity: int, num_streams: int = 1, seed: int = 0,
                 within_episode: bool = False, online_length: int = 0) -> None:
        if capacity < num_streams:
            raise ValueError(f"replay capacity {capacity} is smaller than the number of streams {num_streams}")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.capacity = int(capacity)
        self.num_streams = int(num_streams)
        self.stream_capacity = self.capacity // self.num_streams
        self.within_episode = within_episode
        self.online_length = int(online_length)
        self.rng = np.random.default_rng(seed)
        self.spec: dict[str, tuple[tuple[int, ...], str]] = {}
        self.written = [0] * self.num_streams  # total steps ever written per stream
        self.disk = [0] * self.num_streams  # steps ever written to the files (>= written after a truncation)
        self.queue: deque[tuple[int, int]] = deque()  # (stream, absolute start) of fresh chunks
        self.arrays: dict[str, list[np.memmap]] = {}
        state_path = self.dir / "state.json"
        if state_path.exists():
            self._reopen(state_path)

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
        self.disk[stream] = max(self.disk[stream], self.written[stream])
        length = self.online_length
        if length and self.written[stream] % length == 0:
            self.queue.append((stream, self.written[stream] - length))

    def update(self, index: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        """Write ``values[key]`` (B, L, ...) back at ``index`` (B, L, 2) = (stream, absolute step); rows whose
        step has been overwritten by newer data since sampling are skipped."""
        for row in range(len(index)):
            stream = int(index[row, 0, 0])
            steps = index[row, :, 1]
            keep = steps >= self._oldest(stream)
            ring = steps[keep] % self.stream_capacity
            for key, value in values.items():
                self.arrays[key][stream][ring] = value[row][keep]

    def flush(self) -> None:
        """Push the data to disk, then record the layout and how many steps the files hold."""
        for per_stream in self.arrays.values():
            for array in per_stream:
                array.flush()
        state = {"stream_capacity": self.stream_capacity, "num_streams": self.num_streams,
                 "spec": {key: [list(shape), dtype] for key, (shape, dtype) in self.spec.items()},
                 "written": self.disk}
        tmp = self.dir / f".state.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.dir / "state.json")

    # ---- positions (stored in the training checkpoint) --------------------------------------------
    def state_dict(self) -> dict:
        return {"written": list(self.written), "queue": [list(item) for item in self.queue],
                "rng": str(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        """Truncate to the checkpoint's positions; the files must hold at least that many steps."""
        written = [int(x) for x in state["written"]]
        if len(written) != self.num_streams:
            raise ReplayError(f"checkpoint has replay positions for {len(written)} streams; the replay in "
                              f"{self.dir} has {self.num_streams}")
        short = [s for s in range(self.num_streams) if written[s] > self.disk[s]]
        if short:
            raise ReplayError(f"replay files in {self.dir} hold {self.disk} steps per stream but the checkpoint "
                              f"counts {written}: the replay is older than the checkpoint (delete the run to restart)")
        self.written = written
        self.queue = deque((int(s), int(b)) for s, b in state.get("queue", []))
        self.rng.bit_generator.state = ast.literal_eval(state["rng"])

    # ---- reading ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(self.written[s] - self._oldest(s) for s in range(self.num_streams))

    def _oldest(self, stream: int) -> int:
        """Oldest step still valid in ``stream``: FIFO capacity, counted from the files' high-water mark so that
        slots reused by steps written after the checkpoint are never read as old data."""
        return max(0, self.disk[stream] - self.stream_capacity)

    def sample(self, batch: int, length: int, with_index: bool = False):
        """``batch`` sequences of ``length`` consecutive steps, uniform over valid start positions. With
        ``with_index`` also returns the (B, L, 2) array of (stream, absolute step) for ``update``."""
        counts = np.array([max(0, self.written[s] - self._oldest(s) - length + 1) for s in range(self.num_streams)])
        if counts.sum() == 0:
            raise ValueError(f"replay has no sequence of length {length} yet ({len(self)} steps stored)")
        out = {key: np.empty((batch, length, *shape), dtype=dtype) for key, (shape, dtype) in self.spec.items()}
        index = np.empty((batch, length, 2), np.int64)
        for row in range(batch):
            stream, begin = self._draw(counts, length)
            self._copy(out, index, row, stream, begin, length)
        return (out, index) if with_index else out

    def sample_train(self, batch: int, length: int, with_index: bool = False):
        """Like ``sample``, but queued fresh chunks (online queue) fill the first rows."""
        out, index = self.sample(batch, length, with_index=True)
        row = 0
        while self.queue and row < batch:
            stream, begin = self.queue.popleft()
            if begin < self._oldest(stream) or begin + length > self.written[stream]:
                continue  # overwritten already, or the chunk (plus context) is not complete
            self._copy(out, index, row, stream, begin, length)
            row += 1
        return (out, index) if with_index else out

    def _copy(self, out: dict, index: np.ndarray, row: int, stream: int, begin: int, length: int) -> None:
        steps = np.arange(begin, begin + length)
        for key in self.spec:
            out[key][row] = self.arrays[key][stream][steps % self.stream_capacity]
        index[row, :, 0], index[row, :, 1] = stream, steps

    def _draw(self, counts: np.ndarray, length: int, attempts: int = 1000) -> tuple[int, int]:
        """One (stream, absolute start) pair; with ``within_episode``, redraw sequences that cross into a new
        episode (a rejection sampler: uniform over the valid sequences)."""
        for _ in range(attempts):
            stream = int(self.rng.choice(len(counts), p=counts / counts.sum()))
            begin = self._oldest(stream) + int(self.rng.integers(counts[stream]))
            ring = np.arange(begin + 1, begin + length) % self.stream_capacity
            if not self.within_episode or not self.arrays["is_first"][stream][ring].any():
                return stream, begin
        raise ValueError(f"no sequence of length {length} inside one episode after {attempts} draws; "
                         "are the episodes shorter than the sequence length?")

    # ---- files -----------------------------------------------------------------------------------
    def _reopen(self, state_path: Path) -> None:
        try:
            state = json.loads(state_path.read_text())
            stream_capacity, num_streams = int(state["stream_capacity"]), int(state["num_streams"])
            spec = {key: (tuple(int(n) for n in shape), str(dtype)) for key, (shape, dtype) in state["spec"].items()}
            disk = [int(x) for x in state["written"]]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ReplayError(f"malformed replay state file {state_path}: {error}") from None
        if stream_capacity != self.stream_capacity or num_streams != self.num_streams:
            raise ReplayError(f"replay in {self.dir} was made with capacity {stream_capacity} x {num_streams} "
                              f"streams; asked for {self.stream_capacity} x {self.num_streams}")
        if len(disk) != self.num_streams:
            raise ReplayError(f"malformed replay state file {state_path}: {len(disk)} stream positions")
        self.spec, self.disk, self.written = spec, disk, list(disk)
        self._check_files()
        self._open("r+")

    def _check_files(self) -> None:
        """Every key's file exists with exactly the size its header promises (numpy would silently extend a
        short file opened for writing, and the missing steps would read as zeros)."""
        for key, (shape, dtype) in self.spec.items():
            for stream in range(self.num_streams):
                path = self._path(key, stream)
                expected = (self.stream_capacity, *shape)
                try:
                    with open(path, "rb") as handle:
                        version = np.lib.format.read_magic(handle)
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        found, _, found_dtype = read_header(handle)
                        offset = handle.tell()
                except (OSError, ValueError) as error:
                    raise ReplayError(f"replay file {path} is missing or damaged: {error}") from None
                size = offset + int(np.prod(expected)) * np.dtype(dtype).itemsize
                if tuple(found) != expected or found_dtype != np.dtype(dtype) or path.stat().st_size != size:
                    raise ReplayError(f"replay file {path} has {path.stat().st_size} bytes and shape {tuple(found)}; "
                                      f"expected {size} bytes of {expected} {np.dtype(dtype)} (damaged or truncated)")

    def _path(self, key: str, stream: int) -> Path:
        return self.dir / f"{key}_{stream}.npy"

    def _open(self, mode: str) -> None:
        for key, (shape, dtype) in self.spec.items():
            self.arrays[key] = [
                np.lib.format.open_memmap(self._path(key, stream), mode=mode, dtype=np.dtype(dtype),
                                          shape=(self.stream_capacity, *shape))
                for stream in range(self.num_streams)]
        if mode == "w+":
            self.flush()


def annotate(batch: dict[str, np.ndarray], first: bool = True) -> dict[str, np.ndarray]:
    """Mark sequence edges for models that carry state across episodes (official DreamerV3 batches): with
    ``first``, the first step starts a new latent state; a step followed by an episode start is ``is_last``."""
    if first:
        batch["is_first"] = batch["is_first"].copy()
        batch["is_first"][:, 0] = True
    following = np.roll(batch["is_first"], -1, axis=1)
    following[:, -1] = False
    batch["is_last"] = batch["is_last"] | following
    return batch

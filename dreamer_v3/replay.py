"""Uniform replay with the online queue (official `embodied/core/replay.py`, `online: True`): every time a stream
has gathered ``length`` new steps, that fresh sequence is queued and the next training batch takes it before
drawing the rest uniformly, so each new step is trained on at least once. Storage is `tools.replay.SequenceReplay`."""
from __future__ import annotations

import ast
from collections import deque

import numpy as np

from tools.replay import SequenceReplay


class OnlineReplay(SequenceReplay):
    def __init__(self, directory, capacity: int, length: int, seed: int = 0, online: bool = True) -> None:
        super().__init__(directory, capacity, num_streams=1, seed=seed)
        self.length, self.online = length, online
        self.queue: deque[int] = deque()  # absolute start index of fresh sequences in stream 0

    def add(self, step, stream: int = 0) -> None:
        super().add(step, stream)
        if self.online and self.written[0] % self.length == 0:
            self.queue.append(self.written[0] - self.length)

    def sample_train(self, batch: int) -> dict[str, np.ndarray]:
        """``batch`` sequences of ``length``: queued fresh ones first, the rest uniform. The first step of each
        sequence starts a new latent state (``is_first``), and a sequence that runs into a new episode has
        ``is_last`` set before it (as the official `_annotate_batch`)."""
        out = self.sample(batch, self.length)
        oldest = max(0, self.written[0] - self.stream_capacity)
        row = 0
        while self.queue and row < batch:
            begin = self.queue.popleft()
            if begin < oldest:
                continue  # overwritten already
            index = np.arange(begin, begin + self.length) % self.stream_capacity
            for key in self.spec:
                out[key][row] = self.arrays[key][0][index]
            row += 1
        return annotate(out)

    def state_dict(self) -> dict:
        return {"queue": list(self.queue), "rng": str(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        self.queue = deque(int(x) for x in state["queue"])
        self.rng.bit_generator.state = ast.literal_eval(state["rng"])


def annotate(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch["is_first"] = batch["is_first"].copy()
    batch["is_first"][:, 0] = True
    following = np.roll(batch["is_first"], -1, axis=1)
    following[:, -1] = False
    batch["is_last"] = batch["is_last"] | following
    return batch

"""Training batches for M, from the encoded series, with z sampled from N(mu, sigma) afresh every epoch.

``episodes`` (CarRacing, ``carracing/rnn_train.py``): random batches of episodes, a window of seq_len + 1
frames each (the whole 1000-frame episode in the paper setup), zero initial state.
``stream`` (Doom, ``doomrnn/rnn_train.py``): all episodes shuffled and concatenated, restart = 1 on each
first frame, cut into batch_size rows read in consecutive chunks; the LSTM state carries over between chunks.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np


class Batch(NamedTuple):
    z: np.ndarray        # (B, T + 1, Z)
    actions: np.ndarray  # (B, T + 1, A)
    restart: np.ndarray  # (B, T + 1) 1 on the first frame of an episode
    carry: bool          # whether the LSTM state continues from the previous batch


def _sample(episode: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return episode["mu"] + np.exp(episode["logvar"] / 2) * rng.standard_normal(episode["mu"].shape)


def episode_batches(episodes: list[dict], batch_size: int, seq_len: int, rng: np.random.Generator) -> Iterator[Batch]:
    usable = [e for e in episodes if len(e["mu"]) >= seq_len + 1]
    if not usable:
        raise ValueError(f"no episode has seq_len + 1 = {seq_len + 1} frames; lower mdnrnn.seq_len")
    for _ in range(max(1, len(usable) // batch_size)):
        z, actions = [], []
        for index in rng.integers(len(usable), size=batch_size):
            episode = usable[index]
            start = rng.integers(len(episode["mu"]) - seq_len)
            window = slice(start, start + seq_len + 1)
            z.append(_sample(episode, rng)[window])
            actions.append(episode["actions"][window])
        restart = np.zeros((batch_size, seq_len + 1), np.float32)
        yield Batch(np.stack(z).astype(np.float32), np.stack(actions), restart, carry=False)


def stream_batches(episodes: list[dict], batch_size: int, seq_len: int, rng: np.random.Generator) -> Iterator[Batch]:
    order = rng.permutation(len(episodes))
    z = np.concatenate([_sample(episodes[i], rng) for i in order]).astype(np.float32)
    actions = np.concatenate([episodes[i]["actions"] for i in order])
    restart = np.concatenate([np.eye(1, len(episodes[i]["mu"]), dtype=np.float32)[0] for i in order])
    chunks = (len(z) // batch_size - 1) // seq_len
    if chunks < 1:
        raise ValueError(f"{len(z)} frames are too few for one batch of {batch_size} x {seq_len + 1}; "
                         "collect more rollouts or lower mdnrnn.batch_size / seq_len")
    row = chunks * seq_len + 1
    rows = [array[:batch_size * row].reshape(batch_size, row, *array.shape[1:])
            for array in (z, actions, restart)]
    for k in range(chunks):
        window = slice(k * seq_len, (k + 1) * seq_len + 1)  # chunks overlap by one frame: exact state carry
        yield Batch(rows[0][:, window], rows[1][:, window], rows[2][:, window], carry=k > 0)


def make_batches(mode: str, episodes: list[dict], batch_size: int, seq_len: int,
                 rng: np.random.Generator) -> Iterator[Batch]:
    if mode == "episodes":
        return episode_batches(episodes, batch_size, seq_len, rng)
    if mode == "stream":
        return stream_batches(episodes, batch_size, seq_len, rng)
    raise ValueError(f"mdnrnn.batching must be 'episodes' or 'stream', got {mode!r}")

"""When to train: the four schedules of the RSSM papers, each named in its paper's own terms.

A schedule is asked after every policy step (``after_step``) and at every episode end (``after_episode``) how
many updates are owed now. Its only state is a float, saved in the checkpoint, so a resumed run owes exactly
what the killed one did.

| kind | paper | config |
| --- | --- | --- |
| ``ratio`` | DreamerV3: ``train_ratio`` replayed steps per policy step, i.e. ``train_ratio / (B * T)`` updates per policy step (official ``elements.when.Ratio``) | ``{kind: ratio, train_ratio: 512}`` |
| ``every`` | Dreamer v1: 100 updates every 1000 env steps; DreamerV2: ``train_steps`` every ``train_every`` policy steps | ``{kind: every, updates: 100, every: 1000, unit: env_steps}`` |
| ``episode`` | PlaNet: 100 updates, then collect one episode | ``{kind: episode, updates: 100}`` |

Random prefill (``run.prefill`` env steps or ``run.prefill_episodes`` whole episodes) is not a schedule: the
driver acts at random until it is done, and training starts after it (see ``Prefill``).
"""
from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

UNITS = ("env_steps", "policy_steps")


class Schedule:
    """Base: owes nothing. ``state`` is the one number a checkpoint keeps."""

    state: float = 0.0

    def after_step(self, env_steps: int, policy_steps: int, count: int = 1) -> int:
        """Updates owed after ``count`` more policy steps (one per environment), counters already advanced."""
        return 0

    def after_episode(self) -> int:
        return 0


class Ratio(Schedule):
    """``train_ratio / (batch * length)`` updates per policy step, the fractional rest carried over."""

    def __init__(self, train_ratio: float, batch: int, length: int) -> None:
        self.per_step = float(train_ratio) / (batch * length)
        self.state = 0.0

    def after_step(self, env_steps: int, policy_steps: int, count: int = 1) -> int:
        self.state += self.per_step * count
        owed = int(self.state)
        self.state -= owed
        return owed


class Every(Schedule):
    """``updates`` updates each time the counter in ``unit`` reaches the next multiple of ``every``; the first
    time is the first step after prefill (as the official ``tools.Every``, which fires on its first call)."""

    def __init__(self, updates: int, every: int, unit: str) -> None:
        if unit not in UNITS:
            raise ValueError(f"schedule unit must be one of {UNITS}, got {unit!r}")
        self.updates, self.every, self.unit = int(updates), int(every), unit
        self.state = -1.0  # counter value at which the next updates are due; -1: at the first step

    def after_step(self, env_steps: int, policy_steps: int, count: int = 1) -> int:
        now = env_steps if self.unit == "env_steps" else policy_steps
        if self.state < 0:
            self.state = float(now)
        owed = 0
        while now >= self.state:
            owed += self.updates
            self.state += self.every
        return owed


class PerEpisode(Schedule):
    """``updates`` updates after every finished training episode (PlaNet's "collect one episode after every
    100 updates", starting with 100 updates once the seed episodes are in)."""

    def __init__(self, updates: int) -> None:
        self.updates = int(updates)

    def after_episode(self) -> int:
        return self.updates


def make_schedule(spec: DictConfig | dict, batch: int, length: int) -> Schedule:
    kind = spec.get("kind")
    if kind == "ratio":
        return Ratio(spec["train_ratio"], batch, length)
    if kind == "every":
        return Every(spec["updates"], spec["every"], spec.get("unit", "env_steps"))
    if kind == "episode":
        return PerEpisode(spec["updates"])
    raise ValueError(f"run.schedule.kind must be ratio, every or episode; got {kind!r}")


@dataclass
class Prefill:
    """Uniform random actions until ``steps`` env steps and ``episodes`` whole episodes are collected."""

    steps: int = 0
    episodes: int = 0

    def active(self, env_steps: int, episodes: int) -> bool:
        return env_steps < self.steps or episodes < self.episodes

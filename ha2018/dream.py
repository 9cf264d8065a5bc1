"""The dream: M as an environment. The next z is sampled from M's mixture at temperature tau, done from M's
done head, the reward is +1 per step survived, and an episode is capped at ``max_steps`` (2100 for Doom).

``BatchedDream`` steps N dreams as one tensor rollout; ``dream_returns`` scores a whole CMA-ES population x its
rollouts in one batch (the authors ran one dream per CPU process). ``DreamEnv`` is the same thing behind the
Gymnasium API, one dream at a time (the authors' ``DoomCoverRNNEnv``).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ha2018.controller import Controller, features, model_action
from ha2018.mdnrnn import MDNRNN, State, done_probability, sample_mixture

DONE_MODES = ("threshold", "sample")


class BatchedDream:
    def __init__(self, mdnrnn: MDNRNN, initial_mu: torch.Tensor, initial_logvar: torch.Tensor,
                 temperature: float, done_mode: str = "threshold", generator: torch.Generator | None = None,
                 done_weight: float = 10.0) -> None:
        if done_mode not in DONE_MODES:
            raise ValueError(f"done_mode must be one of {DONE_MODES}, got {done_mode!r}")
        self.m, self.temperature, self.done_mode, self.generator = mdnrnn, temperature, done_mode, generator
        self.done_weight = done_weight
        self.initial_mu, self.initial_logvar = initial_mu, initial_logvar  # (E, Z): first frames of real rollouts
        self.z: torch.Tensor | None = None       # (N, Z)
        self.state: State | None = None          # (N, H) each
        self.restart: torch.Tensor | None = None  # (N,)

    @property
    def device(self) -> torch.device:
        return self.initial_mu.device

    def reset(self, n: int) -> None:
        """Start n dreams from z sampled around the first frame of random recorded rollouts (the authors'
        ``initial_z.json``), a zero LSTM state and the restart flag set."""
        index = torch.randint(len(self.initial_mu), (n,), generator=self.generator, device=self.device)
        noise = torch.randn((n, self.initial_mu.shape[1]), generator=self.generator, device=self.device)
        self.z = self.initial_mu[index] + torch.exp(self.initial_logvar[index] / 2) * noise
        self.state = self.m.initial_state(n, self.device)
        self.restart = torch.ones(n, device=self.device)

    def step(self, action: torch.Tensor) -> torch.Tensor:
        """action: (N, A) -> done: (N,) bool. Advances z and the LSTM state."""
        restart = self.restart if self.m.predict_done else None
        mixture, done_logit, self.state = self.m.step(self.z, action, restart, self.state)
        self.z = sample_mixture(mixture, self.temperature, self.generator)
        if done_logit is None:
            done = torch.zeros(len(action), dtype=torch.bool, device=self.device)
        elif self.done_mode == "threshold":
            done = done_logit > 0  # the authors' rule: done when P(done) > 0.5
        else:
            probability = done_probability(done_logit, self.done_weight)  # calibrated (see done_probability)
            done = torch.rand(done_logit.shape, generator=self.generator, device=self.device) < probability
        self.restart = done.float()
        return done

    def keep(self, mask: torch.Tensor) -> None:
        """Drop finished dreams from the batch (mask: (N,) bool of those to keep)."""
        self.z, self.restart = self.z[mask], self.restart[mask]
        self.state = State(self.state.c[mask], self.state.h[mask])

    def features(self, inputs: str) -> torch.Tensor:
        return features(self.z, self.state, inputs)


@torch.no_grad()
def dream_survival(dream: BatchedDream, act, n: int, max_steps: int) -> torch.Tensor:
    """Steps survived in each of n dreams (n,) by a policy act(rows (N_alive,)) -> actions (N_alive, A), rows
    being the dream index of each live batch row (the policy reads ``dream.features`` itself). Finished dreams
    leave the batch, so the cost follows the survivors."""
    dream.reset(n)
    alive = torch.arange(n, device=dream.device)  # dream index of each batch row
    steps = torch.zeros(n, device=dream.device)
    for _ in range(max_steps):
        done = dream.step(act(alive))
        steps[alive] += 1
        if done.any():
            keep = ~done
            dream.keep(keep)
            alive = alive[keep]
            if len(alive) == 0:
                break
    return steps


@torch.no_grad()
def dream_returns(dream: BatchedDream, controller: Controller, params: torch.Tensor, rollouts: int, task: str,
                  inputs: str, max_steps: int) -> torch.Tensor:
    """Steps survived by each of P candidates in each of R dreams: params (P, n) -> (P, R), one batched rollout."""
    population = params.shape[0]

    def act(rows: torch.Tensor) -> torch.Tensor:
        owner = rows // rollouts  # candidate of each dream
        raw = controller.act(params[owner], dream.features(inputs)[:, None, :])[:, 0]  # (N_alive, A)
        return model_action(task, raw)
    return dream_survival(dream, act, population * rollouts, max_steps).reshape(population, rollouts)


class DreamEnv(gym.Env):
    """One dream behind the Gymnasium API. Observation: the controller's input ([z, h] or [z, c, h]);
    action: M's action in [-1, 1]; reward +1 per step; terminated when M's done fires; truncated at max_steps."""

    metadata = {"render_modes": []}

    def __init__(self, mdnrnn: MDNRNN, initial_mu: torch.Tensor, initial_logvar: torch.Tensor, temperature: float,
                 inputs: str = "zch", max_steps: int = 2100, done_mode: str = "threshold",
                 done_weight: float = 10.0) -> None:
        self.generator = torch.Generator(device=initial_mu.device)
        self.dream = BatchedDream(mdnrnn, initial_mu, initial_logvar, temperature, done_mode, self.generator,
                                  done_weight)
        self.inputs, self.max_steps = inputs, max_steps
        size = initial_mu.shape[1] + mdnrnn.hidden * (2 if inputs == "zch" else 1)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (mdnrnn.action_size,), np.float32)
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self.generator.manual_seed(seed)
        with torch.no_grad():
            self.dream.reset(1)
        self.steps = 0
        return self._observe(), {}

    def step(self, action):
        action = torch.as_tensor(np.asarray(action, np.float32).reshape(1, -1), device=self.dream.device)
        with torch.no_grad():
            done = bool(self.dream.step(action)[0])
        self.steps += 1
        return self._observe(), 1.0, done, not done and self.steps >= self.max_steps, {}

    def _observe(self) -> np.ndarray:
        return self.dream.features(self.inputs)[0].cpu().numpy().astype(np.float32)

"""Real-environment rollouts: the random data-collection policies, the V+M+C agent, and a worker pool.

Each worker process keeps one environment and rebuilds V and M from their state dicts once; a job is one
episode with its own seed. ``workers <= 1`` runs the jobs in this process (tests, debugging). Workers die with
the process that started them, so a killed run leaves none behind writing into its directory.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from ha2018.controller import ACTION_SIZE, Controller, env_action, features, model_action
from ha2018.data import save_rollout
from ha2018.mdnrnn import MDNRNN
from ha2018.models import build_controller, build_mdnrnn, build_vae
from ha2018.vae import ConvVAE, sample_z, to_input
from tools.memory import reuse_freed_memory


class Agent:
    """V + M + C in the real environment (the authors' ``model.py``): encode the frame to a sampled z, act on
    [z, h] (or [z, c, h]), then advance M with (z, a, restart)."""

    def __init__(self, task: str, vae: ConvVAE, mdnrnn: MDNRNN, controller: Controller, params: torch.Tensor,
                 inputs: str) -> None:
        self.task, self.vae, self.m, self.controller, self.inputs = task, vae, mdnrnn, controller, inputs
        self.params = params.reshape(1, -1).float()
        self.reset()

    def reset(self) -> None:
        self.state = self.m.initial_state(1)
        self.restart = torch.ones(1)

    @torch.no_grad()
    def act(self, frame: np.ndarray) -> np.ndarray:
        mu, logvar = self.vae.encode(to_input(torch.from_numpy(np.array(frame))[None]))
        z = sample_z(mu, logvar)  # (1, Z)
        raw = self.controller.act(self.params, features(z, self.state, self.inputs)[None])[0]  # (1, A)
        action = model_action(self.task, raw)
        _, _, self.state = self.m.step(z, action, self.restart if self.m.predict_done else None, self.state)
        self.restart = torch.zeros(1)
        return action[0].numpy()


class RepeatUniform:
    """Doom's collection policy (``doomrnn/extract.py``): a ~ U(-1, 1), redrawn when frame % repeat == 0,
    with repeat ~ randint(1, repeat_max + 1)."""

    def __init__(self, rng: np.random.Generator, repeat_max: int) -> None:
        self.rng, self.repeat_max = rng, repeat_max
        self.reset()

    def reset(self) -> None:
        self.frame, self.repeat, self.action = 0, int(self.rng.integers(1, self.repeat_max + 1)), np.zeros(1)

    def act(self, frame: np.ndarray) -> np.ndarray:
        if self.frame % self.repeat == 0:
            self.action = np.array([self.rng.uniform(-1, 1)], np.float32)
            self.repeat = int(self.rng.integers(1, self.repeat_max + 1))
        self.frame += 1
        return self.action


class UniformRandom:
    """The random-policy baseline of the paper's tables: every step, M's action a ~ U(-1, 1) per dimension
    (for Doom, through the authors' +-1/3 thresholds: uniform over no-op, left and right)."""

    def __init__(self, rng: np.random.Generator, action_size: int) -> None:
        self.rng, self.action_size = rng, action_size

    def reset(self) -> None:
        pass

    def act(self, frame: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1, 1, self.action_size).astype(np.float32)


class Constant:
    """One fixed action of M every step (Doom: no-op 0, left -1, right +1; CarRacing: a (steer, gas, brake)
    triple): a trivial baseline."""

    def __init__(self, action: float | tuple[float, ...], action_size: int) -> None:
        self.action = np.broadcast_to(np.asarray(action, np.float32), (action_size,)).copy()

    def reset(self) -> None:
        pass

    def act(self, frame: np.ndarray) -> np.ndarray:
        return self.action


class FiniteActions:
    """Replaces non-finite actions by 0: heavy-tailed random weights could overflow V (exp of a huge logvar); with
    the authors' 1/10,000 scale on V and M this should not happen, but a NaN must never reach the environment."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def reset(self) -> None:
        self.policy.reset()

    def act(self, frame: np.ndarray) -> np.ndarray:
        return np.nan_to_num(self.policy.act(frame), nan=0.0, posinf=1.0, neginf=-1.0)


RANDOM_VM_SCALE = 1e-4  # the authors' V and M `set_model_params` divide every parameter by 10,000 (C's does not)


def random_model_agent(config: DictConfig, task: str, rng: np.random.Generator) -> FiniteActions:
    """CarRacing's collection policy (``carracing/extract.py``): ``init_random_model_params`` draws Cauchy weights
    of scale stdev ~ U(0, 0.01) for V, M and C, and V's and M's ``set_model_params`` divide them by 10,000
    (``vae.py``, ``rnn.py``: ``p/10000.``). So V's mu and logvar are ~0 (z is fresh N(0, I) noise), M's h is ~0,
    and C = tanh(W [z, h] + b) with the undivided weights steers, accelerates and brakes at random."""
    stdev = rng.uniform(0, 0.01)
    vae, m, controller = build_vae(config), build_mdnrnn(config, task), build_controller(config, task)
    for module in (vae, m):
        for p in module.parameters():
            p.data = torch.from_numpy(rng.standard_cauchy(p.shape) * stdev * RANDOM_VM_SCALE).float()
    params = torch.from_numpy(rng.standard_cauchy(controller.param_count) * stdev).float()
    return FiniteActions(Agent(task, vae.eval(), m.eval(), controller, params, config.controller.inputs))


def run_episode(env, policy, task: str, seed: int, max_steps: int, record: bool,
                full_episode: bool = False) -> dict[str, Any]:
    """One episode; with ``record`` the frames the actions were taken on, M's actions, rewards, dones. With
    ``full_episode`` a termination does not end it (the authors' CarRacing collection): max_steps frames."""
    obs, _ = env.reset(seed=seed)
    torch.manual_seed(seed)  # [code] simulate() seeds per episode: z samples do not depend on the worker
    policy.reset()
    frames, actions, rewards, dones = [], [], [], []
    total, length = 0.0, 0
    for _ in range(max_steps):
        action = policy.act(obs["image"])
        if record:
            frames.append(obs["image"])
            actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(env_action(task, action))
        total, length = total + float(reward), length + 1
        if record:
            rewards.append(reward)
            dones.append(terminated)
        if truncated or (terminated and not full_episode):
            break
    result: dict[str, Any] = {"seed": seed, "return": total, "length": length}
    if record:
        result.update(frames=np.asarray(frames, np.uint8), actions=np.asarray(actions, np.float32),
                      rewards=np.asarray(rewards, np.float32), dones=np.asarray(dones, bool))
    return result


# ---- worker pool -----------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies: the kernel's parent-death signal on Linux, a watchdog thread
    elsewhere; and at once if the parent is already gone (it died before the signal was armed)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _init_worker(task: str, config: dict, vae_state: dict | None, m_state: dict | None,
                 parent: int | None = None) -> None:
    """Set up a worker process (``parent``: the pid it must not outlive), or this process (None)."""
    if parent is not None:
        die_with_parent(parent)
        torch.set_num_threads(1)
        reuse_freed_memory()
    from tools.envs import make_env
    config = OmegaConf.create(config)
    _WORKER.clear()
    _WORKER.update(task=task, config=config, make_env=make_env, env=None)
    if vae_state is not None:
        vae, m = build_vae(config), build_mdnrnn(config, task)
        vae.load_state_dict(vae_state)
        m.load_state_dict(m_state)
        _WORKER.update(vae=vae.eval(), m=m.eval(), controller=build_controller(config, task))


def _env():
    if _WORKER["env"] is None:
        _WORKER["env"] = _WORKER["make_env"](_WORKER["task"], seed=0)
    return _WORKER["env"]


def collect_job(job: tuple[int, str, np.ndarray | None]) -> tuple[int, bool]:
    """Record one rollout to ``path`` (compressed): of the random collection policy, or with controller
    ``params`` of the V+M+C agent (a later round of the iterative procedure). Returns its length and whether it
    was kept (rollouts of ``min_length`` frames or fewer are dropped, as the authors did)."""
    seed, path, params = job
    task, config = _WORKER["task"], _WORKER["config"]
    if params is None:
        rng = np.random.default_rng(seed)
        policy = (RepeatUniform(rng, config.collect.repeat_max) if config.collect.policy == "repeat_uniform"
                  else random_model_agent(config, task, rng))
    else:
        policy = Agent(task, _WORKER["vae"], _WORKER["m"], _WORKER["controller"], torch.from_numpy(params),
                       config.controller.inputs)
    episode = run_episode(_env(), policy, task, seed, config.collect.max_frames, record=True,
                          full_episode=config.collect.full_episode)
    if episode["length"] <= config.collect.min_length:
        return episode["length"], False
    save_rollout(Path(path), episode)
    return episode["length"], True


def agent_job(job: tuple[np.ndarray, int, int]) -> tuple[float, int]:
    """One episode of the V+M+C agent with controller params: returns (return, length)."""
    params, seed, max_steps = job
    agent = Agent(_WORKER["task"], _WORKER["vae"], _WORKER["m"], _WORKER["controller"], torch.from_numpy(params),
                  _WORKER["config"].controller.inputs)
    episode = run_episode(_env(), agent, _WORKER["task"], seed, max_steps, record=False)
    return episode["return"], episode["length"]


def baseline_job(job: tuple[str | float | tuple[float, ...], int, int]) -> tuple[float, int]:
    """One episode of a trivial policy, "random" (uniform) or a constant action of M: returns (return, length)."""
    which, seed, max_steps = job
    size = ACTION_SIZE[_WORKER["task"]]
    policy = UniformRandom(np.random.default_rng(seed), size) if which == "random" else Constant(which, size)
    episode = run_episode(_env(), policy, _WORKER["task"], seed, max_steps, record=False)
    return episode["return"], episode["length"]


class Pool:
    """Jobs over worker processes (``backend: pool``, spawned: safe with torch threads; in-process when
    workers <= 1) or over Ray actors (``backend: ray``, ``ha2018/ray_workers.py``); same results either way."""

    def __init__(self, workers: int, task: str, config: DictConfig, vae: ConvVAE | None = None,
                 m: MDNRNN | None = None) -> None:
        args = (task, OmegaConf.to_container(config, resolve=True), _cpu_state(vae), _cpu_state(m))
        backend = config.get("backend", "pool")
        if backend not in ("pool", "ray"):
            raise ValueError(f"backend must be 'pool' or 'ray', got {backend!r}")
        if backend == "ray":
            from ha2018.ray_workers import RayWorkers
            self.pool = RayWorkers(workers, args)
            return
        self.pool = mp.get_context("spawn").Pool(workers, _init_worker, (*args, os.getpid())) if workers > 1 else None
        if self.pool is None:
            _init_worker(*args)

    def imap(self, fn: Callable, jobs: Iterable) -> Iterator:
        return self.pool.imap(fn, jobs) if self.pool else map(fn, jobs)

    def close(self) -> None:
        if self.pool:
            self.pool.close()
            self.pool.join()
        elif _WORKER.get("env") is not None:
            _WORKER["env"].close()
            _WORKER["env"] = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and self.pool:
            self.pool.terminate()
        self.close()


def _cpu_state(module: torch.nn.Module | None) -> dict | None:
    return None if module is None else {k: v.detach().cpu() for k, v in module.state_dict().items()}

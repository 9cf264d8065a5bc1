"""The online training driver shared by PlaNet, Dreamer v1, DreamerV2 and DreamerV3.

One round: the agent (or, during prefill, a uniform random policy) acts on the current step of every
environment; each step is stored in the replay; every environment then steps (or resets after an episode end);
finished episodes are logged; the schedule says how many updates are owed; metrics, evaluation rounds, videos
and checkpoints follow on their own cadences (in env steps). The checkpoint holds everything a resumed run
needs (agent, optimisers, replay positions, schedule, counters, RNG states), written atomically; the agent
interface is in ``tools/README.md``.
"""
from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from tools import checkpoint
from tools.checkpoint import CheckpointError
from tools.config import ConfigError
from tools.envs import make_env
from tools.envs.wrappers import episode_flags
from tools.loop.envs import EnvPool
from tools.loop.records import MetricLog, check_finite, crafter_score, drop_records_after, write_video
from tools.loop.schedule import Prefill, Ratio, make_schedule
from tools.replay import SequenceReplay, annotate
from tools.runs import Run

FLAGS = ("is_first", "is_last", "is_terminal")


@dataclass
class EnvSpec:
    obs_shapes: dict[str, tuple[int, ...]]  # observation keys without reward and flags
    act_dim: int
    discrete: bool
    action_repeat: int


def suite_of(task: str) -> str:
    return task.split("_", 1)[0]


def env_factory(config: DictConfig) -> Callable[[int], gym.Env]:
    """``make(seed)`` for the configured task with the suite's options (picklable for worker processes)."""
    options = dict(config.env.get(suite_of(config.task), {})) if "env" in config else {}
    return functools.partial(make_env, config.task, **options)


def spec_of(env: gym.Env) -> EnvSpec:
    shapes = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items() if k not in ("reward", *FLAGS)}
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return EnvSpec(shapes, int(space.n), True, int(getattr(env, "action_repeat", 1)))
    return EnvSpec(shapes, int(np.prod(space.shape)), False, int(getattr(env, "action_repeat", 1)))


def train_episode_seed(seed: int, k: int, envs: int = 1, i: int = 0) -> int:
    """Env ``i``'s k-th training episode of run seed ``seed``: seed * 1000 + k * N + i."""
    return seed * 1000 + k * envs + i


def eval_episode_seed(seed: int, step: int, k: int) -> int:
    """The k-th episode of the evaluation round at env step ``step`` (its env is made with seed + 10000)."""
    return seed + 10_000 + step + k


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def check_config(config: DictConfig) -> None:
    """Budgets and counts must be positive (zero or negative ones would run and report nonsense)."""
    r = config.run
    positive = {"run.steps": r.steps, "run.envs": r.get("envs", 1), "batch_size": config.batch_size,
                "batch_length": config.batch_length, "replay.size": config.replay.size}
    if r.get("eval_every", 0):
        positive["run.eval_eps"] = r.eval_eps
    for key in ("updates", "every", "train_ratio"):
        if key in r.schedule:
            positive[f"run.schedule.{key}"] = r.schedule[key]
    non_negative = {f"run.{k}": r.get(k, 0) for k in ("prefill", "prefill_episodes", "log_every", "save_every",
                                                      "eval_every", "video_every")}
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key} must be zero or positive, got {value}")


def train_loop(paper: str, config: DictConfig, preset: str, make_agent: Callable[[EnvSpec, str], Any],
               logdir: str | Path | None = None, method: str | None = None) -> Run:
    """Train (or resume) one run of ``paper``; returns the finished Run."""
    check_config(config)
    if config.get("threads"):
        torch.set_num_threads(int(config.threads))
    seed = int(config.seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    make = env_factory(config)
    probe = make(seed)
    spec = spec_of(probe)
    probe.close()
    budget_unit = "frames" if suite_of(config.task) == "atari" else "env_steps"
    run = Run.create(paper, config.task, preset, seed, config=config, logdir=logdir, strict=True,
                     budget_unit=budget_unit, method=method)
    try:
        agent = make_agent(spec, resolve_device(config.device))
        return Driver(config, run, agent, spec, make).train()
    finally:
        run.release()


class Driver:
    def __init__(self, config: DictConfig, run: Run, agent, spec: EnvSpec, make: Callable[[int], gym.Env]) -> None:
        self.config, self.run, self.agent, self.spec, self.make = config, run, agent, spec, make
        self.seed = int(config.seed)
        self.n = int(config.run.get("envs", 1))
        self.batch, self.length = int(config.batch_size), int(config.batch_length)
        self.context = int(getattr(agent, "replay_context", 0))
        self.schedule = make_schedule(config.run.schedule, self.batch, self.length)
        self.prefill = Prefill(int(config.run.get("prefill", 0)), int(config.run.get("prefill_episodes", 0)))
        r = config.replay
        if not run.checkpoint_path.exists():  # a fresh run, or one killed before its first checkpoint: start clean
            shutil.rmtree(run.dir / "replay", ignore_errors=True)
        self.replay = SequenceReplay(run.dir / "replay", int(r.size), num_streams=self.n, seed=self.seed,
                                     within_episode=bool(r.get("within_episode", False)),
                                     online_length=self.length + self.context if r.get("online", False) else 0)
        self.counters = {"step": 0, "policy_steps": 0, "updates": 0, "episodes": 0, "next_log": 0,
                         "next_save": int(config.run.save_every), "next_eval": 0, "next_video": 0,
                         "resets": [0] * self.n, "schedule": self.schedule.state}
        self.episodes = [self._new_episode() for _ in range(self.n)]
        self.log = MetricLog()
        self.last_return = 0.0

    # ---- the loop ---------------------------------------------------------------------------------
    def train(self) -> Run:
        self._restore()
        budget = int(self.config.run.steps)
        if self.counters["step"] >= budget:  # a finished run: rerunning adds nothing
            return self._finish(collected=False)
        c = self.counters
        bar = tqdm(total=budget, initial=c["step"], unit="step", unit_scale=True, dynamic_ncols=True,
                   desc=f"{self.run.paper} {self.config.task}")  # rate = env steps per second
        self.log.reset_clock(c["step"], c["updates"])
        envs = EnvPool(self.make, [self.seed + i for i in range(self.n)], parallel=self.n > 1)
        try:
            records = self._reset_all(envs)
            state = self.agent.initial_state(self.n)
            while True:
                actions, state, context = self._act(records, state)
                for i, record in enumerate(records):
                    self.replay.add({**record, **{k: v[i] for k, v in context.items()}}, stream=i)
                if self._due("next_save", self.config.run.save_every) and c["step"] < budget:
                    self.save()  # here every counted step is in the replay and every row logged
                if c["step"] >= budget:
                    break
                before = c["step"]
                steps_before = c["policy_steps"]
                records, finished = self._env_round(envs, records, actions)
                bar.update(c["step"] - before)
                self._train(self._owed(c["policy_steps"] - steps_before, finished))
                if finished:
                    bar.set_postfix(ret=f"{self.last_return:.1f}", updates=c["updates"])
                self._periodic()
        finally:
            envs.close()
            bar.close()
        return self._finish(collected=True)

    def _act(self, records: list[dict], state) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
        """Actions (N, A) for the current steps: uniform random during prefill, else the agent's policy."""
        if self.prefill.active(self.counters["step"], self.counters["episodes"]):
            if self.spec.discrete:
                actions = np.eye(self.spec.act_dim, dtype=np.float32)[np.random.randint(self.spec.act_dim, size=self.n)]
            else:
                actions = np.random.uniform(-1, 1, (self.n, self.spec.act_dim)).astype(np.float32)
            return actions, state, self._zero_context()
        obs = {k: np.stack([r[k] for r in records]) for k in (*self.spec.obs_shapes, "is_first")}
        with torch.no_grad():
            action, state = self.agent.policy(obs, state, "train")
        action = action.detach().cpu().numpy() if torch.is_tensor(action) else np.asarray(action)
        context = self.agent.context(state) if self.context else {}
        return action.astype(np.float32), state, context

    def _zero_context(self) -> dict[str, np.ndarray]:
        if not self.context:
            return {}
        return {k: np.zeros((self.n, *shape), dtype) for k, (shape, dtype) in self.agent.context_spec.items()}

    def _env_round(self, envs: EnvPool, records: list[dict], actions: np.ndarray) -> tuple[list[dict], int]:
        """Step every environment (or reset the ones whose episode ended); returns the new steps and how many
        episodes ended in this round."""
        commands = []
        for i, record in enumerate(records):
            if record["is_last"]:
                commands.append(("reset", self._episode_seed(i)))
            else:
                env_action = int(actions[i].argmax()) if self.spec.discrete else np.clip(actions[i], -1, 1)
                commands.append(("step", env_action))
        new, finished = [], 0
        for i, (command, result) in enumerate(zip(commands, envs.run(commands))):
            if command[0] == "reset":
                new.append(self._record(result[0], None, 0.0, episode_flags(True, False, False)))
                continue
            obs, reward, terminated, truncated, info = result
            new.append(self._record(obs, actions[i], reward, episode_flags(False, terminated, truncated)))
            env_steps = int(info.get("env_steps", 1))
            self.counters["step"] += env_steps
            self.counters["policy_steps"] += 1
            episode = self.episodes[i]
            episode["return"] += float(reward)
            episode["length"] += 1
            episode["env_steps"] += env_steps
            if "achievements" in info:
                episode["achievements"] = {k: int(v) for k, v in info["achievements"].items()}
            if terminated or truncated:
                self._log_episode(i)
                self.episodes[i] = self._new_episode()
                finished += 1
        return new, finished

    def _record(self, obs: dict, action, reward: float, flags: dict) -> dict[str, np.ndarray]:
        action = np.zeros(self.spec.act_dim, np.float32) if action is None else np.asarray(action, np.float32)
        return {**{k: np.asarray(obs[k]) for k in self.spec.obs_shapes}, "action": action,
                "reward": np.float32(reward), **{k: np.bool_(v) for k, v in flags.items()}}

    def _reset_all(self, envs: EnvPool) -> list[dict]:
        results = envs.run([("reset", self._episode_seed(i)) for i in range(self.n)])
        return [self._record(obs, None, 0.0, episode_flags(True, False, False)) for obs, _ in results]

    def _episode_seed(self, i: int) -> int:
        """Env ``i``'s k-th episode: seed * 1000 + k * N + i (one env: seed * 1000 + k)."""
        k = self.counters["resets"][i]
        self.counters["resets"][i] += 1
        self.episodes[i] = self._new_episode()
        return train_episode_seed(self.seed, k, self.n, i)

    @staticmethod
    def _new_episode() -> dict[str, Any]:
        return {"return": 0.0, "length": 0, "env_steps": 0}

    def _log_episode(self, i: int, mode: str = "train") -> None:
        episode = self.episodes[i]
        extra = {"achievements": episode["achievements"]} if "achievements" in episode else {}
        self.run.log_episode(self.counters["step"], episode["return"], episode["env_steps"], mode=mode, **extra)
        self.counters["episodes"] += mode == "train"
        self.last_return = episode["return"]

    # ---- training ---------------------------------------------------------------------------------
    def _owed(self, policy_steps: int, finished: int) -> int:
        """Updates owed after a round of ``policy_steps`` steps (resets are not policy steps) that ended
        ``finished`` episodes."""
        c = self.counters
        if self.prefill.active(c["step"], c["episodes"]) or len(self.replay) < self._min_replay():
            return 0
        owed = self.schedule.after_step(c["step"], c["policy_steps"], count=policy_steps) if policy_steps else 0
        for _ in range(finished):
            owed += self.schedule.after_episode()
        c["schedule"] = self.schedule.state
        return owed

    def _min_replay(self) -> int:
        """Steps stored before training starts: a whole batch for the train ratio (official DreamerV3), one
        sequence otherwise."""
        length = self.length + self.context
        return self.batch * length if isinstance(self.schedule, Ratio) else length

    def _train(self, updates: int) -> None:
        length = self.length + self.context
        within = self.replay.within_episode
        for _ in range(updates):
            sample = self.replay.sample_train if self.replay.online_length else self.replay.sample
            batch, index = sample(self.batch, length, with_index=True)
            if not within:
                batch = annotate(batch, first=not self.context)
            out = self.agent.train_step(batch)
            metrics, written = out if isinstance(out, tuple) else (out, None)
            self.counters["updates"] += 1
            check_finite(metrics, self.counters["step"], self.counters["updates"])
            if written:
                self.replay.update(index[:, self.context:], written)
            self.log.add(metrics)

    # ---- cadences ---------------------------------------------------------------------------------
    def _due(self, key: str, every: int) -> bool:
        """True (and schedules the next time) when the env step has reached ``counters[key]``; 0: never."""
        c = self.counters
        if not every or c["step"] < c[key]:
            return False
        c[key] += int(every)
        return True

    def _periodic(self) -> None:
        r = self.config.run
        if self._due("next_log", r.log_every):
            self.log.write(self.run, self.counters["step"], self.counters["updates"], {"replay/size": len(self.replay)})
        if self._due("next_eval", r.get("eval_every", 0)):
            self.evaluate()
        if self._due("next_video", r.get("video_every", 0)):
            write_video(self.agent, self.replay, self.run, self.counters["step"])

    def _evaluated_at(self, step: int) -> bool:
        """A periodic round already ran at this step (the budget is a multiple of ``eval_every``)."""
        return any(row["step"] == step for row in self.run.episodes("eval"))

    def evaluate(self) -> None:
        """``run.eval_eps`` episodes with the policy in ``eval`` mode, on their own seeds."""
        step = self.counters["step"]
        env = self.make(self.seed + 10_000)
        for episode in range(int(self.config.run.eval_eps)):
            obs, _ = env.reset(seed=eval_episode_seed(self.seed, step, episode))
            record = self._record(obs, None, 0.0, episode_flags(True, False, False))
            state, total, length = self.agent.initial_state(1), 0.0, 0
            while not record["is_last"]:
                batch = {k: record[k][None] for k in (*self.spec.obs_shapes, "is_first")}
                with torch.no_grad():
                    action, state = self.agent.policy(batch, state, "eval")
                action = (action.detach().cpu().numpy() if torch.is_tensor(action) else np.asarray(action))[0]
                env_action = int(action.argmax()) if self.spec.discrete else np.clip(action, -1, 1)
                obs, reward, terminated, truncated, info = env.step(env_action)
                record = self._record(obs, action, reward, episode_flags(False, terminated, truncated))
                total += float(reward)
                length += int(info.get("env_steps", 1))
            self.run.log_episode(step, total, length, mode="eval")
        env.close()

    # ---- checkpoints ------------------------------------------------------------------------------
    def save(self) -> None:
        """Replay data first, then one atomic checkpoint holding the replay positions with everything else."""
        self.replay.flush()
        optimizers = {name: opt.state_dict() for name, opt in self.agent.optimizers.items()}
        self.run.save_checkpoint({"agent": self.agent.state_dict(), "optimizers": optimizers,
                                  "replay": self.replay.state_dict(), "counters": dict(self.counters),
                                  "episodes": [dict(e) for e in self.episodes], "rng": checkpoint.rng_state(),
                                  "step": self.counters["step"]})

    def _restore(self) -> None:
        device = getattr(self.agent, "device", "cpu")
        state = self.run.load_checkpoint(map_location=str(device))
        if state is None:  # a fresh run, or one killed before its first checkpoint: no rows to keep
            drop_records_after(self.run.dir, -1)
            return
        path = self.run.checkpoint_path
        try:
            self.agent.load_state_dict(state["agent"])
            for name, opt in self.agent.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            counters, episodes, replay = state["counters"], state["episodes"], state["replay"]
        except (KeyError, RuntimeError, ValueError) as error:
            message = str(error).splitlines()[0]
            raise CheckpointError(f"checkpoint {path} does not fit this model/config ({message}); delete the run "
                                  "directory or pass the --logdir of a matching run") from None
        self.replay.load_state_dict(replay)
        self.counters.update(counters)
        self.schedule.state = self.counters["schedule"]
        checkpoint.set_rng_state(state["rng"])
        drop_records_after(self.run.dir, self.counters["step"], cut_at=self.counters["step"])
        for i, episode in enumerate(episodes):  # the episodes in progress at the checkpoint are cut, not lost
            if episode["length"]:
                self.episodes[i] = episode
                self._log_episode(i, mode="cut")
        print(f"resumed {self.run.dir} at step {self.counters['step']} ({len(self.replay)} replay steps)")

    def _finish(self, collected: bool) -> Run:
        c = self.counters
        if collected:  # final rows before the final checkpoint: a kill in between redoes both
            if self.config.run.get("eval_every", 0) and not self._evaluated_at(c["step"]):
                self.evaluate()
            for i, episode in enumerate(self.episodes):  # the budget ended inside these episodes
                if episode["length"]:
                    self._log_episode(i, mode="cut")
            self.save()
            write_video(self.agent, self.replay, self.run, c["step"])
        extra = {}
        score = crafter_score(self.run.episodes("train"))
        if score is not None:
            extra["crafter_score"] = score
        self.run.finish(c["step"], updates=c["updates"], **extra)
        return self.run

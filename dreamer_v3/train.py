"""The training loop: act in one environment, store steps in the on-disk replay, train at the configured train
ratio (replayed steps per policy step, official `elements.when.Ratio(train_ratio / (B * T))`), log, evaluate,
checkpoint and resume. Budgets are counted in the environment's own units (`info['env_steps']`)."""
from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from dreamer_v3.agent import FLAGS, DreamerV3
from dreamer_v3.replay import OnlineReplay
from tools import checkpoint
from tools.envs import make_env
from tools.envs.wrappers import episode_flags
from tools.runs import Run, read_jsonl

PAPER = "dreamer_v3"
OBS_EXCLUDE = ("reward",) + FLAGS


def suite_of(task: str) -> str:
    return task.split("_", 1)[0]


def make_task_env(config: DictConfig, seed: int) -> gym.Env:
    options = dict(config.env.get(suite_of(config.task), {}))
    return make_env(config.task, seed, **options)


def spaces_of(env: gym.Env) -> tuple[dict[str, tuple[int, ...]], int, bool]:
    """Observation shapes (without flags), action size, discrete?"""
    obs_shapes = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items() if k not in OBS_EXCLUDE}
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return obs_shapes, int(space.n), True
    return obs_shapes, int(np.prod(space.shape)), False


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class Actor:
    """One environment stepped by the agent's policy; writes every step to the replay (if given)."""

    def __init__(self, env: gym.Env, agent: DreamerV3, discrete: bool, seed: int) -> None:
        self.env, self.agent, self.discrete = env, agent, discrete
        self.seed = seed
        self.obs: dict | None = None

    def reset(self) -> dict[str, np.ndarray]:
        obs, _ = self.env.reset(seed=self.seed)
        self.seed += 1
        zeros = np.zeros(self.agent.act_dim, np.float32)
        self.state = self.agent.initial_state(1)
        self.episode = {"return": 0.0, "length": 0, "env_steps": 0}
        return self._step_record(obs, zeros, 0.0, episode_flags(True, False, False))

    def _step_record(self, obs, action, reward, flags) -> dict[str, np.ndarray]:
        self.obs = {k: np.asarray(v) for k, v in obs.items()}
        return {**self.obs, "action": np.asarray(action, np.float32), "reward": np.float32(reward),
                **{k: np.bool_(v) for k, v in flags.items()}}

    def step(self, record: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
        """Act on the last record's observation; returns the next record and the env info."""
        batch = {k: record[k][None] for k in self.agent.obs_shapes}
        batch["is_first"] = record["is_first"][None]
        action, self.state = self.agent.policy(batch, self.state)
        action = action[0].cpu().numpy()
        env_action = int(action.argmax()) if self.discrete else np.clip(action, -1, 1)
        obs, reward, terminated, truncated, info = self.env.step(env_action)
        self.episode["return"] += float(reward)
        self.episode["length"] += 1
        self.episode["env_steps"] += int(info.get("env_steps", 1))
        return self._step_record(obs, action, reward, episode_flags(False, terminated, truncated)), info


def crafter_score(episodes: list[dict]) -> float | None:
    """Crafter score (Hafner 2021): geometric mean over achievements of the success rates in percent,
    exp(mean(log(1 + rate))) - 1, a success being an achievement unlocked at least once in an episode."""
    achievements = [row["achievements"] for row in episodes if "achievements" in row]
    if not achievements:
        return None
    names = sorted(achievements[0])
    rates = np.array([100 * np.mean([a.get(name, 0) > 0 for a in achievements]) for name in names])
    return float(np.exp(np.mean(np.log(1 + rates))) - 1)


def train(config: DictConfig, preset: str, logdir: str | Path | None = None) -> Run:
    """Train (or resume) one run; returns the finished Run."""
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = resolve_device(config.device)
    seed = int(config.seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    env = make_task_env(config, seed)
    budget_unit = "frames" if suite_of(config.task) == "atari" else "env_steps"
    run = Run.create(PAPER, config.task, preset, seed, config=config, logdir=logdir, budget_unit=budget_unit)
    obs_shapes, act_dim, discrete = spaces_of(env)
    agent = DreamerV3(obs_shapes, act_dim, discrete, config.agent, device)
    if config.compile and device == "cuda":
        agent.rssm.core = torch.compile(agent.rssm.core)
    B, T = int(config.batch_size), int(config.batch_length)
    replay = OnlineReplay(run.dir / "replay", int(config.replay.size), T, seed=seed, online=bool(config.replay.online))
    counters = {"step": 0, "policy_steps": 0, "updates": 0, "debt": 0.0, "episodes": 0,
                "next_log": 0, "next_save": int(config.run.save_every), "next_eval": 0, "next_video": 0}
    state = run.load_checkpoint(map_location=device)
    if state is not None:
        agent.load_state_dict(state["agent"])
        agent.opt.load_state_dict(state["opt"])
        replay.load_state_dict(state["replay"])
        counters.update(state["counters"])
        checkpoint.set_rng_state(state["rng"])
        drop_records_after(run.dir, counters["step"])
        print(f"resumed {run.dir} at step {counters['step']} ({len(replay)} replay steps reopened from disk)")
    actor = Actor(env, agent, discrete, seed * 1000 + counters["episodes"])
    record = actor.reset()
    ratio = float(config.run.train_ratio) / (B * T)
    metrics: dict[str, list[float]] = defaultdict(list)
    timer = {"start": time.time(), "step": counters["step"], "updates": counters["updates"]}
    session_start = counters["policy_steps"]
    bar = tqdm(total=int(config.run.steps), initial=counters["step"], unit="step", unit_scale=True,
               desc=f"dreamer_v3 {config.task}", dynamic_ncols=True)  # rate = env steps per second
    while counters["step"] < config.run.steps:
        replay.add(record)
        if record["is_last"]:
            finish_episode(run, actor, counters)
            bar.set_postfix(ret=f"{actor.episode['return']:.1f}", updates=counters["updates"])
            record = actor.reset()
            continue
        record, info = actor.step(record)
        counters["step"] += int(info.get("env_steps", 1))
        bar.update(int(info.get("env_steps", 1)))
        counters["policy_steps"] += 1
        if "achievements" in info:
            actor.episode["achievements"] = {k: int(v) for k, v in info["achievements"].items()}
        if len(replay) >= B * T:
            train_due(agent, replay, B, ratio, counters, metrics)
        if due(counters, "next_log", config.run.log_every):
            log_metrics(run, counters, metrics, timer, len(replay))
        if due(counters, "next_eval", config.run.eval_every):
            evaluate(config, agent, discrete, run, counters["step"])
        if due(counters, "next_video", config.run.video_every):
            write_video(agent, replay, run, counters["step"])
        if due(counters, "next_save", config.run.save_every):
            save(run, agent, replay, counters)
    if counters["policy_steps"] > session_start:  # this session collected data (not an already finished run)
        replay.add(record)
        save(run, agent, replay, counters)
        write_video(agent, replay, run, counters["step"])
        if config.run.eval_every:
            evaluate(config, agent, discrete, run, counters["step"])
    extra = {}
    score = crafter_score(run.episodes("train"))
    if score is not None:
        extra["crafter_score"] = score
    bar.close()
    run.finish(counters["step"], updates=counters["updates"], **extra)
    env.close()
    return run


def train_due(agent: DreamerV3, replay: OnlineReplay, batch: int, ratio: float, counters: dict,
              metrics: dict[str, list[float]]) -> None:
    """Do the updates this policy step owes: ``ratio`` = train_ratio / (B * T) updates per policy step."""
    counters["debt"] += ratio
    while counters["debt"] >= 1:
        counters["debt"] -= 1
        for key, value in agent.train_step(replay.sample_train(batch)).items():
            metrics[key].append(value)
        counters["updates"] += 1


def due(counters: dict, key: str, every: int) -> bool:
    """True (and schedules the next time) when the env step has reached ``counters[key]``; ``every`` 0: never."""
    if not every or counters["step"] < counters[key]:
        return False
    counters[key] += int(every)
    return True


def drop_records_after(run_dir: Path, step: int) -> None:
    """A run killed after its last checkpoint logged steps it will now redo: drop those rows so the resumed
    curves have no duplicates."""
    for name in ("metrics.jsonl", "scores.jsonl"):
        path = run_dir / name
        rows = read_jsonl(path)
        kept = [row for row in rows if row["step"] <= step]
        if len(kept) < len(rows):
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
            os.replace(tmp, path)


def finish_episode(run: Run, actor: Actor, counters: dict) -> None:
    episode = actor.episode
    extra = {"achievements": episode["achievements"]} if "achievements" in episode else {}
    run.log_episode(counters["step"], episode["return"], episode["env_steps"], mode="train", **extra)
    counters["episodes"] += 1


def log_metrics(run: Run, counters: dict, metrics: dict, timer: dict, replay_size: int) -> None:
    elapsed = max(time.time() - timer["start"], 1e-6)
    values = {f"train/{k}": float(np.mean(v)) for k, v in metrics.items() if v}
    values = {k: v for k, v in values.items() if math.isfinite(v)}
    values.update({"fps/env": (counters["step"] - timer["step"]) / elapsed,
                   "fps/updates": (counters["updates"] - timer["updates"]) / elapsed,
                   "replay/size": replay_size, "train/updates": counters["updates"]})
    run.log_metrics(counters["step"], values)
    metrics.clear()
    timer.update(start=time.time(), step=counters["step"], updates=counters["updates"])


def save(run: Run, agent: DreamerV3, replay: OnlineReplay, counters: dict) -> None:
    replay.flush()
    run.save_checkpoint({"agent": agent.state_dict(), "opt": agent.opt.state_dict(), "replay": replay.state_dict(),
                         "counters": dict(counters), "rng": checkpoint.rng_state(), "step": counters["step"]})


def evaluate(config: DictConfig, agent: DreamerV3, discrete: bool, run: Run, step: int) -> None:
    env = make_task_env(config, int(config.seed) + 10_000)
    actor = Actor(env, agent, discrete, int(config.seed) + 10_000 + step)
    for _ in range(int(config.run.eval_eps)):
        record = actor.reset()
        while not record["is_last"]:
            record, _ = actor.step(record)
        run.log_episode(step, actor.episode["return"], actor.episode["env_steps"], mode="eval")
    env.close()


def write_video(agent: DreamerV3, replay: OnlineReplay, run: Run, step: int, batch: int = 4) -> None:
    """Open-loop prediction video (context 5 steps as the paper's figures, then imagination): rows are
    [truth | prediction | error], one column per sequence; saved as a gif and in TensorBoard."""
    if not agent.decoder.images or len(replay) < 50:
        return
    import imageio.v2 as imageio
    data = replay.sample(batch, 50)
    data["is_first"][:, 0] = True
    for key, video in agent.open_loop(data, context=5).items():
        frames = np.concatenate(list(video), 2)  # (T, H, B*3W, C) per-sequence panels side by side
        if frames.shape[-1] == 1:
            frames = frames.repeat(3, -1)
        imageio.mimsave(run.dir / "videos" / f"openloop_{key}_{step}.gif", list(frames), duration=0.1)
        run.writer.add_images(f"openloop/{key}", frames[::5], step, dataformats="NHWC")  # every 5th frame


"""Command line: ``python -m planet train --task dmc_cartpole_swingup --preset paper|small --seed N``.

``baseline`` scores a trivial policy (uniform random actions, or zero actions) on the evaluation seeds the driver
uses at a given step (the baselines printed beside every PlaNet score); ``speed`` measures planning speed. Bad
input (unknown task, preset or key, a non-DMC task, a corrupt checkpoint) is one ``error:`` line and exit 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.checkpoint import CheckpointError
from tools.config import ConfigError, load_config, preset_names
from tools.envs import UnknownTaskError

CONFIG = Path(__file__).with_name("configs.yaml")


def build_config(task: str | None, preset: str, seed: int, overrides: list[str]):
    valid = ["paper", *preset_names(CONFIG)]
    if preset not in valid:
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(valid)}")
    config = load_config(CONFIG, [] if preset == "paper" else [preset],
                         [*([f"task={task}"] if task else []), f"seed={seed}", *overrides])
    if not config.task.startswith("dmc_"):
        raise ConfigError(f"PlaNet is defined on DeepMind Control from pixels only (dmc_<domain>_<task>); got task "
                          f"{config.task!r}")
    return config


def baseline(config, step: int, episodes: int, policy: str = "random") -> list[float]:
    """Uniform random (or all-zero) actions on the driver's evaluation seeds at ``step`` (tools.loop
    Driver.evaluate: env seed + 10000, episode seeds seed + 10000 + step + k)."""
    import numpy as np

    from tools.loop import env_factory

    rng = np.random.default_rng(int(config.seed))
    env = env_factory(config)(int(config.seed) + 10_000)
    returns = []
    for episode in range(episodes):
        env.reset(seed=int(config.seed) + 10_000 + step + episode)
        total, done = 0.0, False
        while not done:
            shape = env.action_space.shape
            action = rng.uniform(-1, 1, shape) if policy == "random" else np.zeros(shape)
            _, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        returns.append(total)
    env.close()
    return returns


def planning_speed(config, calls: int) -> float:
    """Actions per second of the MPC policy (filter + CEM) on one torch thread, after one warm-up call."""
    import time
    from types import SimpleNamespace

    import numpy as np
    import torch

    from planet.agent import PlaNet

    torch.set_num_threads(1)
    torch.manual_seed(int(config.seed))
    spec = SimpleNamespace(obs_shapes={"image": (64, 64, 3)}, act_dim=1, discrete=False)
    agent = PlaNet(spec, config.agent)
    obs = {"image": np.zeros((1, 64, 64, 3), np.uint8), "is_first": np.array([True])}
    _, state = agent.policy(obs, agent.initial_state(1), "eval")
    start = time.perf_counter()
    for _ in range(calls):
        _, state = agent.policy(obs, state, "eval")
    return calls / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planet", description="PlaNet (Hafner et al., ICML 2019)")
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"train": "train (or resume) a run", "baseline": "score the uniform random (or zero-action) policy on "
             "the driver's evaluation seeds", "speed": "planning speed (actions per second, one thread, CPU)"}
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--task", default=None, help="dmc_<domain>_<task>, e.g. dmc_cartpole_swingup "
                       "(default: the preset's)")
        p.add_argument("--preset", default="paper", help="paper | small")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    sub.choices["train"].add_argument("--logdir", default=None, help="run directory (default runs/planet/...)")
    sub.choices["train"].add_argument("--no-export", action="store_true", help="do not export the run record")
    sub.choices["baseline"].add_argument("--step", type=int, required=True, help="env step of the evaluation round")
    sub.choices["baseline"].add_argument("--episodes", type=int, default=10)
    sub.choices["baseline"].add_argument("--policy", choices=("random", "zero"), default="random")
    sub.choices["speed"].add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        config = build_config(args.task, args.preset, args.seed, args.set)
        if args.command == "baseline":
            import numpy as np

            returns = baseline(config, args.step, args.episodes, args.policy)
            print(f"{args.policy} policy, {config.task} seed {args.seed} eval seeds at step {args.step}: "
                  f"{np.mean(returns):.1f} ± {np.std(returns):.1f} over {len(returns)} episodes")
            return 0
        if args.command == "speed":
            p = config.agent.planner
            print(f"planning speed, H {p.horizon} x I {p.iterations} x J {p.candidates} (top {p.top_k}), one thread: "
                  f"{planning_speed(config, args.calls):.2f} actions/s")
            return 0
        from planet.train import train

        run = train(config, args.preset, args.logdir)
    except (ConfigError, CheckpointError, UnknownTaskError, ValueError, ImportError) as error:
        lines = str(error).strip().splitlines() or [type(error).__name__]
        print(f"error: {lines[0]}", file=sys.stderr)  # one line, even for multi-line library messages
        return 2
    print(f"finished: {run.dir}")
    if not args.no_export:
        from tools.results import export_run

        print(f"exported: {export_run(run.dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

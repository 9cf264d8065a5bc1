"""Command line: ``python -m dreamer_v1 train --task dmc_walker_walk --preset paper --seed 0``.

``--preset paper`` is the published setting (5M env steps); ``small`` the 2-core CPU preset. ``--set key=value``
overrides single keys. ``random`` scores the uniform random policy on the training episodes' seeds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tools.checkpoint import CheckpointError
from tools.config import ConfigError, load_config
from tools.envs import UnknownTaskError

CONFIG = Path(__file__).with_name("configs.yaml")
SUITES = ("dmc", "dmcproprio")  # continuous control; the official code's Atari path is not reproduced here


def build_config(task: str, preset: str, seed: int, overrides: list[str]):
    suite = task.split("_", 1)[0]
    if suite not in SUITES:
        raise ConfigError(f"Dreamer (v1) runs DMC tasks (dmc_<domain>_<task>, dmcproprio_<domain>_<task> for the "
                          f"small preset); got {task!r}")
    return load_config(CONFIG, [preset], [f"task={task}", f"seed={seed}", *overrides])


def random_scores(config, episodes: int, eval_step: int | None = None) -> list[float]:
    """Returns of the uniform random policy on the seeds the driver gives training episodes 0..n-1
    (seed * 1000 + k), or, with ``eval_step``, on those of the evaluation round at that env step
    (seed + 10000 + step + k): the same environments the agent faces."""
    from tools.loop import env_factory
    seed = int(config.seed)
    env = env_factory(config)(seed if eval_step is None else seed + 10_000)
    returns = []
    for k in range(episodes):
        episode_seed = seed * 1000 + k if eval_step is None else seed + 10_000 + eval_step + k
        env.reset(seed=episode_seed)
        env.action_space.seed(episode_seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    env.close()
    return returns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamer_v1", description="Dreamer (Hafner et al. 2020)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("train", "train (or resume) a run"), ("random", "score the uniform random policy")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--task", required=True, help="e.g. dmc_walker_walk, dmcproprio_cartpole_balance")
        p.add_argument("--preset", default="paper", help="paper | small")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    sub.choices["train"].add_argument("--logdir", default=None, help="run directory (default runs/dreamer_v1/...)")
    sub.choices["train"].add_argument("--no-export", action="store_true", help="do not export the run record")
    sub.choices["random"].add_argument("--episodes", type=int, default=10)
    sub.choices["random"].add_argument("--eval-step", type=int, default=None,
                                       help="use the seeds of the evaluation round at this env step")
    args = parser.parse_args(argv)
    try:
        config = build_config(args.task, args.preset, args.seed, args.set)
        if args.command == "random":
            returns = random_scores(config, args.episodes, args.eval_step)
            where = "training" if args.eval_step is None else f"evaluation (step {args.eval_step})"
            print(f"random policy {args.task} seed {args.seed}, {where} episode seeds: {np.mean(returns):.1f} ± "
                  f"{np.std(returns):.1f} over {len(returns)} episodes")
            return 0
        from dreamer_v1.train import train
        run = train(config, args.preset, args.logdir)
    except (ConfigError, CheckpointError, UnknownTaskError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"finished: {run.dir}")
    if not args.no_export:
        from tools.results import export_run
        print(f"exported: {export_run(run.dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

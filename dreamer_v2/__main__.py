"""Command line: ``python -m dreamer_v2 train --task atari_pong --preset paper --seed 0``.

``--preset`` takes comma-separated config blocks applied in order after ``defaults``: ``paper`` stands for the
task's benchmark block (atari, dmc_vision, dmc_proprio); ``small`` is applied on top of the benchmark block.
``--set key=value`` overrides single keys.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tools.checkpoint import CheckpointError
from tools.config import ConfigError, load_config, preset_names
from tools.envs import UnknownTaskError

CONFIG = Path(__file__).with_name("configs.yaml")
BENCHMARKS = {"atari": "atari", "dmc": "dmc_vision", "dmcproprio": "dmc_proprio"}


def benchmark_of(task: str) -> str:
    suite = task.split("_", 1)[0]
    if suite not in BENCHMARKS:
        raise ConfigError(f"DreamerV2 has no benchmark for task {task!r}; task prefixes: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[suite]


def expand_presets(task: str, preset: str) -> list[str]:
    """'paper' -> [benchmark]; 'small' -> [benchmark, 'small']."""
    names = [name.strip() for name in preset.split(",") if name.strip()]
    valid = ["paper", *(name for name in preset_names(CONFIG) if name not in BENCHMARKS.values())]
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(valid)}")
    return [benchmark_of(task)] + [name for name in names if name != "paper"]


def build_config(task: str, preset: str, seed: int, overrides: list[str]):
    return load_config(CONFIG, expand_presets(task, preset), [f"task={task}", f"seed={seed}", *overrides])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamer_v2", description="DreamerV2 (Hafner et al. 2021)")
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser("train", help="train (or resume) a run")
    train_parser.add_argument("--task", required=True, help="e.g. atari_pong, dmc_walker_walk, "
                              "dmcproprio_cartpole_balance")
    train_parser.add_argument("--preset", default="paper", help="paper | small")
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    train_parser.add_argument("--logdir", default=None, help="run directory (default runs/dreamer_v2/<task>/...)")
    train_parser.add_argument("--no-export", action="store_true", help="do not call tools.results.export_run")
    random_parser = sub.add_parser("random", help="the uniform random policy on a run's training episode seeds")
    random_parser.add_argument("--task", required=True)
    random_parser.add_argument("--preset", default="paper")
    random_parser.add_argument("--seed", type=int, default=0)
    random_parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    random_parser.add_argument("--first", type=int, default=0, help="first episode index k (seed = 1000 s + k)")
    random_parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        config = build_config(args.task, args.preset, args.seed, args.set)
        if args.command == "random":
            return random_baseline(config, args.first, args.episodes)
        from dreamer_v2.train import train
        run = train(config, args.preset.replace(",", "+"), args.logdir)
    except (ConfigError, CheckpointError, UnknownTaskError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"finished: {run.dir}")
    if not args.no_export:
        from tools.results import export_run
        print(f"exported: {export_run(run.dir)}")
    return 0


def random_baseline(config, first: int, episodes: int) -> int:
    from dreamer_v2.baseline import random_policy_returns
    returns = random_policy_returns(config, first, episodes)
    print(f"random policy {config.task} seed {config.seed} episodes {first}-{first + episodes - 1}: "
          f"{np.mean(returns):.1f} ± {np.std(returns):.1f} ({', '.join(f'{r:.1f}' for r in returns)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

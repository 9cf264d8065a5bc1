"""Command line: ``python -m dreamer_v2 train --task atari_pong --preset paper --seed 0`` (the shared
``tools.cli`` train command; ``--export`` writes the finished run's record), and
``python -m dreamer_v2 random --task T --preset P --seed N --first K --episodes E`` (the uniform random policy on
the run's training-episode seeds).

``--preset`` takes comma-separated config blocks applied in order after ``defaults``: ``paper`` stands for the
task's benchmark block (atari, dmc_vision, dmc_proprio); ``small`` is applied on top of the benchmark block.
``--set key=value`` overrides single keys.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tools.cli import train_main
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["random"]:
        return random_main(argv[1:])
    from dreamer_v2.train import train
    return train_main("python -m dreamer_v2", "DreamerV2 (Hafner et al. 2021)", build_config, train,
                      "e.g. atari_pong, dmc_walker_walk, dmcproprio_cartpole_balance", "paper | small", argv)


def random_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dreamer_v2 random",
                                     description="the uniform random policy on a run's training-episode seeds")
    parser.add_argument("--task", required=True)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--first", type=int, default=0, help="first episode index k (episode seed 1000 s + k)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--constant", type=float, default=None, help="a fixed continuous action instead")
    args = parser.parse_args(argv)
    try:
        config = build_config(args.task, args.preset, args.seed, args.set)
        from dreamer_v2.baseline import random_policy_returns
        returns = random_policy_returns(config, args.first, args.episodes, args.constant)
    except (ConfigError, UnknownTaskError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    policy = "random policy" if args.constant is None else f"constant action {args.constant:g}"
    print(f"{policy} {config.task} seed {config.seed} episodes {args.first}-{args.first + args.episodes - 1}: "
          f"{np.mean(returns):.1f} ± {np.std(returns):.1f} ({', '.join(f'{r:.1f}' for r in returns)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

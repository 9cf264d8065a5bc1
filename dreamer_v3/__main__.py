"""Command line: ``python -m dreamer_v3 train --task dmcproprio_cartpole_balance --preset small --seed 0``.

``--preset`` takes one or more comma-separated config blocks, applied in order after ``defaults``. ``paper``
stands for the benchmark block of the task (dmc_proprio, dmc_vision, atari100k, crafter, minecraft), so
``--preset paper`` is the published setting and ``--preset paper,size12m`` changes its model size. ``small``
is applied on top of the benchmark block as well. ``--set key=value`` overrides single keys.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.cli import train_main
from tools.config import ConfigError, load_config, preset_names

CONFIG = Path(__file__).with_name("configs.yaml")
BENCHMARKS = {"dmcproprio": "dmc_proprio", "dmc": "dmc_vision", "atari": "atari100k", "crafter": "crafter",
              "minecraft": "minecraft"}


def benchmark_of(task: str) -> str:
    suite = task.split("_", 1)[0]
    if suite not in BENCHMARKS:
        raise ConfigError(f"DreamerV3 has no benchmark for task {task!r}; task prefixes: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[suite]


def expand_presets(task: str, preset: str) -> list[str]:
    """'small' -> [benchmark, 'small']; 'paper,size12m' -> [benchmark, 'size12m']."""
    names = [name.strip() for name in preset.split(",") if name.strip()]
    valid = ["paper", *(name for name in preset_names(CONFIG) if name not in BENCHMARKS.values())]
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(valid)} (comma-separated, applied in "
                              "order after the task's benchmark block, e.g. paper,size12m)")
    benchmark = benchmark_of(task)
    return [benchmark] + [name for name in names if name != "paper"]


def build_config(task: str, preset: str, seed: int, overrides: list[str]):
    return load_config(CONFIG, expand_presets(task, preset), [f"task={task}", f"seed={seed}", *overrides])


def main(argv: list[str] | None = None) -> int:
    from dreamer_v3.train import train
    return train_main("python -m dreamer_v3", "DreamerV3 (Hafner et al.)", build_config, train,
                      "e.g. dmcproprio_cartpole_balance, dmc_walker_walk, atari_pong, crafter_reward",
                      "paper | small, optionally ',size12m' etc.", argv)


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``python -m dreamer_v3 train --task dmcproprio_cartpole_swingup --preset small --seed 0`` and
``python -m dreamer_v3 baseline ...`` (the shared ``tools.cli``).

``--preset`` takes one or more comma-separated config blocks, applied in order after ``defaults``. ``paper``
stands for the benchmark block of the task (dmc_proprio, dmc_vision, atari100k, crafter, minecraft), so
``--preset paper`` is the published setting and ``--preset paper,size12m`` changes its model size. ``small``
is applied on top of the benchmark block as well. ``--set key=value`` overrides single keys.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.cli import benchmark_config, benchmark_presets, paper_main

CONFIG = Path(__file__).with_name("configs.yaml")
BENCHMARKS = {"dmcproprio": "dmc_proprio", "dmc": "dmc_vision", "atari": "atari100k", "crafter": "crafter",
              "minecraft": "minecraft"}


def expand_presets(task: str, preset: str) -> list[str]:
    return benchmark_presets(CONFIG, BENCHMARKS, "DreamerV3", task, preset)


def build_config(task: str, preset: str, seed: int, overrides: list[str]):
    return benchmark_config(CONFIG, BENCHMARKS, "DreamerV3", task, preset, seed, overrides)


def trainer():
    from dreamer_v3.train import train
    return train


def main(argv: list[str] | None = None) -> int:
    return paper_main("python -m dreamer_v3", "DreamerV3 (Hafner et al.)", build_config, trainer,
                      "e.g. dmcproprio_cartpole_balance, dmc_walker_walk, atari_pong, crafter_reward",
                      "paper | small, optionally ',size12m' etc.", argv)


if __name__ == "__main__":
    sys.exit(main())

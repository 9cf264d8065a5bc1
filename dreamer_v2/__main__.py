"""Command line (the shared ``tools.cli``): ``python -m dreamer_v2 train --task atari_pong --preset paper
--seed 0`` (``--export`` writes the finished run's record), and ``python -m dreamer_v2 baseline --task T --preset
P --seed N [--policy random|1.0] --first K --episodes E`` (a trivial policy on the run's training-episode seeds).

``--preset`` takes comma-separated config blocks applied in order after ``defaults``: ``paper`` stands for the
task's benchmark block (atari, dmc_vision, dmc_proprio); ``small`` is applied on top of the benchmark block.
``--set key=value`` overrides single keys.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.cli import benchmark_config, benchmark_presets, paper_main

CONFIG = Path(__file__).with_name("configs.yaml")
BENCHMARKS = {"atari": "atari", "dmc": "dmc_vision", "dmcproprio": "dmc_proprio"}


def expand_presets(task: str, preset: str) -> list[str]:
    return benchmark_presets(CONFIG, BENCHMARKS, "DreamerV2", task, preset)


def build_config(task: str, preset: str, seed: int, overrides: list[str]):
    return benchmark_config(CONFIG, BENCHMARKS, "DreamerV2", task, preset, seed, overrides)


def trainer():
    from dreamer_v2.train import train
    return train


def main(argv: list[str] | None = None) -> int:
    return paper_main("python -m dreamer_v2", "DreamerV2 (Hafner et al. 2021)", build_config, trainer,
                      "e.g. atari_pong, dmc_walker_walk, dmcproprio_cartpole_balance", "paper | small", argv)


if __name__ == "__main__":
    sys.exit(main())

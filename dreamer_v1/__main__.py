"""Command line: ``python -m dreamer_v1 train --task dmc_walker_walk --preset paper --seed 0``.

``--preset paper`` is the published setting (5M env steps); ``small`` the 2-core CPU preset. ``--set key=value``
overrides single keys. ``baseline`` scores a trivial policy (random or constant) on a run's episode seeds
(the shared ``tools.cli``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from tools.cli import paper_main
from tools.config import ConfigError, load_config

CONFIG = Path(__file__).with_name("configs.yaml")
SUITES = ("dmc", "dmcproprio")  # continuous control; the official code's Atari path is not reproduced here


def build_config(task: str, preset: str, seed: int, overrides: list[str]):
    suite = task.split("_", 1)[0]
    if suite not in SUITES:
        raise ConfigError(f"Dreamer (v1) runs DMC tasks (dmc_<domain>_<task>, dmcproprio_<domain>_<task> for the "
                          f"small preset); got {task!r}")
    return load_config(CONFIG, [preset], [f"task={task}", f"seed={seed}", *overrides])


def trainer():
    from dreamer_v1.train import train
    return train


def main(argv: list[str] | None = None) -> int:
    return paper_main("python -m dreamer_v1", "Dreamer (Hafner et al. 2020)", build_config, trainer,
                      "e.g. dmc_walker_walk, dmcproprio_cartpole_balance", "paper | small", argv)


if __name__ == "__main__":
    sys.exit(main())

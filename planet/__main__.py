"""Command line: ``python -m planet train --task dmc_cartpole_swingup --preset paper|small --seed N``.

``baseline`` (the shared ``tools.cli``) scores a trivial policy (uniform random actions, or a constant such as
zero) on the episode seeds the driver used, e.g. ``--eval-step 15000`` for the final evaluation round (the
baselines printed beside every PlaNet score); ``speed`` measures planning speed. Bad
input (unknown task, preset or key, a non-DMC task, a corrupt checkpoint) is one ``error:`` line and exit 2."""
from __future__ import annotations

import sys
from pathlib import Path

from tools.cli import paper_main
from tools.config import ConfigError, load_config, preset_names

CONFIG = Path(__file__).with_name("configs.yaml")


def build_config(task: str | None, preset: str, seed: int, overrides: list[str]):
    valid = ["paper", *preset_names(CONFIG)]
    if preset not in valid:
        raise ConfigError(f"unknown preset {preset!r}; valid: {', '.join(valid)}")
    config = load_config(CONFIG, [] if preset == "paper" else [preset],
                         [*([f"task={task}"] if task else []), f"seed={seed}", *overrides])
    if not config.task.startswith(("dmc_", "dmcproprio_")):
        raise ConfigError(f"PlaNet is defined on DeepMind Control from pixels only (dmc_<domain>_<task>; the small "
                          f"preset also runs the state-based dmcproprio_<domain>_<task>); got task {config.task!r}")
    return config


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


def speed_arguments(parser) -> None:
    parser.add_argument("--calls", type=int, default=10)


def speed(args, config) -> None:
    p = config.agent.planner
    print(f"planning speed, H {p.horizon} x I {p.iterations} x J {p.candidates} (top {p.top_k}), one thread: "
          f"{planning_speed(config, args.calls):.2f} actions/s")


def trainer():
    from planet.train import train
    return train


def main(argv: list[str] | None = None) -> int:
    extra = {"speed": ("planning speed (actions per second, one thread, CPU)", speed_arguments, speed)}
    return paper_main("python -m planet", "PlaNet (Hafner et al., ICML 2019)", build_config, trainer,
                      "dmc_<domain>_<task>, e.g. dmc_cartpole_swingup; dmcproprio_<domain>_<task> (default: the preset's)", "paper | small",
                      argv, extra=extra, task_required=False)


if __name__ == "__main__":
    sys.exit(main())

"""The command line shared by the online RSSM papers:

    python -m <paper> train --task T --preset P --seed N [--set key=value ...] [--logdir D] [--export]
    python -m <paper> baseline --task T --preset P --seed N [--policy random|0|1.0] [--first K] [--episodes E]
                               [--eval-step S]

``baseline`` plays a trivial policy on the episodes a run of that seed faced (``tools.loop.baselines``). A paper
may add commands of its own. Bad input (unknown task, preset or key, a damaged checkpoint or replay, a locked or
changed run directory, a diverged run) ends with one ``error:`` line and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
from omegaconf import DictConfig

from tools.checkpoint import CheckpointError
from tools.config import ConfigError, load_config, preset_names
from tools.envs import UnknownTaskError
from tools.memory import reuse_freed_memory
from tools.runs import Run

ConfigBuilder = Callable[[str, str, int, list[str]], DictConfig]
Trainer = Callable[[DictConfig, str, "str | Path | None"], Run]
# an extra command: name -> (help, add its arguments, run it on the parsed args and the built config)
Extra = dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace, DictConfig], None]]]
ERRORS = (ConfigError, CheckpointError, UnknownTaskError, ValueError, ImportError, OSError)


def benchmark_presets(config_path: Path, benchmarks: dict[str, str], paper: str, task: str, preset: str
                      ) -> list[str]:
    """Config blocks for ``preset`` where ``paper`` stands for the task's benchmark block (picked by the task's
    prefix from ``benchmarks``) and every other named block is applied after it: 'small' -> [benchmark,
    'small'] (then 'small_<benchmark>' where the file has that block, e.g. small_dmc_proprio); 'paper,size12m' ->
    [benchmark, 'size12m']."""
    names = [name.strip() for name in preset.split(",") if name.strip()]
    available = preset_names(config_path)
    valid = ["paper", *(name for name in available if name not in benchmarks.values()
                        and not name.endswith(tuple(f"_{block}" for block in benchmarks.values())))]
    for name in names:
        if name not in valid:
            raise ConfigError(f"unknown preset {name!r}; valid: {', '.join(valid)} (comma-separated, applied in "
                              "order after the task's benchmark block, e.g. paper,small)")
    suite = task.split("_", 1)[0]
    if suite not in benchmarks:
        raise ConfigError(f"{paper} has no benchmark for task {task!r}; task prefixes: {', '.join(benchmarks)}")
    blocks = [benchmarks[suite]]
    for name in names:
        if name != "paper":  # a named preset, then its block for this benchmark where there is one
            blocks += [name] + [f"{name}_{benchmarks[suite]}"] * (f"{name}_{benchmarks[suite]}" in available)
    return blocks


def benchmark_config(config_path: Path, benchmarks: dict[str, str], paper: str, task: str, preset: str, seed: int,
                     overrides: list[str]) -> DictConfig:
    blocks = benchmark_presets(config_path, benchmarks, paper, task, preset)
    return load_config(config_path, blocks, [f"task={task}", f"seed={seed}", *overrides])


def paper_main(prog: str, description: str, build_config: ConfigBuilder, train: Callable[[], Trainer],
               task_help: str, preset_help: str, argv: list[str] | None = None, extra: Extra | None = None,
               task_required: bool = True) -> int:
    """``train`` gets its trainer from ``train()`` (imported late: the CLI's errors come before torch loads)."""
    extra = extra or {}
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"train": "train (or resume) a run",
             "baseline": "a trivial policy (random or constant) on the episodes a run of this seed faced",
             **{name: text for name, (text, _, _) in extra.items()}}
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("--task", required=task_required, default=None, help=task_help)
        p.add_argument("--preset", default="paper", help=preset_help)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    train_parser, baseline_parser = sub.choices["train"], sub.choices["baseline"]
    train_parser.add_argument("--logdir", default=None, help="run directory (default runs/<paper>/<task>/...)")
    train_parser.add_argument("--export", action="store_true", help="write the finished run's record to "
                              "results/runs/ (never over another run's record; see results/README.md)")
    train_parser.add_argument("--no-export", action="store_true", help=argparse.SUPPRESS)  # the default now
    baseline_parser.add_argument("--policy", default="random", help="random, or a constant action such as 0 or 1")
    baseline_parser.add_argument("--first", type=int, default=0, help="first training episode index k")
    baseline_parser.add_argument("--episodes", type=int, default=10)
    baseline_parser.add_argument("--eval-step", type=int, default=None,
                                 help="the evaluation round at this env step instead of training episodes")
    for name, (_, add_arguments, _) in extra.items():
        add_arguments(sub.choices[name])
    args = parser.parse_args(argv)
    reuse_freed_memory()
    try:
        config = build_config(args.task, args.preset, args.seed, args.set)
        if config.seed < 0:  # from --seed or --set seed=
            raise ValueError(f"seed must be a number >= 0, got {config.seed}")
        if args.command == "train":
            run_train(args, config, train())
        elif args.command == "baseline":
            run_baseline(args, config)
        else:
            extra[args.command][2](args, config)
    except ERRORS as error:
        lines = str(error).strip().splitlines() or [type(error).__name__]
        print(f"error: {lines[0]}", file=sys.stderr)  # one line, even for multi-line library messages
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


def run_train(args: argparse.Namespace, config: DictConfig, train: Trainer) -> None:
    run = train(config, args.preset.replace(",", "+"), args.logdir)
    print(f"finished: {run.dir}")
    if args.export:
        from tools.results import export_run
        print(f"exported: {export_run(run.dir)}")


def run_baseline(args: argparse.Namespace, config: DictConfig) -> None:
    from tools.loop.baselines import trivial_returns
    if args.policy != "random":
        try:
            float(args.policy)
        except ValueError:
            raise ValueError(f"--policy must be 'random' or a number, got {args.policy!r}") from None
    if args.episodes < 1:
        raise ValueError(f"--episodes must be positive, got {args.episodes}")
    returns = trivial_returns(config, args.policy, args.first, args.episodes, args.eval_step)
    where = (f"training episodes {args.first}-{args.first + args.episodes - 1}" if args.eval_step is None
             else f"the evaluation round at step {args.eval_step}")
    print(f"{args.policy} policy, {config.task} seed {config.seed}, {where}: {np.mean(returns):.1f} ± "
          f"{np.std(returns):.1f} ({', '.join(f'{r:.1f}' for r in returns)})")

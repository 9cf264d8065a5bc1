"""The command line shared by the online RSSM papers: ``python -m <paper> train --task T --preset P --seed N
[--set key=value ...] [--logdir D] [--export]``. Bad input (unknown task, preset or key, a damaged checkpoint
or replay, a locked or changed run directory, a diverged run) ends with one ``error:`` line and exit code 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from tools.checkpoint import CheckpointError
from tools.config import ConfigError
from tools.envs import UnknownTaskError
from tools.runs import Run

ConfigBuilder = Callable[[str, str, int, list[str]], DictConfig]
Trainer = Callable[[DictConfig, str, "str | Path | None"], Run]


def train_main(prog: str, description: str, build_config: ConfigBuilder, train: Trainer, task_help: str,
               preset_help: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    train_parser = sub.add_parser("train", help="train (or resume) a run")
    train_parser.add_argument("--task", required=True, help=task_help)
    train_parser.add_argument("--preset", default="paper", help=preset_help)
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    train_parser.add_argument("--logdir", default=None, help="run directory (default runs/<paper>/<task>/...)")
    train_parser.add_argument("--export", action="store_true", help="write the finished run's record to "
                              "results/runs/ (never over another run's record; see results/README.md)")
    train_parser.add_argument("--no-export", action="store_true", help=argparse.SUPPRESS)  # the default now
    args = parser.parse_args(argv)
    try:
        config = build_config(args.task, args.preset, args.seed, args.set)
        run = train(config, args.preset.replace(",", "+"), args.logdir)
        print(f"finished: {run.dir}")
        if args.export:
            from tools.results import export_run
            print(f"exported: {export_run(run.dir)}")
    except (ConfigError, CheckpointError, UnknownTaskError, ValueError, ImportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0

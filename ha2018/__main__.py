"""python -m ha2018 <stage> --task carracing|doom_take_cover --preset paper|small [--set key=value ...]

Stages: collect, vae, series, mdnrnn, controller, evaluate; ``all`` runs them in order, for every round of the
iterative procedure (``iterate.rounds``; a single stage works on ``--round``, default the last), and skips the
complete ones; ``temperature-sweep`` trains and evaluates Doom controllers at each tau of ``sweep.temperatures`` on one
V and M. A finished run's record is written to results/runs/ only with ``--export`` (it never replaces the
record of a different run: ``python -m tools.results --export RUN_DIR --replace`` does that).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ha2018.checks import check_config
from ha2018.data import atomic_target, remove_stale_temps
from ha2018.context import Context, StageError
from ha2018.rounds import carry_into_more_rounds, pipeline
from ha2018.stages import STAGES
from tools.checkpoint import CheckpointError
from tools.config import ConfigError, load_config, preset_names
from tools.memory import reuse_freed_memory
from tools.results import export_run
from tools.runs import Run, default_logdir

CONFIG = Path(__file__).resolve().parent / "configs.yaml"
TASKS = ("carracing", "doom_take_cover")
PRESETS = ("paper", "medium", "small")
COMMANDS = (*STAGES, "all", "temperature-sweep")
# keys a resumed run may change (others are refused, naming them): machine settings, and training lengths that
# the stages continue from their checkpoints (a lowered controller.generations ends the controller early), and
# the choice to train in a dream that failed its check
SAFE_TO_CHANGE = ("device", "threads", "workers", "backend", "vae.epochs", "mdnrnn.epochs", "controller.generations",
                  "checks.refuse_bad_dream", "iterate.rounds", "iterate.max_rounds")
# keys that came with the iterative procedure: a run started before them has run one round, which they do not touch
ADDED_KEYS = ("iterate.rounds", "iterate.max_rounds", "iterate.rollouts", "iterate.mdnrnn_epochs")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ha2018", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--task", choices=TASKS, default="doom_take_cover")
    parser.add_argument("--preset", choices=PRESETS, default="small")
    parser.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set controller.generations=50")
    parser.add_argument("--round", type=int, default=None,
                        help="the round of the iterative procedure a single stage works on (default: the last)")
    parser.add_argument("--logdir", default=None, help="run directory (default runs/ha2018/<task>/<preset>_seed<N>)")
    parser.add_argument("--export", action="store_true",
                        help="write the finished run's record to results/runs/ (python -m tools.results --export)")
    return parser.parse_args(argv)


def config_for(task: str, preset: str, overrides: list[str]):
    if preset == "medium" and task != "doom_take_cover":
        raise ConfigError("the medium preset is defined for doom_take_cover only (CarRacing: paper or small)")
    blocks = [task, preset] + ([f"{preset}_{task}"] if f"{preset}_{task}" in preset_names(CONFIG) else [])
    config = load_config(CONFIG, blocks, overrides)
    check_config(config)
    return config


def open_context(task: str, preset: str, overrides: list[str], logdir: str | Path | None,
                 model_dir: Path | None = None) -> Context:
    config = config_for(task, preset, overrides)
    torch.set_num_threads(config.threads)
    logdir = Path(logdir) if logdir else default_logdir("ha2018", task, preset, config.seed)
    run = Run.create("ha2018", task, preset, config.seed, config=config, logdir=logdir, method="world_models",
                     strict=True, safe_keys=SAFE_TO_CHANGE, added_keys=ADDED_KEYS)
    ctx = Context(task, config, run, model_dir or run.dir)
    carry_into_more_rounds(ctx)
    for folder in (ctx.rollouts_dir, ctx.rollouts_dir.parent, run.dir, run.dir / "data", run.dir / "videos",
                   run.dir / "sweep"):
        remove_stale_temps(folder)  # writes a kill interrupted (their writer process is gone)
    return ctx


def run_stages(steps: list[tuple[Context, str]]) -> None:
    for ctx, name in steps:
        complete, stage = STAGES[name]
        where = f"round {ctx.at_round}, {ctx.dir}" if ctx.config.iterate.max_rounds > 1 else ctx.dir
        if complete(ctx):
            print(f"[ha2018] {name}: complete, skipped ({where})")
            continue
        print(f"[ha2018] {name}: running ({where})")
        stage(ctx)


def export(run_dir: Path) -> None:
    """The finished run's record into results/runs/ (RecordError, a ValueError, if it is not finished or the
    record there came from a different run)."""
    summary = run_dir / "summary.json"
    if not (summary.exists() and json.loads(summary.read_text()).get("finished")):
        raise StageError(f"{run_dir} has not finished (no final evaluation): nothing to export")
    print(f"[ha2018] run record written to {export_run(run_dir)}")


def temperature_sweep(args: argparse.Namespace, overrides: list[str]) -> None:
    if args.task != "doom_take_cover":
        raise StageError("temperature-sweep is the Doom experiment: use --task doom_take_cover")
    base = open_context(args.task, args.preset, overrides, args.logdir)
    run_stages(pipeline(base))  # every round (how many, the base's dream checks decide) and its tau's point
    rows = []
    for tau in base.config.sweep.temperatures:
        ctx = base if tau == base.config.controller.temperature else open_context(  # the base run is one point
            args.task, args.preset, [*overrides, f"controller.temperature={tau}"],
            base.dir / "sweep" / f"tau_{tau:.2f}", model_dir=base.dir)
        run_stages([(ctx, "controller"), (ctx, "evaluate")])
        if args.export:
            export(ctx.dir)
        summary = json.loads((ctx.dir / "summary.json").read_text())
        rows.append(f"| {tau:.2f} | {summary['dream_score']:.0f} ± {summary['dream_score_std']:.0f} | "
                    f"{summary['score']:.0f} ± {summary['score_std']:.0f} |")
    table = "\n".join(["| temperature | virtual score | actual score |", "| --- | --- | --- |", *rows])
    with atomic_target(base.dir / "sweep" / "temperature_table.md") as tmp:
        tmp.write_text(table + "\n")
    print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    reuse_freed_memory()
    overrides = list(args.overrides) + ([f"seed={args.seed}"] if args.seed is not None else [])
    try:
        if args.command == "temperature-sweep":
            temperature_sweep(args, overrides)
            return 0
        ctx = open_context(args.task, args.preset, overrides, args.logdir)
        if args.round is not None and not 1 <= args.round <= ctx.rounds:
            raise StageError(f"--round must be from 1 to the run's {ctx.rounds} rounds, got {args.round}")
        run_stages(pipeline(ctx) if args.command == "all" else [(ctx.at(args.round or ctx.at_round), args.command)])
        if args.command in ("all", "evaluate"):
            print(json.dumps({k: v for k, v in json.loads((ctx.dir / "summary.json").read_text()).items()
                              if k not in ("versions",)}, indent=1))
        if args.export:
            export(ctx.dir)
    except (ConfigError, StageError, CheckpointError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The paper's iterative training procedure ("Iterative Training Procedure"): after M and C are trained, roll
out the trained agent in the real game, train M on with the new data and train C again in the new dream, for
``iterate.rounds`` rounds. V is trained once, on the first (random-policy) collection.

Round r's files: the rollouts after the first ``rollouts_wanted(r - 1)``, M trained to ``mdnrnn_epochs(r)`` epochs
(one checkpoint that trains on), and the controller and dream check named as ``Context.round_path`` says."""
from __future__ import annotations

import json

import numpy as np

from ha2018.context import Context, StageError, load_stage_file
from tools.checkpoint import load_checkpoint

STEPS = ("collect", "vae", "series", "mdnrnn", "controller")  # one round; V only in the first


def pipeline(ctx: Context) -> list[tuple[Context, str]]:
    """Every (round's context, stage) of ``all`` in order, then the evaluation of the last round's controller."""
    steps = [(ctx.at(r), name) for r in range(1, ctx.config.iterate.rounds + 1) for name in STEPS
             if r == 1 or name != "vae"]
    return steps + [(ctx, "evaluate")]


def round_controller(ctx: Context, r: int) -> np.ndarray:
    """The finished controller of round ``r``: its best evaluated parameters (its mean if none was evaluated)."""
    state = load_stage_file(ctx.round_path("controller.pt", r), "controller")
    if state["generation"] < ctx.config.controller.generations:
        raise StageError(f"the controller of round {r} has not finished: run the 'controller' stage with --round {r}")
    return (state["best_params"] if state["best_params"] is not None else state["mean"]).float().numpy()


def earlier_rounds(ctx: Context) -> dict:
    """The earlier rounds' dream checks and controllers' CMA-ES evaluations (in their dreams), for the record."""
    checks, evals = [], []
    for r in range(1, ctx.config.iterate.rounds):
        path = ctx.round_path("dream_check.json", r)
        check = json.loads(path.read_text()) if path.exists() else {}
        checks.append({k: v for k, v in check.items() if k not in ("key", "reasons")})
        evals.append(load_stage_file(ctx.round_path("controller.pt", r), "controller")["best_eval"])
    return {"earlier_rounds_dream_check": checks, "earlier_rounds_cma_best_eval": evals} if checks else {}


def carry_into_more_rounds(ctx: Context) -> None:
    """``iterate.rounds`` raised on resume: the finished last round's controller and dream check become that
    round's files, and the rounds after it run. Lowered below a round already trained: refused."""
    path = ctx.path("controller.pt")
    if not path.exists():
        return
    done, rounds = load_checkpoint(path).get("round", 1), ctx.config.iterate.rounds
    if done > rounds:
        raise StageError(f"iterate.rounds={rounds}, but {path} is the controller of round {done}: start a new "
                         "--logdir for fewer rounds")
    if done < rounds and ctx.model_dir != ctx.dir:
        raise StageError(f"{path} was evolved in round {done}'s dream, and iterate.rounds is now {rounds}: move "
                         f"{ctx.dir} away to evolve this temperature's controller in the last round's dream")
    for name in ("dream_check.json", "controller.pt") if done < rounds else ():  # the controller last: a kill
        if ctx.path(name).exists():                                             # between the two renames reruns
            ctx.path(name).replace(ctx.round_path(name, done))

"""The paper's iterative training procedure ("Iterative Training Procedure"): after M and C are trained, roll
out the trained agent in the real game, train M on with the new data and train C again in the new dream, for
``iterate.rounds`` rounds, and more while the last round's dream fails its check (up to ``iterate.max_rounds``).
V is trained once, on the first (random-policy) collection.

Round r's files: the rollouts after the first ``rollouts_wanted(r - 1)``, M trained to ``mdnrnn_epochs(r)`` epochs
(one checkpoint that trains on), and the controller and dream check named as ``Context.round_path`` says."""
from __future__ import annotations

import json
from typing import Iterator

import numpy as np

from ha2018.context import Context, StageError, load_stage_file
from ha2018.data import write_json
from tools.checkpoint import load_checkpoint

STEPS = ("collect", "vae", "series", "mdnrnn", "controller")  # one round; V only in the first


def pipeline(ctx: Context) -> Iterator[tuple[Context, str]]:
    """Every (round's context, stage) of ``all`` in order, then the evaluation of the last round's controller;
    a round whose dream fails its check may add a round on the way (``add_round``)."""
    r = 1
    while r <= ctx.rounds:
        yield from ((ctx.at(r), name) for name in STEPS if r == 1 or name != "vae")
        r += 1
    yield ctx, "evaluate"


def add_round(ctx: Context) -> bool:
    """The paper's step 4, "go back to (2) if the task has not been completed", with the dream check as the test:
    the last round's dream failed it and ``iterate.max_rounds`` allows another round, so this round's C will only
    collect the next round's data. Its dream check becomes an earlier round's file. Not for the runs of a
    temperature sweep, which share their M. Returns whether a round was added."""
    r = ctx.at_round
    if not ctx.last_round or r >= ctx.config.iterate.max_rounds or ctx.model_dir != ctx.dir:
        return False
    if ctx.path("dream_check.json").exists():
        ctx.path("dream_check.json").replace(ctx.path(f"dream_check_round{r}.json", shared=True))
    write_json(ctx.path("rounds.json", shared=True), {"rounds": r + 1})
    print(f"[ha2018] round {r}'s dream fails its check: its controller collects round {r + 1}'s data "
          f"(iterate.max_rounds {ctx.config.iterate.max_rounds})")
    return True


def round_controller(ctx: Context, r: int) -> np.ndarray:
    """The finished controller of round ``r``: its best evaluated parameters (its mean if none was evaluated)."""
    state = load_stage_file(ctx.round_path("controller.pt", r), "controller")
    if state["generation"] < ctx.config.controller.generations:
        raise StageError(f"the controller of round {r} has not finished: run the 'controller' stage with --round {r}")
    return (state["best_params"] if state["best_params"] is not None else state["mean"]).float().numpy()


def earlier_rounds(ctx: Context) -> dict:
    """The earlier rounds' dream checks and controllers' CMA-ES evaluations (in their dreams), for the record."""
    checks, evals = [], []
    for r in range(1, ctx.rounds):
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
    done, rounds = load_checkpoint(path).get("round", 1), ctx.rounds
    if done > rounds:
        raise StageError(f"iterate.rounds={rounds}, but {path} is the controller of round {done}: start a new "
                         "--logdir for fewer rounds")
    if done < rounds and ctx.model_dir != ctx.dir:
        raise StageError(f"{path} was evolved in round {done}'s dream, and iterate.rounds is now {rounds}: move "
                         f"{ctx.dir} away to evolve this temperature's controller in the last round's dream")
    for name in ("dream_check.json", "controller.pt") if done < rounds else ():  # the controller last: a kill
        if ctx.path(name).exists():                                             # between the two renames reruns
            ctx.path(name).replace(ctx.round_path(name, done))

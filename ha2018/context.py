"""What every stage shares: the run context (config, run directory, where data and models live), the stage
error, per-stage torch seeding and loading the trained V and M."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from threadpoolctl import threadpool_limits

from ha2018.data import collect_lengths
from ha2018.models import build_mdnrnn, build_vae, pick_device
from tools.checkpoint import load_checkpoint
from tools.runs import Run

CMA_BLAS_THREADS = 1  # one thread, as every process here; the count seed 1's small record ran with (README)
STREAM = {"vae": 1, "mdnrnn": 2, "video": 3}  # torch's global generator, keyed per stage (see seed_torch)


def seed_torch(seed: int, stream: str, *keys: int) -> None:
    """Seed torch's global generator (V and M initialisation, V's sampling noise) from the run seed, a stage
    and e.g. an epoch, so a run and its resumption from a checkpoint draw the same numbers."""
    torch.manual_seed(int(np.random.SeedSequence([seed, STREAM[stream], *keys]).generate_state(1)[0]))


def fixed_blas_threads():
    """numpy's BLAS threads pinned to CMA_BLAS_THREADS while CMA-ES runs. cma's eigendecomposition of the
    covariance (LAPACK ``eigh``) gives bitwise different results with 1 and 2 OpenBLAS threads, and in a sampled
    dream the last bit decides which dreams survive: left to ``OMP_NUM_THREADS`` (default: one per core), the same
    command and seed trained a different controller on another shell or machine."""
    return threadpool_limits(limits=CMA_BLAS_THREADS, user_api="blas")


class StageError(RuntimeError):
    """A stage cannot run (missing input of an earlier stage, unusable data)."""


@dataclass
class Context:
    task: str
    config: DictConfig
    run: Run
    model_dir: Path  # where the data, V and M live (the run dir, or the base run of a temperature sweep)
    round: int | None = None  # the round of the iterative procedure a stage works on (None: the last)

    def at(self, round: int) -> "Context":
        return replace(self, round=round)

    @property
    def rounds(self) -> int:
        """The rounds of the iterative procedure this run has: ``iterate.rounds``, or more where the last round's
        dream failed its check and a round was added (``data/rounds.json``, at most ``iterate.max_rounds``)."""
        path = self.path("rounds.json", shared=True)
        return max(self.config.iterate.rounds, json.loads(path.read_text())["rounds"] if path.exists() else 0)

    @property
    def at_round(self) -> int:
        return self.round or self.rounds

    @property
    def last_round(self) -> bool:
        return self.at_round == self.rounds

    @property
    def dir(self) -> Path:
        return self.run.dir

    @property
    def device(self) -> torch.device:
        return pick_device(self.config)

    @property
    def rollouts_dir(self) -> Path:
        return self.model_dir / "data" / "rollouts"

    def path(self, name: str, shared: bool = False) -> Path:
        """A stage file: data and V/M checkpoints are shared by a sweep, C and evaluation are per run."""
        base = self.model_dir if shared else self.dir
        return base / ("data" if name.endswith(".npz") or name.endswith(".json") else "checkpoints") / name

    def round_path(self, name: str, round: int | None = None) -> Path:
        """A per-round file (the controller, its dream check): ``name`` in this run for the last round, as a run
        of one round has it; ``<stem>_round<r><suffix>`` beside the data for an earlier round, whose controller
        collected data for M (a temperature sweep's runs share them)."""
        r = round or self.at_round
        stem, dot, suffix = name.partition(".")
        return self.path(name) if r == self.rounds else self.path(f"{stem}_round{r}{dot}{suffix}", True)

    def metric(self, stage: str) -> str:
        """The metrics prefix of a stage in this round: ``controller``, then ``controller_round2`` and so on."""
        return stage if self.at_round == 1 else f"{stage}_round{self.at_round}"


def rollouts_wanted(config: DictConfig, round: int) -> int:
    """Rollouts on disk once round ``round`` has collected: the first collection, then the extra rounds'."""
    return config.collect.rollouts + (round - 1) * config.iterate.rollouts


def mdnrnn_epochs(config: DictConfig, round: int) -> int:
    """M's epochs once round ``round`` has trained it: M trains on in every round (on all the data so far)."""
    return config.mdnrnn.epochs + (round - 1) * config.iterate.mdnrnn_epochs


# ---- shared helpers ---------------------------------------------------------------------------------------
def load_stage_file(path: Path, stage: str) -> dict:
    if not path.exists():
        raise StageError(f"{path} not found: run the '{stage}' stage first")
    return load_checkpoint(path)


def stage_finished(path: Path, counter: str, wanted: int) -> bool:
    """A stage's checkpoint has reached the configured length (``counter``: epoch or generation), so a resumed
    run with a raised ``vae.epochs``, ``mdnrnn.epochs`` or ``controller.generations`` trains on."""
    return path.exists() and load_checkpoint(path).get(counter, 0) >= wanted


def refuse_if_used(ctx: Context, stage: str, downstream: Path) -> None:
    """A finished stage trained on (its length raised) after a later stage used it would leave that stage's
    output made from the old model: refused, with the way out."""
    if downstream.exists():
        raise StageError(f"{stage} would train on after {downstream.name} was made from it: start a new --logdir "
                         f"(or delete {downstream} and what follows it)")


def collected_frames(ctx: Context) -> int:
    """Real frames used for V and M: the budget before the controller's real-game steps."""
    return sum(collect_lengths(ctx.model_dir / "data"))


def load_vae(ctx: Context):
    vae = build_vae(ctx.config)
    vae.load_state_dict(load_stage_file(ctx.path("vae.pt", shared=True), "vae")["model"])
    return vae.eval()


def load_mdnrnn(ctx: Context):
    state = load_stage_file(ctx.path("mdnrnn.pt", shared=True), "mdnrnn")
    m = build_mdnrnn(ctx.config, ctx.task)
    m.load_state_dict(state["model"])
    return m.eval(), state["initial_mu"], state["initial_logvar"]

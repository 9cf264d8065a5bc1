"""The checks of a run, each computed once and kept in the run directory (a rerun after a kill reuses them):
V's reconstruction check (``vae_check.json`` beside ``vae.pt``, figure ``vae_reconstruction.png``), the trivial
policies' real-game trials on the evaluation seeds (``data/baselines.json``) and the dream check
(``data/dream_check.json``). See ``sanity.py`` for what each measures."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from ha2018.data import load_rollout, rollout_paths, write_json
from ha2018.dream import BatchedDream
from ha2018.rollout import Pool, baseline_job
from ha2018.sanity import (CARRACING_CONSTANT_ACTIONS, CONSTANT_ACTIONS, dream_baselines, judge_dream,
                           reconstruction_figure, vae_check)

if TYPE_CHECKING:
    from ha2018.context import Context

EVAL_SEED = 10_000_000  # real evaluation seeds start here, apart from collection and training seeds
DREAM_CHECK_SEED = 20_000_000
HELDOUT_FRAMES = 2000  # at most this many held-out frames, evenly spaced, in V's check


def split_rollouts(ctx: "Context") -> tuple[list[Path], list[Path]]:
    """(V's training rollouts, the held-out ones) of the first collection (V trains once, before the later
    rounds collect): the last ``vae.holdout_rollouts`` are never shown to V."""
    paths = rollout_paths(ctx.rollouts_dir)[:ctx.config.collect.rollouts]
    cut = len(paths) - min(ctx.config.vae.holdout_rollouts, len(paths) - 1)
    return paths[:cut], paths[cut:]


def vae_record(ctx: "Context", vae) -> dict:
    """V's reconstruction check on the held-out rollouts' frames, with its figure (none without held-out
    rollouts: ``vae.holdout_rollouts=0``, or a single rollout)."""
    path, heldout = ctx.path("vae_check.json", shared=True), split_rollouts(ctx)[1]
    if path.exists() or not heldout:
        return json.loads(path.read_text()) if path.exists() else {}
    frames = np.concatenate([load_rollout(p)["frames"] for p in heldout])
    frames = frames[np.linspace(0, len(frames) - 1, min(len(frames), HELDOUT_FRAMES)).astype(int)]
    device = next(vae.parameters()).device
    record = vae_check(vae.to(device), frames, ctx.config.checks.vae_max_ratio)
    record["vae_heldout_frames"] = len(frames)
    reconstruction_figure(vae, frames, ctx.model_dir / "vae_reconstruction.png")
    write_json(path, record)
    return record


def baseline_trials(ctx: "Context") -> dict[str, list[float]]:
    """Real-game returns of the uniform random policy and the constant ones (Doom: no-op, left, right;
    CarRacing: no-op, full gas straight, full gas steering left, right) on the evaluation seeds, the
    controller's seeds."""
    config, path = ctx.config, ctx.path("baselines.json", shared=True)
    constants = CONSTANT_ACTIONS if ctx.task == "doom_take_cover" else CARRACING_CONSTANT_ACTIONS
    names = ["random", *constants]
    key = {"trials": config.evaluate.trials, "policies": names}
    saved = json.loads(path.read_text()) if path.exists() else {}
    if saved.get("key") == key:
        return saved["returns"]
    steps = config.collect.max_frames if ctx.task == "doom_take_cover" else config.controller.max_steps
    jobs = [("random" if name == "random" else constants[name], EVAL_SEED + i, steps)
            for name in names for i in range(config.evaluate.trials)]
    with Pool(config.workers, ctx.task, config) as pool:
        results = list(tqdm(pool.imap(baseline_job, jobs), total=len(jobs), desc="trivial policies (real)",
                            unit="trial"))
    returns = {name: [float(r) for r, _ in results[k * config.evaluate.trials:(k + 1) * config.evaluate.trials]]
               for k, name in enumerate(names)}
    write_json(path, {"key": key, "returns": returns})
    return returns


def model_digest(model: torch.nn.Module) -> str:
    """A short fingerprint of a model's parameters (which M a saved check was made with)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def saved_dream_record(ctx: "Context") -> dict:
    """The dream check the controller stage made ({} if it made none)."""
    path = ctx.round_path("dream_check.json")
    return json.loads(path.read_text()) if path.exists() else {}


def dream_record(ctx: "Context", m, initial_mu: torch.Tensor, initial_logvar: torch.Tensor) -> dict:
    """The dream check at the controller's temperature: trivial policies in the dream against the game."""
    config, path = ctx.config, ctx.round_path("dream_check.json")
    key = {"temperature": float(config.controller.temperature), "trials": config.checks.dream_trials,
           "done_mode": config.controller.done_mode, "mdnrnn": model_digest(m)}  # M retrained: checked anew
    saved = saved_dream_record(ctx)
    if saved.get("key") == key:
        return saved
    real = {name: float(np.mean(r)) for name, r in baseline_trials(ctx).items()}
    device = ctx.device
    dream = BatchedDream(m.to(device), initial_mu.to(device), initial_logvar.to(device),
                         config.controller.temperature, config.controller.done_mode,
                         torch.Generator(device=device), config.mdnrnn.done_weight)
    scores = dream_baselines(dream, config.checks.dream_trials, config.controller.max_steps, DREAM_CHECK_SEED)
    record = {"key": key, **judge_dream(scores, real, config.checks.dream_max_ratio,
                                        config.checks.dream_max_asymmetry)}
    write_json(path, record)
    return record

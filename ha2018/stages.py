"""The pipeline: collect -> vae -> series -> mdnrnn -> controller -> evaluate. Each stage checkpoints its own
progress in the run directory and is skipped by ``all`` once complete."""
from __future__ import annotations

import itertools
import json
from typing import Callable

import cma
import numpy as np
import torch
from tqdm import tqdm

from ha2018 import media
from ha2018.cmaes import load_strategy, save_strategy
from ha2018.context import (Context, StageError, collected_frames, fixed_blas_threads, load_mdnrnn,
                            load_stage_file, load_vae, mdnrnn_epochs, refuse_if_used, rollouts_wanted, seed_torch,
                            stage_finished)
from ha2018.data import (collect_lengths, drop_rows_after, frame_batches, load_rollout, load_series,
                         open_collect_log, rollout_index, rollout_paths, save_series, series_count,
                         write_json)
from ha2018.dream import BatchedDream, dream_returns
from ha2018.mdnrnn import done_loss, mixture_nll
from ha2018.models import build_controller, build_mdnrnn, build_vae
from ha2018.rounds import add_round, earlier_rounds, round_controller
from ha2018.rollout import Pool, agent_job, collect_job
from ha2018.sequences import make_batches
from ha2018.verify import (EVAL_SEED, baseline_trials, dream_record, saved_dream_record, split_rollouts,
                           vae_record)
from ha2018.vae import to_input, vae_loss
from tools.checkpoint import load_checkpoint, save_checkpoint
from tools.runs import read_jsonl

CMA_EVAL_SEED = 30_000_000  # the evaluations of the CMA-ES mean (the same seeds every time)
ROUND_SEED = 40_000_000  # the later rounds' collection rollouts


# ---- 1. collect ------------------------------------------------------------------------------------------
def collect_complete(ctx: Context) -> bool:
    """Every rollout of this round on disk and its collect row logged (a kill between the last file and the row
    reruns collect, which then only logs the row)."""
    return len(rollout_paths(ctx.rollouts_dir)) >= rollouts_wanted(ctx.config, ctx.at_round) and any(
        f"{ctx.metric('collect')}/rollouts" in row for row in read_jsonl(ctx.dir / "metrics.jsonl"))


def collect(ctx: Context) -> None:
    """Round 1: the random collection policy. A later round (the paper's iterative training procedure): the
    V+M+C agent of the round before, with its M, on seeds of its own."""
    config, r = ctx.config, ctx.at_round
    first, wanted = rollouts_wanted(config, r - 1) if r > 1 else 0, rollouts_wanted(config, r)
    params, models, seeds = None, (), config.seed * 1_000_000
    if r > 1:
        params, models = round_controller(ctx, r - 1), (load_vae(ctx), load_mdnrnn(ctx)[0])
        seeds = ROUND_SEED + config.seed * 100_000
    ctx.rollouts_dir.mkdir(parents=True, exist_ok=True)
    lengths = collect_lengths(ctx.model_dir / "data")  # every env step is budget, dropped rollouts included
    done = len([p for p in rollout_paths(ctx.rollouts_dir) if first <= rollout_index(p) < wanted])
    bar = tqdm(total=wanted - first, desc=f"collect{f' (round {r})' if config.iterate.max_rounds > 1 else ''}",
               unit="rollout", initial=done)
    with Pool(config.workers, ctx.task, config, *models) as pool, \
            open(open_collect_log(ctx.model_dir / "data"), "a") as log:
        for attempt in range(100):
            missing = [i for i in range(first, wanted) if not (ctx.rollouts_dir / f"rollout_{i:05d}.npz").exists()]
            if not missing:
                break
            jobs = [(seeds + i + attempt * wanted, str(ctx.rollouts_dir / f"rollout_{i:05d}.npz"), params)
                    for i in missing]
            for i, (length, kept) in zip(missing, pool.imap(collect_job, jobs)):
                log.write(json.dumps({"rollout": i, "length": int(length), "kept": bool(kept)}) + "\n")
                log.flush()
                lengths.append(int(length))
                bar.update(1 if kept else 0)
                bar.set_postfix(frames=sum(lengths))
    bar.close()
    ctx.run.log_metrics(sum(lengths), {f"{ctx.metric('collect')}/rollouts": len(lengths),
                                       f"{ctx.metric('collect')}/mean_length": np.mean(lengths)})


# ---- 2. vae ----------------------------------------------------------------------------------------------
def vae_complete(ctx: Context) -> bool:
    return stage_finished(ctx.path("vae.pt", shared=True), "epoch", ctx.config.vae.epochs)


def train_vae(ctx: Context) -> None:
    config, device, path = ctx.config.vae, ctx.device, ctx.path("vae.pt", shared=True)
    if not rollout_paths(ctx.rollouts_dir):
        raise StageError(f"no rollouts in {ctx.rollouts_dir}: run the 'collect' stage first")
    paths = split_rollouts(ctx)[0]  # the held-out rollouts are for V's check only
    seed_torch(ctx.config.seed, "vae")
    vae = build_vae(ctx.config).to(device)
    optimizer = torch.optim.Adam(vae.parameters(), lr=config.lr)
    start = 0
    if path.exists():
        state = load_checkpoint(path)
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
        if start < config.epochs:
            refuse_if_used(ctx, "V", ctx.path("series.npz", shared=True))
            ctx.path("vae_check.json", shared=True).unlink(missing_ok=True)  # made from the V that trains on
    drop_rows_after(ctx.dir / "metrics.jsonl", "vae/epoch", start)  # logged by a run killed before its checkpoint
    frames = collected_frames(ctx)
    for epoch in range(start, config.epochs):
        rng = np.random.default_rng(ctx.config.seed * 1000 + epoch)
        seed_torch(ctx.config.seed, "vae", epoch + 1)  # V's sampling noise
        batches = frame_batches(paths, config.batch_size, rng)
        if config.max_batches:
            batches = itertools.islice(batches, config.max_batches)
        bar = tqdm(batches, desc=f"vae epoch {epoch + 1}/{config.epochs}", unit="batch",
                   total=config.max_batches or None)
        for batch in bar:
            x = to_input(torch.from_numpy(batch).to(device))
            loss, reconstruction, kl = vae_loss(x, *vae(x), config.kl_tolerance)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.set_postfix(loss=f"{loss.item():.1f}", recon=f"{reconstruction.item():.1f}", kl=f"{kl.item():.1f}")
        ctx.run.log_metrics(frames, {"vae/loss": loss.item(), "vae/reconstruction": reconstruction.item(),
                                     "vae/kl": kl.item(), "vae/epoch": epoch + 1})
        save_checkpoint(path, {"model": vae.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1})
    if vae_complete(ctx):
        record = vae_record(ctx, vae.eval())
        print(f"[ha2018] V check: held-out error {record['vae_heldout_error']:.1f} per image, mean frame "
              f"{record['vae_mean_frame_error']:.1f} (ratio {record['vae_error_ratio']:.2f})")


# ---- 3. series -------------------------------------------------------------------------------------------
def series_complete(ctx: Context) -> bool:
    path = ctx.path("series.npz", shared=True)
    return path.exists() and series_count(path) >= rollouts_wanted(ctx.config, ctx.at_round)


@torch.no_grad()
def encode_series(ctx: Context) -> None:
    """Every rollout's (mu, logvar) under V; a later round appends its new rollouts to the series."""
    vae, device, path = load_vae(ctx).to(ctx.device), ctx.device, ctx.path("series.npz", shared=True)
    episodes = load_series(path) if path.exists() else []
    mus, logvars = [e["mu"] for e in episodes], [e["logvar"] for e in episodes]
    actions, dones = [e["actions"] for e in episodes], [e["dones"] for e in episodes]
    for rollout_path in tqdm(rollout_paths(ctx.rollouts_dir)[len(episodes):], desc="series", unit="rollout"):
        rollout = load_rollout(rollout_path)
        parts = [vae.encode(to_input(torch.from_numpy(chunk).to(device)))
                 for chunk in np.array_split(rollout["frames"], max(1, len(rollout["frames"]) // 500))]
        mus.append(torch.cat([p[0] for p in parts]).cpu().numpy())
        logvars.append(torch.cat([p[1] for p in parts]).cpu().numpy())
        actions.append(rollout["actions"])
        dones.append(rollout["dones"])
    save_series(path, mus, logvars, actions, dones)


# ---- 4. mdnrnn -------------------------------------------------------------------------------------------
def mdnrnn_complete(ctx: Context) -> bool:
    return stage_finished(ctx.path("mdnrnn.pt", shared=True), "epoch", mdnrnn_epochs(ctx.config, ctx.at_round))


def train_mdnrnn(ctx: Context) -> None:
    config, device, path = ctx.config.mdnrnn, ctx.device, ctx.path("mdnrnn.pt", shared=True)
    series = ctx.path("series.npz", shared=True)
    if not series.exists():
        raise StageError(f"{series} not found: run the 'series' stage first")
    episodes, epochs = load_series(series), mdnrnn_epochs(ctx.config, ctx.at_round)
    if len(episodes) < rollouts_wanted(ctx.config, ctx.at_round):
        raise StageError(f"{series} lacks round {ctx.at_round}'s rollouts: run the 'collect' and 'series' stages "
                         f"of round {ctx.at_round} first")
    short = sum(len(e["mu"]) < config.seq_len + 1 for e in episodes) if config.batching == "episodes" else 0
    if short:  # episode batching draws seq_len + 1 frames per row: not silently
        print(f"[ha2018] warning: {short} of {len(episodes)} episodes are shorter than mdnrnn.seq_len + 1 = "
              f"{config.seq_len + 1} frames and are left out of M's batches")
    seed_torch(ctx.config.seed, "mdnrnn")
    m = build_mdnrnn(ctx.config, ctx.task).to(device)
    optimizer = torch.optim.Adam(m.parameters(), lr=config.lr)
    start, step = 0, 0
    if path.exists():
        state = load_checkpoint(path)
        m.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, step = state["epoch"], state["step"]
        if start < epochs:
            refuse_if_used(ctx, "M", ctx.round_path("controller.pt"))
    drop_rows_after(ctx.dir / "metrics.jsonl", "mdnrnn/epoch", start)  # logged by a run killed before its checkpoint
    initial = episodes[:1000]  # the authors' initial_z.json: first frame of 1000 rollouts
    initial_mu = torch.from_numpy(np.stack([e["mu"][0] for e in initial]))
    initial_logvar = torch.from_numpy(np.stack([e["logvar"][0] for e in initial]))
    frames = collected_frames(ctx)
    for epoch in range(start, epochs):
        rng = np.random.default_rng(ctx.config.seed * 1000 + epoch)
        state, losses = None, []
        bar = tqdm(make_batches(config.batching, episodes, config.batch_size, config.seq_len, rng),
                   desc=f"mdnrnn epoch {epoch + 1}/{epochs}", unit="batch")
        for batch in bar:
            z, actions, restart = (torch.from_numpy(x).to(device) for x in batch[:3])
            for group in optimizer.param_groups:  # the authors' schedule: (lr - min) * decay^step + min
                group["lr"] = (config.lr - config.lr_min) * config.lr_decay ** step + config.lr_min
            mixture, done_logit, last = m(z[:, :-1], actions[:, :-1], restart[:, :-1] if m.predict_done else None,
                                          state if batch.carry else None)
            z_loss = mixture_nll(mixture, z[:, 1:])
            d_loss = done_loss(done_logit, restart[:, 1:], config.done_weight) if m.predict_done else z_loss * 0
            loss = z_loss + d_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(m.parameters(), config.grad_clip)
            optimizer.step()
            state = type(last)(last.c.detach(), last.h.detach())
            step += 1
            losses.append((loss.item(), z_loss.item(), d_loss.item()))
            bar.set_postfix(loss=f"{loss.item():.3f}", z=f"{z_loss.item():.3f}", done=f"{d_loss.item():.3f}")
        mean = np.mean(losses, axis=0)
        ctx.run.log_metrics(frames, {"mdnrnn/loss": mean[0], "mdnrnn/z_loss": mean[1], "mdnrnn/done_loss": mean[2],
                                     "mdnrnn/epoch": epoch + 1, "mdnrnn/episodes_left_out": short})
        save_checkpoint(path, {"model": m.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                               "step": step, "initial_mu": initial_mu, "initial_logvar": initial_logvar})


# ---- 5. controller ---------------------------------------------------------------------------------------
def controller_complete(ctx: Context) -> bool:
    return stage_finished(ctx.round_path("controller.pt"), "generation", ctx.config.controller.generations)


def make_fitness(ctx: Context, pool: Pool | None) -> Callable[[np.ndarray, int, int], tuple[np.ndarray, int]]:
    """fitness(solutions (P, n), rollouts R, seed) -> ((P, R) returns, real env steps used), in the dream or in
    the real game."""
    config = ctx.config.controller
    controller = build_controller(ctx.config, ctx.task)
    if config.train_in == "dream":
        m, initial_mu, initial_logvar = load_mdnrnn(ctx)
        device = ctx.device
        m = m.to(device)
        generator = torch.Generator(device=device)
        dream = BatchedDream(m, initial_mu.to(device), initial_logvar.to(device), config.temperature,
                             config.done_mode, generator, ctx.config.mdnrnn.done_weight)

        def fitness(solutions: np.ndarray, rollouts: int, seed: int) -> np.ndarray:
            generator.manual_seed(seed)
            params = torch.as_tensor(solutions, dtype=torch.float32, device=device)
            return dream_returns(dream, controller, params, rollouts, ctx.task, config.inputs,
                                 config.max_steps).cpu().numpy(), 0
        return fitness
    if config.train_in != "real":
        raise StageError(f"controller.train_in must be 'dream' or 'real', got {config.train_in!r}")

    def fitness(solutions: np.ndarray, rollouts: int, seed: int) -> np.ndarray:
        jobs = [(np.asarray(s, np.float32), seed + r, config.max_steps) for s in solutions for r in range(rollouts)]
        results = list(pool.imap(agent_job, jobs))
        returns = np.asarray([ret for ret, _ in results]).reshape(len(solutions), rollouts)
        return returns, sum(length for _, length in results)
    return fitness


def train_controller(ctx: Context) -> None:
    if ctx.config.controller.train_in == "dream":
        check_dream(ctx)  # first: a failed check may add a round, which renames this round's files
    config, path, prefix = ctx.config.controller, ctx.round_path("controller.pt"), ctx.metric("controller")
    n = build_controller(ctx.config, ctx.task).param_count
    state = load_checkpoint(path) if path.exists() else {
        "round": ctx.at_round, "generation": 0, "mean": torch.zeros(n, dtype=torch.float64),
        "sigma": float(config.sigma_init), "best_params": None, "best_eval": -float("inf"), "history": [],
        "real_steps": 0}
    if path.exists() and not ctx.last_round:  # an earlier round's C trains on (generations raised): not once
        refuse_if_used(ctx, "C", ctx.rollouts_dir / f"rollout_{rollouts_wanted(ctx.config, ctx.at_round):05d}.npz")
    drop_rows_after(ctx.dir / "metrics.jsonl", f"{prefix}/generation", state["generation"])  # see train_vae
    es = load_strategy(state["cma"]) if "cma" in state else cma.CMAEvolutionStrategy(  # exactly where it stopped
        state["mean"].numpy(), state["sigma"],  # (checkpoints from before ha2018/cmaes.py: from mean and step size)
        {"popsize": config.popsize, "seed": ctx.config.seed + 1 + state["generation"], "verbose": -9})
    pool = None
    if config.train_in == "real":
        pool = Pool(ctx.config.workers, ctx.task, ctx.config, load_vae(ctx), load_mdnrnn(ctx)[0])
    fitness_fn = make_fitness(ctx, pool)
    frames = collected_frames(ctx)
    bar = tqdm(range(state["generation"], config.generations), desc=f"controller ({config.train_in})", unit="gen",
               initial=state["generation"], total=config.generations)
    blas = fixed_blas_threads()  # cma's eigendecomposition: the same bits whatever OMP_NUM_THREADS says
    try:
        for generation in bar:
            seed = ctx.config.seed * 1_000_000 + generation * 10_000
            solutions = np.asarray(es.ask())
            returns, real_steps = fitness_fn(solutions, config.rollouts, seed)  # (P, R)
            fitness = returns.mean(axis=1)
            penalty = config.weight_decay * np.mean(solutions ** 2, axis=1)  # es.py CMAES weight decay
            es.tell(list(solutions), list(-fitness + penalty))  # cma minimises
            record = {"generation": generation + 1, "mean": float(fitness.mean()), "best": float(fitness.max()),
                      "worst": float(fitness.min()), "sigma": float(es.sigma)}
            if (generation + 1) % config.eval_every == 0 or generation + 1 == config.generations:
                # the authors' evaluate_batch: the same seeds at every evaluation, so evaluations compare
                eval_returns, eval_steps = fitness_fn(es.mean[None], config.eval_rollouts,
                                                      CMA_EVAL_SEED + ctx.config.seed * 100_000)
                score, real_steps = float(eval_returns.mean()), real_steps + eval_steps
                record["eval"] = score
                if score > state["best_eval"]:
                    state["best_eval"], state["best_params"] = score, torch.from_numpy(es.mean.copy())
            state["history"].append(record)
            state.update(generation=generation + 1, real_steps=state["real_steps"] + real_steps,
                         mean=torch.from_numpy(es.mean.copy()), sigma=float(es.sigma), cma=save_strategy(es))
            bar.set_postfix(best=f"{record['best']:.0f}", mean=f"{record['mean']:.0f}",
                            best_eval=f"{state['best_eval']:.0f}")
            ctx.run.log_metrics(frames + state["real_steps"], {f"{prefix}/{k}": v for k, v in record.items()})
            save_checkpoint(path, state)
            media.plot_fitness(state["history"], ctx.dir / f"{prefix.replace('controller', 'fitness')}.png",
                               config.train_in)
    finally:
        blas.restore_original_limits()
        if pool:
            pool.close()


def check_dream(ctx: Context) -> None:
    """Refuse (StageError) to evolve the last round's C in a dream that fails the dream check, unless
    checks.refuse_bad_dream is false. An earlier round's C only collects the next round's data (the procedure
    exists to fix such a dream): its check is kept, not enforced."""
    m, initial_mu, initial_logvar = load_mdnrnn(ctx)
    if ctx.config.iterate.max_rounds > 1 and not mdnrnn_complete(ctx):  # the round's M, not the round before's
        raise StageError(f"M has not trained round {ctx.at_round}'s {mdnrnn_epochs(ctx.config, ctx.at_round)} "
                         f"epochs: run the 'mdnrnn' stage with --round {ctx.at_round} first")
    record = dream_record(ctx, m, initial_mu, initial_logvar)
    policies = ", ".join(f"{name} {record[f'{name}_dream']:.0f} / {record[f'{name}_real']:.0f}"
                         for name in ("random", "noop", "left", "right"))
    print(f"[ha2018] dream check, round {ctx.at_round} (dream / real survival): {policies}")
    if not record["passed"] and not add_round(ctx) and ctx.config.checks.refuse_bad_dream and ctx.last_round:
        raise StageError(f"the dream fails its check ({'; '.join(record['reasons'])}): C would exploit it; "
                         "train M better, or pass --set checks.refuse_bad_dream=false to train in it anyway")


# ---- 6. evaluate -----------------------------------------------------------------------------------------
def evaluate_complete(ctx: Context) -> bool:
    path = ctx.dir / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    if not summary.get("finished", False):
        return False  # and not when the controller has trained on since (controller.generations raised) or
    if summary.get("rounds", 1) != ctx.rounds:  # more rounds have run since (iterate.rounds raised)
        return False
    return summary.get("generations") == load_stage_file(ctx.path("controller.pt"), "controller")["generation"]


def evaluate(ctx: Context) -> dict:
    config, task = ctx.config, ctx.task
    state = load_stage_file(ctx.path("controller.pt"), "controller")
    params = state["best_params"] if state["best_params"] is not None else state["mean"]
    params = params.float().numpy()
    vae, (m, initial_mu, initial_logvar) = load_vae(ctx), load_mdnrnn(ctx)
    budget = collected_frames(ctx) + state.get("real_steps", 0)
    trials = real_trials(ctx, state["generation"], budget, params, vae, m)
    returns = np.array(trials["returns"])
    logged = {row.get("trial") for row in ctx.run.episodes("eval")
              if row["step"] == budget and row.get("generation") == state["generation"]}
    for i, (ret, length) in enumerate(zip(trials["returns"], trials["lengths"])):
        if i not in logged:  # a rerun after a kill logs only the trials the killed run did not
            ctx.run.log_episode(budget, ret, length, mode="eval", trial=i, generation=state["generation"])
    extra = {"generations": state["generation"], "rollouts_collected": len(rollout_paths(ctx.rollouts_dir)),
             "rounds": ctx.rounds, **earlier_rounds(ctx),
             "real_score_ci95": float(1.96 * returns.std() / np.sqrt(len(returns))),
             **{f"cma_{key}": [row[key] for row in state.get("history", [])] for key in ("generation", "mean", "best")}}
    for name, baseline in baseline_trials(ctx).items():  # the paper's random-policy row, same seeds
        label = "random_policy" if name == "random" else f"{name}_policy"
        extra.update({f"{label}_score": float(np.mean(baseline)), f"{label}_score_std": float(np.std(baseline))})
    extra.update(vae_record(ctx, vae))
    if m.predict_done:
        check = saved_dream_record(ctx)
        extra.update({f"dream_check_{k}": v for k, v in check.items() if k not in ("key", "reasons")})
        dream = BatchedDream(m, initial_mu, initial_logvar, config.controller.temperature,
                             config.controller.done_mode, torch.Generator().manual_seed(EVAL_SEED),
                             config.mdnrnn.done_weight)
        dream_scores = dream_returns(dream, build_controller(config, task), torch.from_numpy(params)[None],
                                     config.evaluate.dream_trials, task, config.controller.inputs,
                                     config.controller.max_steps)[0].numpy()
        extra.update(temperature=float(config.controller.temperature), dream_score=float(dream_scores.mean()),
                     dream_score_std=float(dream_scores.std()))
    seed_torch(config.seed, "video")
    media.dream_video(ctx, vae, m, initial_mu, initial_logvar, params, ctx.dir / "videos" / "dream.gif")
    return ctx.run.finish(budget, mode="eval", last=len(returns), **extra)


def real_trials(ctx: Context, generation: int, budget: int, params: np.ndarray, vae, m) -> dict[str, list]:
    """The controller's real-game trials on the evaluation seeds, kept in
    data/evaluation.json so that a rerun after a kill reuses them instead of playing (and logging) them again."""
    config, path = ctx.config, ctx.path("evaluation.json")
    key = {"generation": generation, "budget": budget, "trials": config.evaluate.trials}
    saved = json.loads(path.read_text()) if path.exists() else {}
    if saved.get("key") == key:
        return saved
    steps = config.collect.max_frames if ctx.task == "doom_take_cover" else config.controller.max_steps
    jobs = [(params, EVAL_SEED + i, steps) for i in range(config.evaluate.trials)]
    with Pool(config.workers, ctx.task, config, vae, m) as pool:
        results = list(tqdm(pool.imap(agent_job, jobs), total=len(jobs), desc="evaluate (real)", unit="trial"))
    trials = {"key": key, "returns": [float(r) for r, _ in results], "lengths": [int(n) for _, n in results]}
    write_json(path, trials)
    return trials


STAGES: dict[str, tuple[Callable[[Context], bool], Callable[[Context], object]]] = {
    "collect": (collect_complete, collect),
    "vae": (vae_complete, train_vae),
    "series": (series_complete, encode_series),
    "mdnrnn": (mdnrnn_complete, train_mdnrnn),
    "controller": (controller_complete, train_controller),
    "evaluate": (evaluate_complete, evaluate),
}

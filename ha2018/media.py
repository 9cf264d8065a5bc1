"""What a user looks at: the fitness plot and the dream video (real | VAE reconstruction | M's dream)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ha2018.data import atomic_target


def plot_fitness(history: list[dict], path: Path, where: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    generations = [h["generation"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(generations, [h["mean"] for h in history], label="population mean")
    ax.plot(generations, [h["best"] for h in history], label="population best")
    evals = [(h["generation"], h["eval"]) for h in history if "eval" in h]
    if evals:
        ax.plot(*zip(*evals), "o-", label="CMA-ES mean, evaluated")
    ax.set_xlabel("generation")
    ax.set_ylabel(f"fitness ({where})")
    ax.legend()
    fig.tight_layout()
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


@torch.no_grad()
def dream_video(ctx, vae, m, initial_mu, initial_logvar, params: np.ndarray, path: Path) -> None:
    """One real episode of the agent next to V's reconstruction of each frame and a dream started from the
    first real frame, with the same controller acting in it. Saved as a GIF, 4x upscaled."""
    import imageio.v2 as imageio
    from tools.envs import make_env
    from ha2018.controller import env_action, model_action
    from ha2018.dream import BatchedDream
    from ha2018.models import build_controller
    from ha2018.rollout import Agent
    from ha2018.vae import to_frames, to_input

    config, task, steps = ctx.config, ctx.task, ctx.config.evaluate.video_steps
    controller = build_controller(config, task)
    agent = Agent(task, vae, m, controller, torch.from_numpy(params), config.controller.inputs)
    env = make_env(task, seed=0)
    obs, _ = env.reset(seed=12345)
    real = []
    for _ in range(steps):
        real.append(obs["image"])
        obs, _, terminated, truncated, _ = env.step(env_action(task, agent.act(obs["image"])))
        if terminated or truncated:
            break
    env.close()
    real = np.asarray(real)
    mu, _ = vae.encode(to_input(torch.from_numpy(real)))
    recon = to_frames(vae.decode(mu)).numpy()
    first_mu, first_logvar = vae.encode(to_input(torch.from_numpy(real[:1])))
    dream = BatchedDream(m, first_mu, first_logvar, config.controller.temperature, config.controller.done_mode,
                         torch.Generator().manual_seed(0), config.mdnrnn.done_weight)
    dream.reset(1)
    weights = torch.from_numpy(params).float()[None]
    dreamed = []
    for _ in range(steps):
        dreamed.append(to_frames(vae.decode(dream.z))[0].numpy())
        raw = controller.act(weights, dream.features(config.controller.inputs)[None])[0]
        if bool(dream.step(model_action(task, raw))[0]):
            break
    frames = []
    for t in range(len(real)):
        dream_frame = dreamed[t] if t < len(dreamed) else np.zeros_like(real[0])
        row = np.concatenate([real[t], recon[t], dream_frame], axis=1)
        frames.append(row.repeat(4, axis=0).repeat(4, axis=1))
    with atomic_target(path) as tmp:
        imageio.mimsave(tmp, frames, duration=1 / 30, loop=0)

"""Benches of World Models (Ha & Schmidhuber 2018) on Doom TakeCover: one V (ConvVAE) update on a batch of
frames, one M (MDN-RNN) update on a batch of sequences, batched dream steps per second for the whole CMA-ES
population x rollouts, and real-environment steps per second of one worker (V + M + C acting, the game
stepping), each at the config's ``small`` and ``paper`` sizes."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tools.bench.measure import rate, timed_update

TASK = "doom_take_cover"


def bench_ha2018(size: str, repeats: int, warmup: int, device: str, act_target_s: float = 1.0,
                 real_env: bool = True, back_to_back: bool = False) -> dict[str, Any]:
    from ha2018.__main__ import config_for
    from ha2018.controller import ACTION_SIZE, model_action
    from ha2018.dream import BatchedDream
    from ha2018.mdnrnn import done_loss, mixture_nll
    from ha2018.models import build_controller, build_mdnrnn, build_vae, param_count
    from ha2018.vae import to_input, vae_loss

    config = config_for(TASK, size, [f"device={device}"])
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vae, m = build_vae(config).to(device), build_mdnrnn(config, TASK).to(device)
    controller = build_controller(config, TASK)
    record: dict[str, Any] = {"learner": "ha2018", "size": size, "task": TASK, "preset": size, "variant": "fp32",
                              "device": str(device), "params": {"V": param_count(vae), "M": param_count(m),
                                                                "C": controller.param_count}}

    # V: one Adam step on a batch of frames
    frames = torch.as_tensor(rng.integers(0, 256, (config.vae.batch_size, 64, 64, 3), dtype=np.uint8), device=device)
    v_opt = torch.optim.Adam(vae.parameters(), lr=config.vae.lr)

    def v_update():
        x = to_input(frames)
        loss, _, _ = vae_loss(x, *vae(x), config.vae.kl_tolerance)
        v_opt.zero_grad()
        loss.backward()
        v_opt.step()

    record["v_update"] = {**timed_update(v_update, repeats, warmup, device, back_to_back),
                          "batch": int(config.vae.batch_size)}

    # M: one Adam step (value clipping as the authors) on (B, T+1) z sequences
    c = config.mdnrnn
    B, T, Z, A = int(c.batch_size), int(c.seq_len), int(config.vae.z_size), ACTION_SIZE[TASK]
    z = torch.randn(B, T + 1, Z, device=device)
    actions = torch.as_tensor(rng.uniform(-1, 1, (B, T + 1, A)), dtype=torch.float32, device=device)
    restart = torch.zeros(B, T + 1, device=device)
    restart[:, 0] = 1
    m_opt = torch.optim.Adam(m.parameters(), lr=c.lr)

    def m_update():
        mixture, done_logit, _ = m(z[:, :-1], actions[:, :-1], restart[:, :-1] if m.predict_done else None)
        loss = mixture_nll(mixture, z[:, 1:])
        if m.predict_done:
            loss = loss + done_loss(done_logit, restart[:, 1:], c.done_weight)
        m_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(m.parameters(), c.grad_clip)
        m_opt.step()

    record["m_update"] = {**timed_update(m_update, repeats, warmup, device, back_to_back), "batch": [B, T]}

    # the dream: the whole population x rollouts stepped as one batch
    p = config.controller
    n = int(p.popsize) * int(p.rollouts)
    generator = torch.Generator(device=device).manual_seed(0)
    dream = BatchedDream(m, torch.randn(100, Z, device=device), torch.zeros(100, Z, device=device), p.temperature,
                         p.done_mode, generator, c.done_weight)
    params = 0.1 * torch.randn(n, controller.param_count, device=device)
    dream.reset(n)

    @torch.no_grad()
    def dream_step():
        raw = controller.act(params, dream.features(p.inputs)[:, None, :])[:, 0]
        dream.step(model_action(TASK, raw))

    steps = rate(dream_step, repeats, act_target_s, device=device)
    record["dream"] = {"dreams": n, "batch_steps_per_s": steps["per_s"], "dream_steps_per_s": steps["per_s"] * n,
                       "times_s": steps["times_s"], "calls": steps["calls"]}
    if real_env:
        record["real_env"] = _real_env_rate(config, vae, m, controller, repeats, act_target_s)
    return record


def _real_env_rate(config, vae, m, controller, repeats: int, target_s: float) -> dict[str, Any]:
    """Steps per second of one rollout worker: V encodes the frame, C acts on [z, c, h], M advances, the game
    steps (on the CPU, as the workers run)."""
    from ha2018.controller import env_action
    from ha2018.rollout import Agent
    from tools.envs import make_env

    env = make_env(TASK, seed=0)
    params = 0.1 * torch.randn(controller.param_count)
    agent = Agent(TASK, vae.cpu().eval(), m.cpu().eval(), controller, params, config.controller.inputs)
    current = {"obs": env.reset(seed=0)[0]}

    def step():
        obs, _, terminated, truncated, _ = env.step(env_action(TASK, agent.act(current["obs"]["image"])))
        if terminated or truncated:
            obs, _ = env.reset()
            agent.reset()
        current["obs"] = obs

    try:
        steps = rate(step, repeats, target_s)
    finally:
        env.close()
    return {"steps_per_s": steps["per_s"], "times_s": steps["times_s"], "calls": steps["calls"]}
